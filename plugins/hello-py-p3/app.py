"""A wasi:http p3 plugin in Python (WASI 0.3, the `wasi:http/service` world),
made with componentize-py: `handle` is a coroutine, so while one request
waits the instance serves others. `/hello-py-p3` says hello;
`/hello-py-p3/wait?MS` answers after waiting MS milliseconds (at most 10 s)
without holding up its instance; both say how many requests this instance
has served (instances are reused).

Build: componentize-py -d WIT -w wasi:http/service@0.3.0 componentize app -o hello-py-p3.wasm
(plugins/build finds the WIT in the wasmtime-wasi-http crate, src/p3/wit).
"""
import componentize_py_async_support
from componentize_py_types import Ok
from wit_world import exports, byte_stream
from wit_world import result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers_future
from wit_world.imports import monotonic_clock
from wit_world.imports.wasi_http_types import Fields, Request, Response

served = 0


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        global served
        served += 1
        count = served
        path, _, query = (request.get_path_with_query() or "/").partition("?")
        if path.endswith("/wait"):
            ms = min(int(query) if query.isdigit() else 100, 10_000)
            await monotonic_clock.wait_for(ms * 1_000_000)
            text = f"Waited {ms} ms (request {count} of this instance)\n"
        else:
            text = f"Hello from Python, over WASI 0.3! (request {count} of this instance)\n"
        return respond(text.encode())


def respond(body: bytes) -> Response:
    """A 200 text/plain response whose body is written after `handle` has
    returned it, as p3 streams are."""
    writer, reader = byte_stream()
    trailers_writer, trailers = trailers_future(lambda: Ok(None))
    fields = Fields.from_list([("content-type", b"text/plain")])
    response, _sent = Response.new(fields, reader, trailers)

    async def send() -> None:
        with writer:
            await writer.write_all(body)
        await trailers_writer.write(Ok(None))

    componentize_py_async_support.spawn(send())
    return response
