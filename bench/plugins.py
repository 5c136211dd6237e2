"""Plugins against their alternatives: a hello handler per request.

- wasmhttpd with the hello plugin (Rust, guest SDK) and the same hello in C
  compiled to wasm32-wasi, each request a fresh sandboxed instance;
- Python's BaseHTTPRequestHandler with a do_GET, on ThreadingHTTPServer
  (what a Python user writes instead of a plugin);
- lighttpd mod_cgi running the same hello program in C natively (a process
  per request).

Server on CPU 0, wrk on CPU 1, servers interleaved, medians (see harness.py).

    python3 bench/plugins.py       # BENCH_SECONDS=5 BENCH_ROUNDS=5
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, lighttpd_cgi, build_release, compare, ensure_packages, free_port, table  # noqa: E402

PYTHON_HANDLER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"Hello from Python!\\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hello).serve_forever()
"""


def main():
    ensure_packages("wrk", "lighttpd", "gcc")
    subprocess.run([os.path.join(ROOT, "plugins", "build")], check=True)
    binary = build_release()
    with tempfile.TemporaryDirectory() as work:
        site = os.path.join(work, "site")
        plugins = os.path.join(work, "plugins")
        cgi_bin = os.path.join(site, "cgi-bin")
        os.makedirs(plugins)
        os.makedirs(cgi_bin)
        shutil.copy(os.path.join(ROOT, "plugins", "hello.wasm"), plugins)
        hello_c = os.path.join(ROOT, "bench", "cgi", "hello.c")
        subprocess.run(["gcc", "-O2", "-o", os.path.join(cgi_bin, "hello"), hello_c], check=True)
        subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-s", "-o",
                        os.path.join(plugins, "hello-cgi.wasm"), hello_c], check=True)
        handler = os.path.join(work, "handler.py")
        with open(handler, "w") as f:
            f.write(PYTHON_HANDLER)

        ours = free_port()
        py = free_port()
        wasmhttpd = [binary, str(ours), "-b", "127.0.0.1", "-d", site, "--plugins", plugins, "-q"]
        servers = {
            "wasmhttpd plugin (Rust)": lambda: Server("wasmhttpd", wasmhttpd, ours),
            "wasmhttpd plugin (C, wasm)": lambda: Server("wasmhttpd", wasmhttpd, ours),
            "python BaseHTTPRequestHandler": lambda: Server("python", [sys.executable, handler, str(py)], py),
            "lighttpd mod_cgi (C process)": lambda: lighttpd_cgi(site, work),
        }
        paths = {
            "wasmhttpd plugin (Rust)": "/hello",
            "wasmhttpd plugin (C, wasm)": "/hello-cgi",
            "python BaseHTTPRequestHandler": "/",
            "lighttpd mod_cgi (C process)": "/cgi-bin/hello",
        }
        results = compare(servers, paths, connections=8)
        table("hello handler, a fresh handler per request", results, "wasmhttpd plugin (Rust)",
              ["python BaseHTTPRequestHandler", "lighttpd mod_cgi (C process)"], connections=8)


if __name__ == "__main__":
    main()
