"""A plugin in Python: a wasi:http component made with componentize-py.

Build: componentize-py -d WIT -w wasi:http/proxy@0.2.12 componentize app -o hello-py.wasm
(plugins/build finds the WIT in the wasmtime-wasi-http crate).
"""
from urllib.parse import unquote

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def read_body(request: IncomingRequest) -> bytes:
    body = b""
    incoming = request.consume()
    stream = incoming.stream()
    while True:
        try:
            body += stream.blocking_read(65536)
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise
    stream.__exit__(None, None, None)  # a stream goes before its body
    return body


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        target = request.path_with_query() or "/"
        path, _, query = target.partition("?")
        # Under wasmhttpd, where the path below the plugin's route starts.
        for name, value in request.headers().entries():
            if name == "wasmhttpd-path-info":
                path = unquote(value.decode())
        method = request.method()
        method = {Method_Get: "GET", Method_Post: "POST"}.get(type(method), "OTHER")
        body = read_body(request)
        text = (
            f"Hello from Python!\nmethod={method}\npath={path}\nquery={query}\n"
            f"body({len(body)})={body.decode(errors='replace')}\n"
        )
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        out_body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = out_body.write()
        data = text.encode()
        for i in range(0, len(data), 4096):
            stream.blocking_write_and_flush(data[i : i + 4096])
        stream.__exit__(None, None, None)
        OutgoingBody.finish(out_body, None)
