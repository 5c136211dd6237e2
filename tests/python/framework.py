"""A handler in the style of small frameworks built on http.server: it
overrides send_response itself to add headers of its own, speaks HTTP/1.0,
and writes its body with no Content-Length, ended by closing."""
from http.server import BaseHTTPRequestHandler


class Framework(BaseHTTPRequestHandler):
    server_version = "Framework/2.1"

    def send_response(self, code, message=None):
        super().send_response(code, message)
        self.send_header("X-Framework", "yes")
        self.send_header("Cache-Control", "no-store")

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        for n in range(3):
            self.wfile.write(f"<p>part {n}</p>\n".encode())
