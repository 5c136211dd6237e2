"""wasmhttpd's bridge: serves a BaseHTTPRequestHandler subclass as a wasi:http
component, with the real http.server inside.

`wasmhttpd build` bundles this module with the author's file (componentize-py
pre-initialises both). Each request is handed to the author's class as
Python's own server hands a connection over: the handler is constructed with
a socket whose `makefile('rb')` reads the request head (rebuilt as the client
sent it) and then the body as it arrives, and whose `sendall` takes the
response. `handle()`, `parse_request()`, `send_response()`, `send_error()`
and the rest are http.server's own code; this module only carries bytes.

Under wasmhttpd the request carries fields that say what the wasi:http
request cannot: the request line as sent, the client's field names in order
and case, the client's and the server's addresses. Elsewhere (wasmtime serve,
wasmCloud) the same file works with what wasi:http gives.

The response the handler writes is parsed back into a wasi:http response: its
head when `end_headers()` sends it (interim 1xx heads skipped), then its body,
streamed. The connection's own fields (`Connection`, `Transfer-Encoding`, ...)
are the server's: a body the handler frames with chunked coding is decoded
here, one it ends by closing is framed by the server.
"""

import email.message
import email.parser
import email.utils
import html
import http.client
import http.server
import io
import socket
import socketserver
import sys
import time
import traceback
import urllib.parse

# Modules a handler commonly imports inside its functions: there is no file
# system at run time, so what was not imported while the component was
# built cannot be imported at all.
import base64  # noqa: F401
import datetime  # noqa: F401
import hashlib  # noqa: F401
import json  # noqa: F401
import mimetypes  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import shutil  # noqa: F401
import string  # noqa: F401
import tempfile  # noqa: F401
import uuid  # noqa: F401

try:  # legacy-cgi: `cgi` left the standard library in Python 3.13.
    import cgi
    import cgitb  # noqa: F401
except ImportError:
    cgi = None

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    ErrorCode_InternalError,
    Fields,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

if cgi is not None:
    # FieldStorage spools an upload over 1000 bytes to a temporary file; a
    # sandbox has no file system, so it spools to memory (the instance's
    # memory cap bounds it).
    def _make_file(self):
        if self._binary_file:
            return io.BytesIO()
        return io.StringIO(newline="\n")

    cgi.FieldStorage.make_file = _make_file

# What the server says about the request (see the module's doc).
REQUEST_LINE = "wasmhttpd-request-line"
FIELD_NAMES = "wasmhttpd-field-names"
CLIENT_ADDR = "wasmhttpd-client-addr"
SERVER_ADDR = "wasmhttpd-server-addr"
SERVER_FIELDS = (
    REQUEST_LINE,
    FIELD_NAMES,
    CLIENT_ADDR,
    SERVER_ADDR,
    "wasmhttpd-script-name",
    "wasmhttpd-path-info",
)
# Fields a wasi:http response may not carry, or that the server sets itself.
CONNECTION_FIELDS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "http2-settings",
}
# The longest response head the handler may write.
MAX_HEAD = 64 * 1024
# The longest read asked of the request body at once.
MAX_READ = 64 * 1024


class BuildError(Exception):
    """Why a handler file cannot become a plugin; `wasmhttpd build` prints
    the line that starts with `wasmhttpd build error:`."""


def report_build_error(message):
    sys.stderr.write("wasmhttpd build error: " + message + "\n")
    sys.stderr.flush()
    raise BuildError(message)


def find_handler(module, filename, wanted):
    """The BaseHTTPRequestHandler subclass `module` defines: the only one, or
    the one named `wanted`."""
    base = http.server.BaseHTTPRequestHandler
    defined = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value.__module__ == module.__name__
    ]
    names = ", ".join(sorted(cls.__name__ for cls in defined))
    if wanted:
        for cls in defined:
            if cls.__name__ == wanted:
                return cls
        found = "it defines " + names if defined else "it defines none"
        report_build_error(
            f"{filename}: no BaseHTTPRequestHandler subclass named {wanted} ({found})"
        )
    if not defined:
        report_build_error(f"{filename}: defines no subclass of http.server.BaseHTTPRequestHandler")
    if len(defined) > 1:
        report_build_error(f"{filename}: defines several handler classes ({names}); choose one with --handler")
    return defined[0]


def describe_import_error(filename, error):
    """`FILE:LINE: Kind: message` for an exception raised while `filename`
    was imported: the innermost frame in the author's code."""
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{shown_name(error.filename, filename)}:{error.lineno}"
        return f"{where}: {type(error).__name__}: {error.msg}"
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if not f.filename.startswith("<") and "wasmhttpd_" not in f.filename]
    at = mine[-1] if mine else None
    where = f"{shown_name(at.filename, filename)}:{at.lineno}" if at else filename
    return f"{where}: {type(error).__name__}: {error}"


def shown_name(path, filename):
    """The author's file by the name they gave it; other files by path."""
    if path.rsplit("/", 1)[-1] == filename.rsplit("/", 1)[-1]:
        return filename
    return path


def parse_address(text):
    """`ip:port` or `[ip6]:port` → Python's client_address tuple."""
    host, _, port = text.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        return (text, 0)
    if host.startswith("["):
        return (host[1:-1], port, 0, 0)
    return (host, port)


class Server(http.server.HTTPServer):
    """What `self.server` is to the handler: an HTTPServer that was never
    bound (the host owns the socket)."""

    def __init__(self, handler_class, address):
        self.RequestHandlerClass = handler_class
        self.server_address = address
        host, port = address[0], address[1]
        self.server_name = "localhost" if host in ("127.0.0.1", "::1") else host
        self.server_port = port
        self.socket = None


class RequestBody(io.RawIOBase):
    """The request as the handler's `rfile` reads it: the head, then the
    body, read from the host as the handler asks for it."""

    def __init__(self, head, request):
        self.head = memoryview(head)
        self.request = request
        self.body = None
        self.stream = None
        self.ended = False

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        if self.ended:
            return 0
        if self.stream is None:
            self.body = self.request.consume()
            self.stream = self.body.stream()
        try:
            data = self.stream.blocking_read(min(len(buffer), MAX_READ))
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                self.ended = True
                return 0
            raise ConnectionResetError("the request body failed") from None
        buffer[: len(data)] = data
        return len(data)

    def release(self):
        """Drops the host's handles, children first."""
        if self.stream is not None:
            self.stream.__exit__(None, None, None)
        if self.body is not None:
            self.body.__exit__(None, None, None)
        self.stream = self.body = None


class ChunkedDecoder:
    """Undoes chunked coding that a handler applied itself."""

    def __init__(self):
        self.buffer = b""
        self.left = 0
        self.state = "size"

    def feed(self, data):
        self.buffer += data
        out = []
        while True:
            if self.state == "data":
                if not self.buffer:
                    break
                piece = self.buffer[: self.left]
                out.append(piece)
                self.buffer = self.buffer[len(piece) :]
                self.left -= len(piece)
                if self.left == 0:
                    self.state = "crlf"
                continue
            line, sep, rest = self.buffer.partition(b"\n")
            if not sep:
                break
            self.buffer = rest
            if self.state == "crlf":
                self.state = "size"
            elif self.state == "size":
                digits = line.split(b";", 1)[0].strip()
                if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(f"the handler wrote a bad chunk size: {line[:40]!r}")
                size = int(digits, 16)
                if size == 0:
                    self.state = "trailers"
                else:
                    self.left, self.state = size, "data"
            elif self.state == "trailers" and not line.strip():
                self.state = "done"
            if self.state == "done":
                break
        return b"".join(out)

    def finished(self):
        return self.state == "done"


class Response:
    """The handler's output, as its socket's `sendall` receives it: the head
    becomes the wasi:http response, the rest its body."""

    def __init__(self, outparam, head_only):
        self.outparam = outparam
        self.head_only = head_only
        self.pending = b""
        self.started = False
        self.body = None
        self.stream = None
        self.pollable = None
        self.chunked = None

    def sendall(self, data):
        data = bytes(data)
        if not self.started:
            self.pending += data
            self.start()
            return
        self.write(data)

    def start(self):
        while not self.started:
            end = self.pending.find(b"\r\n\r\n")
            if end < 0:
                if len(self.pending) > MAX_HEAD:
                    raise ValueError("the handler's response head is over 64 KiB")
                if self.pending and not b"HTTP/".startswith(self.pending[:5]):
                    raise ValueError("the handler wrote its body before send_response()")
                return
            head, rest = self.pending[:end], self.pending[end + 4 :]
            self.pending = b""
            lines = head.split(b"\r\n")
            status_line = lines[0].split(b" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
                raise ValueError("the handler wrote its body before send_response()")
            status = int(status_line[1])
            if status < 200:
                # 100 Continue and other interim heads: the server sends its own.
                self.pending = rest
                continue
            self.begin(status, lines[1:])
            if rest:
                self.write(rest)

    def begin(self, status, lines):
        fields = []
        for line in lines:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            key = name.strip().decode("latin-1").lower()
            value = value.strip()
            if key == "transfer-encoding":
                codings = [c.strip() for c in value.lower().split(b",") if c.strip()]
                if codings != [b"chunked"]:
                    raise ValueError(f"the handler used a transfer coding the bridge cannot undo: {value!r}")
                self.chunked = ChunkedDecoder()
            if key in CONNECTION_FIELDS:
                continue
            fields.append((key, value))
        # The body's length is the server's to say for HEAD, and a
        # Content-Length beside chunked coding is void (RFC 9112 6.3).
        if self.head_only or self.chunked is not None:
            fields = [(k, v) for k, v in fields if k != "content-length"]
        response = OutgoingResponse(Fields.from_list(fields))
        response.set_status_code(status)
        self.body = response.body()
        ResponseOutparam.set(self.outparam, Ok(response))
        self.stream = self.body.write()
        self.pollable = self.stream.subscribe()
        self.started = True

    def write(self, data):
        if self.chunked is not None:
            data = self.chunked.feed(data)
        if self.head_only:
            return
        view = memoryview(data)
        while view:
            room = self.stream.check_write()
            if room == 0:
                self.pollable.block()
                continue
            self.stream.write(bytes(view[:room]))
            view = view[room:]

    def finish(self):
        """Ends the body; the response is then complete."""
        if self.pending:
            self.start()
        if not self.started:
            return False
        if self.chunked is not None and not self.chunked.finished():
            raise ValueError("the handler's chunked body ended before its last chunk")
        self.stream.blocking_flush()
        self.release()
        body, self.body = self.body, None
        OutgoingBody.finish(body, None)
        return True

    def release(self):
        if self.pollable is not None:
            self.pollable.__exit__(None, None, None)
        if self.stream is not None:
            self.stream.__exit__(None, None, None)
        self.pollable = self.stream = None


class ResponseWriter(io.RawIOBase):
    """The response as a buffered `wfile` writes it (a handler whose
    `wbufsize` is not 0)."""

    def __init__(self, response):
        self.response = response

    def writable(self):
        return True

    def write(self, data):
        self.response.sendall(data)
        return len(data)


class Connection:
    """The socket the handler is given."""

    def __init__(self, rfile, response):
        self.rfile = rfile
        self.response = response

    def makefile(self, mode, buffering=-1):
        if "w" in mode:
            return io.BufferedWriter(ResponseWriter(self.response), MAX_READ)
        return io.BufferedReader(self.rfile, MAX_READ)

    def sendall(self, data):
        self.response.sendall(data)

    def settimeout(self, timeout):
        pass

    def setsockopt(self, *args):
        pass

    def getpeername(self):
        return self.client_address

    def close(self):
        pass


def request_head(request, entries, server_fields):
    """The request head as the client sent it."""
    line = server_fields.get(REQUEST_LINE)
    if line is None:
        target = request.path_with_query() or "/"
        line = f"{method_name(request.method())} {target} HTTP/1.1".encode("latin-1")
    values = {}
    for name, value in entries:
        values.setdefault(name, []).append(value)
    names = server_fields.get(FIELD_NAMES)
    sent_host = names is None or b"host" in names.lower().split(b",")
    if "host" not in values and sent_host:
        # wasi:http carries Host as the request's authority.
        authority = request.authority()
        if authority:
            values["host"] = [authority.encode("latin-1")]
    lines = [line]
    if names is not None:
        for name in names.decode("latin-1").split(","):
            queue = values.get(name.lower())
            if queue:
                lines.append(name.encode("latin-1") + b": " + queue.pop(0))
    for name, queue in values.items():
        for value in queue:
            lines.append(name.encode("latin-1") + b": " + value)
    lines.append(b"")
    lines.append(b"")
    return b"\r\n".join(lines)


def method_name(method):
    value = getattr(method, "value", None)
    if isinstance(value, str):
        return value
    return type(method).__name__.rsplit("_", 1)[-1].upper()


def served_once(handler_class):
    """`handler_class`, closing its connection after one request: the next
    request arrives as a new wasi:http request, not on this rfile."""

    class Served(handler_class):
        def handle_one_request(self):
            super().handle_one_request()
            self.close_connection = True

    Served.__name__ = handler_class.__name__
    Served.__qualname__ = handler_class.__qualname__
    return Served


def serve(handler_class, request, outparam):
    """Runs one request through the handler."""
    fields = request.headers()
    entries = []
    server_fields = {}
    for name, value in fields.entries():
        if name in SERVER_FIELDS:
            server_fields[name] = value
        else:
            entries.append((name, value))
    fields.__exit__(None, None, None)
    head = request_head(request, entries, server_fields)
    client = parse_address(server_fields.get(CLIENT_ADDR, b"0.0.0.0:0").decode("latin-1"))
    local = parse_address(server_fields.get(SERVER_ADDR, b"0.0.0.0:0").decode("latin-1"))
    head_only = head.split(b" ", 1)[0] == b"HEAD"
    rfile = RequestBody(head, request)
    response = Response(outparam, head_only)
    connection = Connection(rfile, response)
    connection.client_address = client
    try:
        try:
            handler_class(connection, client, Server(handler_class, local))
        except Exception:
            sys.stderr.write("Exception occurred during processing of request from %s\n" % (client,))
            traceback.print_exc()
            if response.started:
                raise  # The response is under way: the server aborts it.
            send_internal_error(handler_class, response)
        rfile.release()
        if not response.finish():
            sys.stderr.write(f"{handler_class.__name__} sent no response\n")
    finally:
        rfile.release()
        response.release()
        if not response.started:
            # Consumed, so that no handle of this request outlives it.
            ResponseOutparam.set(outparam, Err(ErrorCode_InternalError("no response")))
        request.__exit__(None, None, None)
        sys.stderr.flush()


def send_internal_error(handler_class, response):
    """Python's own 500 page, in the handler's error format."""
    response.pending = b""
    page = (handler_class.error_message_format % {
        "code": 500,
        "message": "Internal Server Error",
        "explain": html.escape("Server got itself in trouble", quote=False),
    }).encode("UTF-8", "replace")
    head = (
        "HTTP/1.0 500 Internal Server Error\r\n"
        f"Server: {handler_class.server_version} {handler_class.sys_version}\r\n"
        f"Date: {email.utils.formatdate(time.time(), usegmt=True)}\r\n"
        f"Content-Type: {handler_class.error_content_type}\r\n"
        f"Content-Length: {len(page)}\r\n\r\n"
    ).encode("latin-1")
    response.sendall(head + page)


class Discarded:
    """Where the warm-up's responses go."""

    def sendall(self, data):
        pass


WARM_UP_REQUESTS = (
    b"GET /warm?up=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: warm-up\r\nAccept: */*\r\n\r\n",
    b"POST /warm HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 7\r\n\r\nname=up",
    b"HEAD /warm HTTP/1.0\r\n\r\n",
    b"PUT /warm HTTP/1.1\r\nHost: localhost\r\n\r\n",
)


def warm_up():
    """Runs http.server's request path a few times while the component is
    built, with a handler of the bridge's own (never the author's: their
    code runs only for real requests). The snapshot then holds what the
    first requests would otherwise redo in every fresh instance: the
    interpreter's specialised bytecode and method caches, the parser's
    lazily built state. A fresh instance costs about a tenth less CPU."""

    class WarmUp(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = b"warm"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", self.date_time_string())
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            urllib.parse.parse_qs(self.rfile.read(length).decode("latin-1"))
            self.do_GET()

        def log_message(self, format, *args):
            pass

    server = Server(WarmUp, ("127.0.0.1", 8000))
    client = ("127.0.0.1", 1)
    for _ in range(8):
        for request in WARM_UP_REQUESTS:
            connection = Connection(io.BytesIO(request), Discarded())
            connection.client_address = client
            WarmUp(connection, client, server)


def make_incoming_handler(handler_class):
    """The wasi:http export that serves `handler_class`."""
    served = served_once(handler_class)
    warm_up()

    class IncomingHandler(exports.IncomingHandler):
        def handle(self, request, response_out):
            serve(served, request, response_out)

    return IncomingHandler
