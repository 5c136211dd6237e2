"""The classic http.server form example: do_GET shows a form, do_POST reads
it with cgi.FieldStorage (urlencoded fields and multipart file uploads).

Run it as Python runs it:     python3 form.py
Make it a wasmhttpd plugin:   wasmhttpd build form.py -o ../py-form.wasm
"""
import cgi
import html
import io
from http.server import BaseHTTPRequestHandler, HTTPServer

PAGE = """<!DOCTYPE html>
<title>Upload</title>
<form method="post" enctype="multipart/form-data">
  <p><input name="name" placeholder="your name">
  <p><input type="file" name="upload">
  <p><button>Send</button>
</form>
"""


class PostHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        form = cgi.FieldStorage(
            fp=self.rfile,
            headers=self.headers,
            environ={
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": self.headers["Content-Type"],
            },
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        out = io.TextIOWrapper(self.wfile, encoding="utf-8", write_through=True)
        out.write(f"Client: {self.client_address[0]}\n")
        out.write(f"User-agent: {self.headers['user-agent']}\n")
        out.write(f"Path: {self.path}\n")
        out.write("Form data:\n")
        for name in sorted(form.keys()):
            item = form[name]
            if item.filename:
                size = len(item.file.read())
                out.write(f"\tUploaded {name} as {item.filename!r} ({size} bytes)\n")
            else:
                out.write(f"\t{name}={html.escape(item.value)}\n")
        # The wrapper must not close wfile when it goes.
        out.detach()


if __name__ == "__main__":
    HTTPServer(("localhost", 8080), PostHandler).serve_forever()
