"""A handler for the end-to-end tests: one path per behaviour, each run under
python3's own http.server and as a wasmhttpd plugin (wasmhttpd build), and
the answers compared.

It defines two handler classes (Cases and the QuietCases subclass), so a
build must choose one with --handler.
"""
import hashlib
import os
import sys
from http.server import BaseHTTPRequestHandler

# Module state: under reuse it persists from one request to the next.
COUNTER = [0]


class Cases(BaseHTTPRequestHandler):
    def send_text(self, text, status=200):
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        return self.path.split("?", 1)[0].rsplit("/", 1)[-1]

    def query(self):
        return self.path.partition("?")[2]

    def do_GET(self):
        name = self.route()
        if name == "echo":
            lines = [
                f"command={self.command}",
                f"path={self.path}",
                f"request_version={self.request_version}",
                f"client={self.client_address[0]} ({self.address_string()})",
                f"server_version={self.server_version}",
                f"protocol_version={self.protocol_version}",
                f"server={self.server.server_name}:{self.server.server_port == self.server.server_address[1]}",
            ]
            lines += [f"{k}: {v}" for k, v in self.headers.items()]
            self.send_text("\n".join(lines) + "\n")
        elif name == "error":
            self.send_error(404, "Nothing here", "Not under this name, anyway")
        elif name == "raise-early":
            raise ValueError("before any response")
        elif name == "raise-late":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"a start")
            raise ValueError("in the middle of the body")
        elif name == "stream":
            # HTTP/1.0 style: no Content-Length, the body ends with the
            # connection (which under wasmhttpd stays open).
            size = int(self.query() or "0")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            block = bytes(range(256)) * 256
            left = size
            while left > 0:
                piece = block[: min(left, len(block))]
                self.wfile.write(piece)
                left -= len(piece)
        elif name == "dated":
            self.send_response(200)
            self.send_header("Last-Modified", self.date_time_string(0))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "reason":
            self.send_response(299, "Fine Thanks")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif name == "log":
            self.log_message("a message from %s", "the handler")
            self.send_text("logged\n")
        elif name == "count":
            COUNTER[0] += 1
            self.send_text(f"count={COUNTER[0]} pid={os.getpid()}\n")
        elif name == "abort":
            # Ends the instance as a crash would: under reuse it is not kept.
            sys.stdout.flush()
            os.abort()
        elif name == "exit":
            # Ends the instance mid-response with status 0: not a trap, but
            # the end of the instance all the same.
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"partial")
            os._exit(0)
        elif name == "silent":
            pass
        else:
            self.send_error(404)

    def do_POST(self):
        name = self.route()
        if name == "upload":
            # Reads the body in pieces, never whole.
            length = int(self.headers["Content-Length"])
            digest = hashlib.sha256()
            left = length
            while left > 0:
                piece = self.rfile.read(min(left, 65536))
                if not piece:
                    break
                digest.update(piece)
                left -= len(piece)
            self.send_text(f"read {length - left} bytes, sha256 {digest.hexdigest()}\n")
        elif name == "echo-body":
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", self.headers.get("Content-Type", "text/plain"))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)


class QuietCases(Cases):
    def log_message(self, format, *args):
        pass
