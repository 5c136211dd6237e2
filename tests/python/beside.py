"""A pure-Python module the modules test finds beside its handler."""

SUFFIX = "(from beside)"
