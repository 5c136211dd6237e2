"""The floor under bench/python.py: a raw wasi:http component from
componentize-py with no http.server and the fewest host calls an answer
needs. What it costs per request, fresh and reused, is what any Python
plugin costs before it does any work.

`/interp?n=N` also measures the interpreter itself: it runs http.server's
request path N times on an in-memory socket (bench/python/inmemory.py, the
same code python3 runs natively in the bench) and answers with the
microseconds per request.
"""
import time

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import Fields, OutgoingBody, OutgoingResponse, ResponseOutparam

import inmemory


def answer(response_out, body):
    fields = [("content-type", b"text/plain"), ("content-length", str(len(body)).encode())]
    response = OutgoingResponse(Fields.from_list(fields))
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    stream = out_body.write()
    stream.blocking_write_and_flush(body)
    stream.__exit__(None, None, None)
    OutgoingBody.finish(out_body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):
        target = request.path_with_query() or "/"
        request.__exit__(None, None, None)
        if "/interp" in target:
            n = int(target.rpartition("n=")[2] or 100)
            started = time.perf_counter()
            inmemory.serve(n)
            micros = (time.perf_counter() - started) / n * 1e6
            answer(response_out, f"{micros:.1f}\n".encode())
        else:
            answer(response_out, b"hello\n")
