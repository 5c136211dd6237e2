"""Python's own handlers: the same BaseHTTPRequestHandler file
(bench/python/hello.py) under python3's ThreadingHTTPServer, and built by
`wasmhttpd build` into a plugin served with a fresh instance per request
and with instance reuse.

1. Throughput and server CPU per request: server on CPU 0, wrk on CPU 1,
   interleaved rounds, medians (see harness.py). Targets: fresh ≤ 1 ms of
   server CPU per request; reuse ≥ 0.5x python3's req/s.
2. The build: seconds for `wasmhttpd build` (toolchain installed).
3. Warm restart: starting wasmhttpd to the plugin's first answer, compile
   cache warm (median of 5). Target: < 300 ms.
4. Memory per instance: the server's RSS with 1 and with 16 instances kept
   for reuse (wrk -c16 leaves 16 parked).
5. What bounds the targets: the floor, a raw wasi:http component from
   componentize-py with no http.server (bench/python/floor), fresh and
   reused; and the interpreter, http.server's request path on an in-memory
   socket (bench/python/inmemory.py) under python3 and inside the guest.

python3 runs the handler with Nagle disabled (its best case: otherwise a
kept-alive connection stalls 40 ms per request on delayed ACKs).

    python3 bench/python.py     # BENCH_SECONDS=5 BENCH_ROUNDS=5
"""

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, build_release, compare, ensure_packages,  # noqa: E402
                     first_answer, free_port, median, table)

HANDLER = os.path.join(ROOT, "bench", "python", "hello.py")
FLOOR = os.path.join(ROOT, "bench", "python", "floor")
INMEMORY = os.path.join(ROOT, "bench", "python", "inmemory.py")
WIT = os.path.join(ROOT, "host", "wit", "wasi-http-0.2")
REUSE = "[reuse]\nrequests = 1000000\nidle_secs = 60\n"
CONNECTIONS = 8

# Python at its best: its handler writes the head and the body in two
# sends, which on a kept-alive connection stall on Nagle and delayed ACKs
# (40 ms each) unless the handler class disables Nagle.
RUNNER = """
import http.server, importlib.util, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.Hello.disable_nagle_algorithm = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), module.Hello).serve_forever()
"""


def build(binary, out):
    started = time.monotonic()
    subprocess.run([binary, "build", HANDLER, "-o", out], check=True)
    return time.monotonic() - started


def componentize_py():
    """The componentize-py `wasmhttpd build` uses: on PATH, or the one it
    installed in the user's cache."""
    found = shutil.which("componentize-py")
    if found:
        return found
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    toolchains = os.path.join(cache, "wasmhttpd", "build", "toolchains")
    for name in sorted(os.listdir(toolchains)) if os.path.isdir(toolchains) else []:
        candidate = os.path.join(toolchains, name, "bin", "componentize-py")
        if name.startswith("componentize-py") and os.path.exists(candidate):
            return candidate
    sys.exit("bench/python.py: no componentize-py (run `wasmhttpd build` once to install it)")


def build_floor(out):
    subprocess.run([componentize_py(), "-d", WIT, "-w", "wasi:http/proxy@0.2.12", "componentize",
                    "-p", FLOOR, "-p", os.path.dirname(INMEMORY), "app", "-o", out],
                   check=True, capture_output=True)


def get(port, path, timeout=120):
    """The status and the body of a GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def instance_memory(binary, site, plugins):
    """The server's RSS growth per instance kept for reuse, from 1 to 16
    instances (16 requests at once, each slowed by a client that reads its
    response only after all 16 were sent)."""
    port = free_port()
    server = Server("wasmhttpd", [binary, str(port), "-b", "127.0.0.1", "-d", site, "--plugins", plugins,
                                  "-q"], port)
    try:
        # Settled: the compiled code loaded, one instance parked.
        for _ in range(20):
            get(port, "/hello")
        time.sleep(2)
        one = rss_kib(server.proc.pid)
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d3s",
                        f"http://127.0.0.1:{port}/hello"], check=True, capture_output=True)
        time.sleep(2)
        many = rss_kib(server.proc.pid)
        return one, many
    finally:
        server.stop()


def main():
    ensure_packages("wrk")
    binary = build_release()
    work = tempfile.mkdtemp(prefix="wasmhttpd-bench-python-")
    try:
        site = os.path.join(work, "site")
        fresh = os.path.join(work, "fresh")
        reuse = os.path.join(work, "reuse")
        floor_fresh = os.path.join(work, "floor-fresh")
        floor_reuse = os.path.join(work, "floor-reuse")
        for d in (site, fresh, reuse, floor_fresh, floor_reuse):
            os.makedirs(d)
        wasm = os.path.join(fresh, "hello.wasm")
        seconds = build(binary, wasm)
        shutil.copy(wasm, reuse)
        build_floor(os.path.join(floor_fresh, "hello.wasm"))
        shutil.copy(os.path.join(floor_fresh, "hello.wasm"), floor_reuse)
        for d in (reuse, floor_reuse):
            with open(os.path.join(d, "hello.toml"), "w") as f:
                f.write(REUSE)
        # The first start compiles the component into the cache.
        print(f"first start (compile): {first_answer(binary, site, fresh, '/hello'):.2f} s")

        print(f"first start of the floor (compile): {first_answer(binary, site, floor_fresh, '/hello'):.2f} s")

        names = ["python3", "wasmhttpd fresh", "wasmhttpd reuse", "floor fresh", "floor reuse"]
        ports = {name: free_port() for name in names}

        def wasmhttpd(name, plugins):
            argv = [binary, str(ports[name]), "-b", "127.0.0.1", "-d", site, "--plugins", plugins, "-q"]
            server = Server(name, argv, ports[name])
            get(ports[name], "/hello")  # loaded before wrk starts
            return server

        servers = {
            "python3": lambda: Server("python3", ["python3", "-c", RUNNER, HANDLER, str(ports["python3"])],
                                      ports["python3"]),
            "wasmhttpd fresh": lambda: wasmhttpd("wasmhttpd fresh", fresh),
            "wasmhttpd reuse": lambda: wasmhttpd("wasmhttpd reuse", reuse),
            "floor fresh": lambda: wasmhttpd("floor fresh", floor_fresh),
            "floor reuse": lambda: wasmhttpd("floor reuse", floor_reuse),
        }
        paths = {name: "/hello" for name in names}
        results = compare(servers, paths, connections=CONNECTIONS)
        table("a BaseHTTPRequestHandler hello, the same file; the floor: a raw componentize-py"
              " component", results, "wasmhttpd reuse",
              ["python3", "wasmhttpd fresh", "floor fresh", "floor reuse"], connections=CONNECTIONS)
        ratios = [a["rps"] / b["rps"] for a, b in zip(results["wasmhttpd fresh"], results["python3"])]
        print(f"ratio wasmhttpd fresh/python3 req/s    {median(ratios):6.2f}x"
              f"  (rounds: {min(ratios):.2f}-{max(ratios):.2f})")

        print(f"\nbuild (wasmhttpd build, toolchain installed): {seconds:.1f} s,"
              f" {os.path.getsize(wasm) / 1e6:.1f} MB")
        restarts = [first_answer(binary, site, fresh, "/hello") for _ in range(5)]
        print(f"warm restart to the first answer: median {median(restarts) * 1000:.0f} ms"
              f" (range {min(restarts) * 1000:.0f}-{max(restarts) * 1000:.0f} ms)")
        native = [float(subprocess.run([sys.executable, INMEMORY], check=True, capture_output=True,
                                       text=True).stdout) for _ in range(3)]
        server = wasmhttpd("floor reuse", floor_reuse)
        try:
            get(ports["floor reuse"], "/hello/interp?n=200")  # the interpreter warmed
            guest = [float(get(ports["floor reuse"], "/hello/interp?n=500")[1]) for _ in range(3)]
        finally:
            server.stop()
        print(f"http.server's request path on an in-memory socket: python3 {median(native):.1f} µs,"
              f" inside the guest {median(guest):.1f} µs ({median(guest) / median(native):.1f}x)")
        one, many = instance_memory(binary, site, reuse)
        print(f"server RSS: {one / 1024:.1f} MiB with one instance kept, {many / 1024:.1f} MiB after 16 at"
              f" once ({(many - one) / 15 / 1024:+.1f} MiB per instance by difference)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
