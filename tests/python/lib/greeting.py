"""A pure-Python module the modules test finds under --path."""


def greet(name):
    return f"Hello, {name}!"
