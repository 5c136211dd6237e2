"""Defines no handler class: it only imports one."""
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler  # noqa: F401


def helper():
    return 1
