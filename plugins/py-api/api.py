"""A small JSON API on http.server: GET /py-api/items lists the items,
POST /py-api/items adds one ({"name": ...}), GET /py-api/items/N shows one,
DELETE /py-api/items/N removes it. Anything else is Python's own error page.

The items live in a module global. Under Python's own server they persist
for as long as the process; as a wasmhttpd plugin they persist only with
instance reuse (py-api.toml), and only within one instance.

Run it as Python runs it:     python3 api.py
Make it a wasmhttpd plugin:   wasmhttpd build api.py -o ../py-api.wasm
"""
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

ITEMS = {}
NEXT_ID = [1]


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, value):
        body = json.dumps(value, indent=2).encode("utf-8") + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def item_id(self):
        """The N of .../items/N, or None for .../items."""
        parts = self.path.split("?", 1)[0].rstrip("/").split("/")
        if parts[-1] == "items":
            return None
        if len(parts) >= 2 and parts[-2] == "items" and parts[-1].isdigit():
            return int(parts[-1])
        raise LookupError(self.path)

    def do_GET(self):
        try:
            wanted = self.item_id()
        except LookupError:
            return self.send_error(HTTPStatus.NOT_FOUND, "No such resource")
        if wanted is None:
            return self.reply(200, [{"id": k, **v} for k, v in sorted(ITEMS.items())])
        if wanted not in ITEMS:
            return self.send_error(HTTPStatus.NOT_FOUND, "No such item")
        self.reply(200, {"id": wanted, **ITEMS[wanted]})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        try:
            item = json.loads(self.rfile.read(length))
            name = item["name"]
        except (ValueError, KeyError, TypeError):
            return self.send_error(HTTPStatus.BAD_REQUEST, 'Expected {"name": ...}')
        item_id, NEXT_ID[0] = NEXT_ID[0], NEXT_ID[0] + 1
        ITEMS[item_id] = {"name": str(name)}
        self.reply(201, {"id": item_id, "name": str(name)})

    def do_DELETE(self):
        try:
            wanted = self.item_id()
        except LookupError:
            wanted = None
        if wanted is None or ITEMS.pop(wanted, None) is None:
            return self.send_error(HTTPStatus.NOT_FOUND, "No such item")
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("localhost", 8080), ApiHandler).serve_forever()
