"""Benchmark harness shared by the bench/ scenarios.

Each server runs pinned to CPU 0 and wrk to CPU 1 (taskset), over loopback
with keep-alive. For every run we record wrk's requests/s, transfer rate and
p99 latency, and the server's own CPU time (user + system, all its threads
and processes, from /proc) divided by the requests served, so a result is
still meaningful when the single wrk thread, not the server, is the limit.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure_packages(*names):
    """Installs Debian packages that are missing (wrk, nginx, ...)."""
    missing = [n for n in names if shutil.which(n) is None and not os.path.exists(f"/usr/sbin/{n}")]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"installing {' '.join(missing)} from Debian's packages ...", file=sys.stderr)
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def build_release():
    subprocess.run(["cargo", "build", "--release", "--bin", "wasmhttpd"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "wasmhttpd")


WASMTIME_VERSION = "48.0.8"  # the wasmtime wasmhttpd is built on
WASMTIME_FEATURES = "run,serve,component-model-async,cranelift,pooling-allocator,cache,config,parallel-compilation,logging,component-model,wat"


def wasmtime_cli():
    """The `wasmtime` CLI of the same version as wasmhttpd's wasmtime, from
    crates.io, built once into target/toolchains/wasmtime-cli (about 20
    minutes on 2 cores). Only the features `wasmtime run` and `wasmtime
    serve` need are built; none of them changes how a request is served."""
    root = os.path.join(ROOT, "target", "toolchains", "wasmtime-cli")
    binary = os.path.join(root, "bin", "wasmtime")
    if os.path.exists(binary):
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        if WASMTIME_VERSION in version:
            return binary
    print(f"installing wasmtime-cli {WASMTIME_VERSION} from crates.io (cargo install, release) ...",
          file=sys.stderr)
    subprocess.run(["cargo", "install", "wasmtime-cli", "--version", WASMTIME_VERSION, "--locked",
                    "--no-default-features", "--features", WASMTIME_FEATURES, "--root", root,
                    "--target-dir", os.path.join(ROOT, "target", "toolchains", "wasmtime-cli-build")],
                   check=True)
    return binary


# wasmhttpd's own pooling settings (plugin/engine.rs), as wasmtime options.
WASMHTTPD_POOLING = ("pooling-pagemap-scan=auto,pooling-memory-keep-resident=2097152,"
                     "pooling-table-keep-resident=65536")


def wasmtime_serve(wasmtime, component, port, pooling=True, tuned=False):
    """`wasmtime serve` on component at 127.0.0.1:port, with the WASI
    interfaces language toolchains import (-S cli) and, by default, its
    pooling allocator; its own compile cache is on (the CLI's default).
    `tuned` adds wasmhttpd's settings for resetting instances."""
    argv = [wasmtime, "serve", "-S", "cli", "--addr", f"127.0.0.1:{port}"]
    if pooling:
        argv += ["-O", "pooling-allocator=y" + ("," + WASMHTTPD_POOLING if tuned else "")]
    # It compiles before it listens: an interpreter's component takes
    # seconds, more on a busy machine.
    return Server("wasmtime serve", argv + [component], port, start_timeout=300)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


class Server:
    """A server process pinned to CPU 0."""

    def __init__(self, name, argv, port, cwd=None, env=None, start_timeout=30):
        self.name = name
        self.port = port
        if env is None:
            # As in production: with RUST_BACKTRACE set (a developer's
            # shell), every error a Rust server creates, even one it then
            # ignores, captures a backtrace (wasmtime makes one per
            # component instance it drops).
            env = {k: v for k, v in os.environ.items()
                   if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + argv, cwd=cwd, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_listening(port, start_timeout)

    def cpu_seconds(self):
        """User + system CPU of the server's whole process group, plus that
        of the children its processes have reaped (CGI processes, which may
        have run in process groups of their own)."""
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[2] is pgrp; utime, stime, cutime and cstime are fields
            # 14 to 17 of stat.
            if int(fields[2]) == self.proc.pid:
                total += sum(int(f) for f in fields[11:15])
        return total / TICKS

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


LIGHTTPD_CGI_CONF = """
server.modules = ("mod_cgi")
server.document-root = "{root}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "{work}/lighttpd-error.log"
server.max-keep-alive-requests = 1000000
cgi.assign = ("" => "")
"""


def lighttpd_cgi(site, work):
    """lighttpd serving site with mod_cgi running every file under it as a
    program (its configuration and error log go in work)."""
    port = free_port()
    conf = os.path.join(work, f"lighttpd-{port}.conf")
    with open(conf, "w") as f:
        f.write(LIGHTTPD_CGI_CONF.format(root=site, port=port, work=work))
    return Server("lighttpd", ["/usr/sbin/lighttpd", "-D", "-f", conf], port)


UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(server, path, connections=CONNECTIONS, seconds=SECONDS):
    """Runs wrk against server; returns dict(rps, mbps, p99_ms, cpu_us)."""
    url = f"http://127.0.0.1:{server.port}{path}"
    # Warm up: page cache, connection setup, lazy initialisation.
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", "-d1s", url],
                   check=True, capture_output=True)
    cpu_before = server.cpu_seconds()
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "--latency", url], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    mbps = float(value) * UNITS[unit] / (1 << 20)
    p99, p99_unit = re.search(r"99%\s+([\d.]+)(\w+)", out).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{server.name}: {errors.group(1)} error responses for {path}")
    return {"rps": rps, "mbps": mbps, "p99_ms": float(p99) * TIME_UNITS[p99_unit],
            "cpu_us": cpu / max(requests, 1) * 1e6, "requests": requests}


def first_answer(binary, site, plugins, path, extra=()):
    """Seconds from starting wasmhttpd (serving site, with plugins and the
    extra arguments) to the first 200 for path."""
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([binary, str(port), "-b", "127.0.0.1", "-d", site, "--plugins", plugins,
                             "-q", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 300
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return time.monotonic() - started
                raise RuntimeError(f"{path} answered {response.status}")
            except (ConnectionRefusedError, socket.timeout):
                time.sleep(0.002)
        raise RuntimeError(f"{path} never answered")
    finally:
        proc.terminate()
        proc.wait()


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def compare(servers, path, connections=CONNECTIONS, rounds=ROUNDS):
    """Runs every server on path (one path for all, or a dict of a path per
    server), round-robin, `rounds` times.

    This machine's speed drifts by tens of percent over a minute (shared
    hardware), so servers are interleaved, each round compares servers
    measured moments apart, and medians are reported.
    Returns {name: [result per round]}.
    """
    results = {name: [] for name in servers}
    for _ in range(rounds):
        for name, start in servers.items():
            server = start()
            try:
                target = path[name] if isinstance(path, dict) else path
                results[name].append(run_wrk(server, target, connections=connections))
            finally:
                server.stop()
    return results


def table(title, results, ours, others, connections=CONNECTIONS):
    """Prints medians side by side, with ratios ours/other (median of the
    per-round ratios, and their range)."""
    rounds = len(next(iter(results.values())))
    print(f"\n## {title}  (wrk -t1 -c{connections} -d{SECONDS}s x {rounds} rounds, interleaved;"
          f" server on CPU 0, wrk on CPU 1; medians)")
    print(f"{'server':<28}{'req/s':>12}{'MB/s':>10}{'p99 ms':>9}{'CPU µs/req':>12}")
    for name, runs in results.items():
        m = {k: median([r[k] for r in runs]) for k in ("rps", "mbps", "p99_ms", "cpu_us")}
        print(f"{name:<28}{m['rps']:>12.0f}{m['mbps']:>10.1f}{m['p99_ms']:>9.2f}{m['cpu_us']:>12.1f}")
    for other in others:
        if other not in results or ours not in results:
            continue
        pairs = list(zip(results[ours], results[other]))
        for key, label in (("rps", "req/s"), ("mbps", "MB/s"), ("cpu_us", "CPU/req")):
            ratios = [a[key] / b[key] for a, b in pairs]
            print(f"ratio {ours}/{other} {label:<8} {median(ratios):6.2f}x"
                  f"  (rounds: {min(ratios):.2f}-{max(ratios):.2f})")
