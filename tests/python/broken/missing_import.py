from http.server import BaseHTTPRequestHandler

import surely_not_a_module_anywhere  # noqa: F401


class Handler(BaseHTTPRequestHandler):
    pass
