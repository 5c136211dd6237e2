"""wasi:http components: wasmhttpd against `wasmtime serve`, and the warm
restart of an interpreter's component.

1. The bare wasi:http hello (plugins/hello-http, the standard minimal
   handler) served by wasmhttpd and by `wasmtime serve` (the same wasmtime
   version, -S cli): with its pooling allocator on (the target's
   comparison), with its default allocator, and with the pooling settings
   wasmhttpd uses (to tell the engine settings from the server), each
   request a fresh instance. Server on CPU 0, wrk on CPU 1, 5 interleaved rounds, medians
   (see harness.py). Target: wasmhttpd >= 1.5x wasmtime serve's req/s.
2. The p3 hello (plugins/hello-p3, a wasi:http 0.3 handler) served by
   wasmhttpd and by `wasmtime serve`, each with its default instance reuse
   (for p3 both reuse an instance for 128 requests, 16 at once), pooling
   on. Target: wasmhttpd >= 1.5x wasmtime serve's req/s. Beside it, on
   wasmhttpd: the p3 hello with reuse against the p2 hello (hello-http)
   with a fresh instance per request, and the p3 hello made to take a
   fresh instance per request (`[reuse] requests = 1`).
3. The Python example (hello-py, CPython inside, tens of MB): time from
   starting wasmhttpd to the first answer from the plugin, with the compile
   cache warm (median of 5 restarts; the cold first start is shown too).
   Target: < 300 ms.

    python3 bench/components.py [p2] [p3] [python]    # all three by default
                                    # BENCH_SECONDS=5 BENCH_ROUNDS=5
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, ROUNDS, Server, build_release, compare, ensure_packages,  # noqa: E402
                     first_answer, free_port, median, table, wasmtime_cli, wasmtime_serve)

PLUGINS = os.path.join(ROOT, "plugins")


def hello_throughput(binary, wasmtime, work):
    site = os.path.join(work, "site")
    plugins = os.path.join(work, "plugins")
    os.makedirs(site)
    os.makedirs(plugins)
    hello = os.path.join(PLUGINS, "hello-http.wasm")
    shutil.copy(hello, plugins)
    ours, theirs, plain, tuned = free_port(), free_port(), free_port(), free_port()
    wasmhttpd = [binary, str(ours), "-b", "127.0.0.1", "-d", site, "--plugins", plugins, "-q"]
    servers = {
        "wasmhttpd": lambda: Server("wasmhttpd", wasmhttpd, ours),
        "wasmtime serve (pooling)": lambda: wasmtime_serve(wasmtime, hello, theirs),
        "wasmtime serve (default)": lambda: wasmtime_serve(wasmtime, hello, plain, pooling=False),
        "wasmtime serve (pooling, tuned)": lambda: wasmtime_serve(wasmtime, hello, tuned, tuned=True),
    }
    paths = {name: "/" for name in servers}
    paths["wasmhttpd"] = "/hello-http"
    results = compare(servers, paths, connections=8)
    table("bare wasi:http hello component, a fresh instance per request", results, "wasmhttpd",
          list(servers)[1:], connections=8)


def p3_throughput(binary, wasmtime, work):
    site = os.path.join(work, "p3-site")
    plugins = os.path.join(work, "p3-plugins")
    fresh = os.path.join(work, "p3-fresh")
    for d in (site, plugins, fresh):
        os.makedirs(d)
    hello_p3 = os.path.join(PLUGINS, "hello-p3.wasm")
    shutil.copy(hello_p3, plugins)
    shutil.copy(os.path.join(PLUGINS, "hello-http.wasm"), plugins)
    shutil.copy(hello_p3, fresh)
    with open(os.path.join(fresh, "hello-p3.toml"), "w") as f:
        f.write("[reuse]\nrequests = 1\n")
    ours, fresh_port, theirs = free_port(), free_port(), free_port()
    wasmhttpd = [binary, str(ours), "-b", "127.0.0.1", "-d", site, "--plugins", plugins, "-q"]
    wasmhttpd_fresh = [binary, str(fresh_port), "-b", "127.0.0.1", "-d", site, "--plugins", fresh,
                       "-q"]
    servers = {
        "wasmhttpd p3": lambda: Server("wasmhttpd", wasmhttpd, ours),
        "wasmtime serve p3": lambda: wasmtime_serve(wasmtime, hello_p3, theirs),
        "wasmhttpd p2, fresh": lambda: Server("wasmhttpd", wasmhttpd, ours),
        "wasmhttpd p3, fresh": lambda: Server("wasmhttpd", wasmhttpd_fresh, fresh_port),
    }
    paths = {"wasmhttpd p3": "/hello-p3", "wasmtime serve p3": "/",
             "wasmhttpd p2, fresh": "/hello-http", "wasmhttpd p3, fresh": "/hello-p3"}
    results = compare(servers, paths, connections=8)
    table("p3 hello component, each server's default instance reuse (128 requests, 16 at once);"
          " p2 and p3 with a fresh instance per request", results, "wasmhttpd p3",
          list(servers)[1:], connections=8)


def python_restart(binary, work):
    hello_py = os.path.join(PLUGINS, "hello-py.wasm")
    if not os.path.exists(hello_py):
        print("\nSKIPPED the Python restart: plugins/hello-py.wasm was not built")
        return
    site = os.path.join(work, "py-site")
    plugins = os.path.join(work, "py-plugins")
    cache = os.path.join(work, "py-cache")
    os.makedirs(site)
    os.makedirs(plugins)
    shutil.copy(hello_py, plugins)
    cold = first_answer(binary, site, plugins, "/hello-py", ["--cache-dir", cache])
    warm = [first_answer(binary, site, plugins, "/hello-py", ["--cache-dir", cache]) for _ in range(ROUNDS)]
    size = os.path.getsize(hello_py) / 1e6
    print(f"\n## hello-py ({size:.1f} MB component): process start to first answer")
    print(f"cold (compiling, empty cache): {cold * 1000:8.0f} ms")
    print(f"warm cache, median of {ROUNDS}:    {median(warm) * 1000:8.0f} ms"
          f"  (runs: {', '.join(f'{w * 1000:.0f}' for w in warm)})")


def main():
    ensure_packages("wrk")
    wasmtime = wasmtime_cli()
    subprocess.run([os.path.join(PLUGINS, "build")], check=True)
    binary = build_release()
    parts = sys.argv[1:] or ["p2", "p3", "python"]
    with tempfile.TemporaryDirectory() as work:
        if "p2" in parts:
            hello_throughput(binary, wasmtime, work)
        if "p3" in parts:
            p3_throughput(binary, wasmtime, work)
        if "python" in parts:
            python_restart(binary, work)


if __name__ == "__main__":
    main()
