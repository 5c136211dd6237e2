"""A handler importing a module beside it and one from --path."""
from http.server import BaseHTTPRequestHandler

import beside
from greeting import greet


class Modules(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{greet('plugin')} {beside.SUFFIX}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
