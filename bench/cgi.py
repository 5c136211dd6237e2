"""Classic CGI: the same hello program, a process per request, everywhere.

- wasmhttpd --cgi running bench/cgi/hello.c compiled natively;
- lighttpd mod_cgi running the same program;
- python3 -m http.server --cgi running the same program;
- wasmhttpd --cgi with that program compiled to wasm32-wasi (Debian clang 14 calls wasip1 so) and dropped
  into cgi-bin/ as hello.wasm (a sandboxed instance per request, no process).

Server on CPU 0 (with the CGI processes it starts), wrk on CPU 1, servers
interleaved, medians (see harness.py). CPU per request includes the CGI
processes'. Targets: wasmhttpd's process CGI at least lighttpd's req/s, and
the .wasm version at least 10x the process version.

    python3 bench/cgi.py       # BENCH_SECONDS=5 BENCH_ROUNDS=5
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, lighttpd_cgi, build_release, compare, ensure_packages, free_port, median, table  # noqa: E402

OURS = "wasmhttpd --cgi (process)"
WASM = "wasmhttpd --cgi (.wasm)"
LIGHTTPD = "lighttpd mod_cgi (process)"
PYTHON = "python --cgi (process)"


def main():
    ensure_packages("wrk", "lighttpd", "gcc")
    subprocess.run([os.path.join(ROOT, "plugins", "build")], check=True)  # the wasm C toolchain
    binary = build_release()
    with tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o755)  # CGI programs may run as nobody
        site = os.path.join(work, "site")
        cgi_bin = os.path.join(site, "cgi-bin")
        os.makedirs(cgi_bin)
        hello_c = os.path.join(ROOT, "bench", "cgi", "hello.c")
        subprocess.run(["gcc", "-O2", "-o", os.path.join(cgi_bin, "hello"), hello_c], check=True)
        subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-s", "-o",
                        os.path.join(cgi_bin, "hello.wasm"), hello_c], check=True)

        ours = free_port()
        py = free_port()
        wasmhttpd = [binary, str(ours), "-b", "127.0.0.1", "-d", site, "--cgi", "-q"]
        python = [sys.executable, "-m", "http.server", str(py), "-b", "127.0.0.1", "-d", site, "--cgi"]
        servers = {
            OURS: lambda: Server("wasmhttpd", wasmhttpd, ours),
            LIGHTTPD: lambda: lighttpd_cgi(site, work),
            PYTHON: lambda: Server("python", python, py),
            WASM: lambda: Server("wasmhttpd", wasmhttpd, ours),
        }
        paths = {OURS: "/cgi-bin/hello", LIGHTTPD: "/cgi-bin/hello", PYTHON: "/cgi-bin/hello",
                 WASM: "/cgi-bin/hello.wasm"}
        results = compare(servers, paths, connections=8)
        table("hello CGI program, one run per request", results, OURS, [LIGHTTPD, PYTHON], connections=8)
        ratios = [w["rps"] / p["rps"] for w, p in zip(results[WASM], results[OURS])]
        print(f"ratio {WASM}/{OURS} req/s {median(ratios):6.2f}x"
              f"  (rounds: {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
