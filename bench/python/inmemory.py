"""http.server's request path on an in-memory socket, with no network and
no bridge: what bench/python.py times under python3 and inside the guest
(bench/python/floor) to tell the interpreter's own speed."""
import io
import sys
import time

from hello import Hello  # bench/python/hello.py, the handler the bench serves

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n"


class Connection:
    def __init__(self):
        self.out = io.BytesIO()

    def makefile(self, mode, buffering=-1):
        return self.out if "w" in mode else io.BytesIO(REQUEST)

    def sendall(self, data):
        self.out.write(data)

    def settimeout(self, timeout):
        pass

    def setsockopt(self, *args):
        pass

    def close(self):
        pass


class Server:
    server_name = "localhost"
    server_port = 8000


def serve(n):
    server = Server()
    for _ in range(n):
        Hello(Connection(), ("127.0.0.1", 1), server)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    serve(200)
    started = time.perf_counter()
    serve(n)
    print(f"{(time.perf_counter() - started) / n * 1e6:.1f}")
