"""The handler bench/python.py measures: the smallest useful
BaseHTTPRequestHandler, served by python3 and, unchanged, by wasmhttpd.
HTTP/1.1, so Python's server keeps connections alive as wasmhttpd does."""
from http.server import BaseHTTPRequestHandler

HITS = [0]


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        HITS[0] += 1
        body = f"Hello from {self.path} ({HITS[0]})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # as wrk would flood either server's log
