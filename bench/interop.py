"""Portability: the same wasi:http plugin file, served by wasmhttpd and by
`wasmtime serve`, must give the same answers.

For each component (the bare hello-http, the SDK examples built for
wasm32-wasip2, and the Python and JavaScript examples when they are built),
both servers get the same requests; the status, the Content-Type and the
body must be equal (but for two differences named in CASES). wasmhttpd routes the plugin at `/*` (a sidecar), so the
guest sees the same path under both.

Not in the default test run: it builds the wasmtime CLI from crates.io the
first time (about 20 minutes on 2 cores). Exits 1 on any difference.

    python3 bench/interop.py
"""

import http.client
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, build_release, free_port, wasmtime_cli, wasmtime_serve  # noqa: E402

PLUGINS = os.path.join(ROOT, "plugins")

# (plugin file, requests, allowed differences): each request is (method,
# target, headers, body). Two differences are allowed where a plugin shows
# them, and nowhere else:
# - the client's address: wasmhttpd passes it (wasmhttpd-client-addr);
#   `wasmtime serve` passes none;
# - the order of distinct header fields: wasmhttpd keeps the client's order,
#   `wasmtime serve` (a hash map) does not; RFC 9110 gives the order of
#   different field names no meaning.
FORM = "name=Ada+Lovelace&lang=wasm%2Fwasi"
CLIENT = ("Client: ", "client_address=")
CASES = [
    ("hello-http.wasm", [("GET", "/", {}, b""), ("GET", "/any/path?q=1", {}, b""),
                         ("POST", "/x", {"Content-Type": "text/plain"}, b"ignored")], {}),
    ("wasip2/hello.wasm", [("GET", "/there?x=1", {}, b""), ("POST", "/", {}, b"no"),
                           ("OPTIONS", "/", {}, b""), ("HEAD", "/h", {}, b"")], {}),
    ("wasip2/form.wasm", [("GET", "/", {}, b""),
                          ("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
                           FORM.encode())], {"client": CLIENT}),
    ("wasip2/headers.wasm", [("GET", "/?a=b", {"X-Test": "interop", "User-Agent": "interop"}, b"")],
     {"client": CLIENT, "field_order": True}),
    ("hello-py.wasm", [("GET", "/py?q=1", {}, b""), ("POST", "/py", {}, b"hello body")], {}),
    ("hello-js.wasm", [("GET", "/js?q=1", {}, b""), ("POST", "/js", {}, b"hello body")], {}),
]


def comparable(answer, allowed):
    """The answer with the allowed differences taken out: lines giving the
    client's address dropped, and lines sorted where field order may
    differ."""
    status, content_type, body = answer
    lines = body.decode("utf-8", "replace").split("\n")
    lines = [line for line in lines if not line.startswith(allowed.get("client", ()))]
    if allowed.get("field_order"):
        lines.sort()
    return status, content_type, lines


def ask(port, method, target, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, target, body=body or None, headers={"Host": "interop.test", **headers})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def main():
    wasmtime = wasmtime_cli()
    subprocess.run([os.path.join(PLUGINS, "build")], check=True)
    binary = build_release()
    differences = 0
    compared = 0
    with tempfile.TemporaryDirectory() as work:
        site = os.path.join(work, "site")
        os.makedirs(site)
        for file, requests, allowed in CASES:
            source = os.path.join(PLUGINS, file)
            if not os.path.exists(source):
                print(f"SKIPPED {file}: not built (plugins/build could not install its toolchain)")
                continue
            plugins = os.path.join(work, "plugins-" + file.replace("/", "-"))
            os.makedirs(plugins)
            shutil.copy(source, os.path.join(plugins, "app.wasm"))
            with open(os.path.join(plugins, "app.toml"), "w") as f:
                f.write('routes = ["/*"]\n')
            ours_port, theirs_port = free_port(), free_port()
            ours = Server("wasmhttpd", [binary, str(ours_port), "-b", "127.0.0.1", "-d", site,
                                        "--plugins", plugins, "-q"], ours_port)
            theirs = wasmtime_serve(wasmtime, source, theirs_port)
            try:
                for method, target, headers, body in requests:
                    a = ask(ours_port, method, target, headers, body)
                    b = ask(theirs_port, method, target, headers, body)
                    compared += 1
                    same = comparable(a, allowed) == comparable(b, allowed)
                    differences += not same
                    verdict = "same" if a == b else "same*" if same else "DIFFERENT"
                    print(f"{verdict:<10}{file:<22}{method} {target}"
                          f"  -> {a[0]} {a[1]} ({len(a[2])} bytes)")
                    if not same:
                        print(f"    wasmhttpd:       {a!r}\n    wasmtime serve:  {b!r}")
            finally:
                ours.stop()
                theirs.stop()
    print(f"\n{compared} requests, {differences} different answers"
          " (same*: the same but for the client's address or the order of distinct fields)")
    sys.exit(1 if differences or not compared else 0)


if __name__ == "__main__":
    main()
