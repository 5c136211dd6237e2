"""The classic http.server example: a GET handler that echoes what it knows
about the client, the server and the request's header fields.

Run it as Python runs it:     python3 get.py
Make it a wasmhttpd plugin:   wasmhttpd build get.py -o ../py-get.wasm
"""
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse


class GetHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        lines = [
            "CLIENT VALUES:",
            f"client_address={self.client_address} ({self.address_string()})",
            f"command={self.command}",
            f"path={self.path}",
            f"real path={url.path}",
            f"query={url.query}",
            f"request_version={self.request_version}",
            "",
            "SERVER VALUES:",
            f"server_version={self.server_version}",
            f"sys_version={self.sys_version}",
            f"protocol_version={self.protocol_version}",
            f"server_name={self.server.server_name}",
            f"server_port={self.server.server_port}",
            "",
            "HEADERS RECEIVED:",
        ]
        for name, value in sorted(self.headers.items()):
            lines.append(f"{name}={value.rstrip()}")
        body = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", self.date_time_string())
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("localhost", 8080), GetHandler).serve_forever()
