"""Soak: minutes of mixed load beside hostile guests, slow clients and
constant hot reload, watching the server for errors and for growth.

- Well-behaved load (must never fail): a 1 KiB and a 1 MiB static file,
  the Rust hello plugin, the bare wasi:http hello component, a CGI
  script, and a plugin (`churn`) whose file is replaced every second by
  another build of hello (hot reload while it is being asked for).
- Hostile load (must get its 5xx or 408, and nothing else must notice):
  a wasi:http guest flooding the host with header objects, handles and
  bodies, one that spins past its deadline, one that hogs memory, one that
  answers 101; a client trickling a body and one reading a download a
  byte at a time; plugins added and removed beside `churn`.
- Every 5 s the server's RSS, open descriptors and threads are sampled.

Reports the errors on the well-behaved routes (the target is 0) and RSS,
descriptors and threads over time, with their growth from the end of the
warm-up (the first minute) to the end, peak against peak (the target is
under 5%).

Server on CPU 0, the load on CPU 1 (as the other benches).

    python3 bench/soak.py            # SOAK_MINUTES=10
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, build_release, free_port  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
WARM_UP = min(60.0, MINUTES * 60 / 5)
SAMPLE_EVERY = 5.0

WELL_BEHAVED = {
    "/small.txt": 200,
    "/big.bin": 200,
    "/hello": 200,
    "/hello-http": 200,
    "/cgi-bin/hello.sh": 200,
    "/churn": 200,
}
HOSTILE = {
    "/web/fields-flood?61440": 500,
    "/web/handle-flood": 500,
    "/web/body-flood": 500,
    "/web/spin": 504,
    "/web/hog": 500,
    "/web/status?101": 502,
}


def request(port, target, timeout=30):
    """One GET on a new connection: its status and body length."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, len(body)


def usage(pid):
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: int(next(l for l in status.splitlines() if l.startswith(name)).split()[1])
    return field("VmRSS:"), len(os.listdir(f"/proc/{pid}/fd")), field("Threads:")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = {}

    def add(self, target, good, what):
        with self.lock:
            if good:
                self.ok += 1
            else:
                key = f"{target}: {what}"
                self.errors[key] = self.errors.get(key, 0) + 1


def load(port, targets, tally, stop):
    while not stop.is_set():
        for target, expected in targets.items():
            try:
                status, _ = request(port, target)
                tally.add(target, status == expected, status)
            except OSError as e:
                tally.add(target, False, type(e).__name__)


def trickle(port, stop):
    """A body sent a byte a second: cut off by the minimum rate."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(b"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(1000):
                    if stop.is_set():
                        return
                    s.sendall(b"x")
                    time.sleep(1)
        except OSError:
            pass


def slow_reader(port, stop):
    """A download read a little at a time: cut off by the minimum rate."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: soak\r\n\r\n")
                while not stop.is_set() and s.recv(16):
                    time.sleep(0.5)
        except OSError:
            pass


def churn(plugins, builds, stop):
    """Replaces churn.wasm every second (a new inode each time, as a deploy
    does) and adds and removes another plugin."""
    i = 0
    while not stop.is_set():
        source = builds[i % len(builds)]
        staged = os.path.join(plugins, ".churn.tmp")
        shutil.copy(source, staged)
        os.rename(staged, os.path.join(plugins, "churn.wasm"))
        extra = os.path.join(plugins, "extra.wasm")
        if i % 2:
            shutil.copy(source, extra)
        elif os.path.exists(extra):
            os.remove(extra)
        i += 1
        stop.wait(1)


def main():
    subprocess.run([os.path.join(ROOT, "plugins", "build")], check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target", "wasm32-wasip2",
                    "--manifest-path", os.path.join(ROOT, "tests", "components", "Cargo.toml"),
                    "--target-dir", os.path.join(ROOT, "target", "components")], check=True)
    binary = build_release()
    with tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o755)
        site = os.path.join(work, "site")
        plugins = os.path.join(work, "plugins")
        os.makedirs(os.path.join(site, "cgi-bin"))
        os.makedirs(plugins)
        with open(os.path.join(site, "small.txt"), "wb") as f:
            f.write(b"s" * 1024)
        with open(os.path.join(site, "big.bin"), "wb") as f:
            f.write(b"b" * (1 << 20))
        with open(os.path.join(site, "huge.bin"), "wb") as f:
            f.write(b"h" * (64 << 20))
        script = os.path.join(site, "cgi-bin", "hello.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n")
        os.chmod(script, 0o755)
        built = os.path.join(ROOT, "plugins")
        shutil.copy(os.path.join(built, "hello.wasm"), plugins)
        shutil.copy(os.path.join(built, "hello-http.wasm"), plugins)
        shutil.copy(os.path.join(built, "hello.wasm"), os.path.join(plugins, "churn.wasm"))
        shutil.copy(os.path.join(ROOT, "target", "components", "wasm32-wasip2", "release", "http.wasm"),
                    os.path.join(plugins, "web.wasm"))
        with open(os.path.join(plugins, "web.toml"), "w") as f:
            f.write("[limits]\ntimeout_secs = 2\nmemory_mib = 64\n")
        builds = [os.path.join(built, "hello.wasm"), os.path.join(built, "hello-c.wasm")]

        port = free_port()
        server = Server("wasmhttpd", [binary, str(port), "-b", "127.0.0.1", "-d", site, "--plugins",
                                      plugins, "--cgi", "-q", "--min-rate-window", "5"], port)
        # The load runs on CPU 1, the server on CPU 0.
        os.sched_setaffinity(0, {1})
        for target in WELL_BEHAVED:
            deadline = time.time() + 120
            while request(port, target)[0] != 200 and time.time() < deadline:
                time.sleep(0.5)
        stop = threading.Event()
        good, bad = Tally(), Tally()
        threads = [threading.Thread(target=load, args=(port, WELL_BEHAVED, good, stop)) for _ in range(4)]
        threads += [threading.Thread(target=load, args=(port, HOSTILE, bad, stop)) for _ in range(2)]
        threads += [threading.Thread(target=trickle, args=(port, stop)) for _ in range(4)]
        threads += [threading.Thread(target=slow_reader, args=(port, stop)) for _ in range(4)]
        threads.append(threading.Thread(target=churn, args=(plugins, builds, stop)))
        for t in threads:
            t.start()
        samples = []
        started = time.time()
        try:
            while time.time() - started < MINUTES * 60:
                time.sleep(SAMPLE_EVERY)
                rss, fds, nthreads = usage(server.proc.pid)
                elapsed = time.time() - started
                samples.append((elapsed, rss, fds, nthreads))
                print(f"{elapsed:7.0f} s  RSS {rss / 1024:7.1f} MiB  fds {fds:4d}  threads {nthreads:3d}  "
                      f"ok {good.ok}  hostile {bad.ok}  errors {sum(good.errors.values())}", flush=True)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=70)
            server.stop()

    # The hostile guests make RSS swing with whichever attack is running:
    # the first and the last minute after warm-up are compared by their
    # peaks (what the server holds at worst), not by single samples.
    warm = [s for s in samples if s[0] >= WARM_UP]
    first = [s for s in warm if s[0] < WARM_UP + 60] or warm[:1]
    last = [s for s in warm if s[0] >= warm[-1][0] - 60] or warm[-1:]
    avg = lambda rows, i: max(r[i] for r in rows)
    print(f"\nsoak: {MINUTES:g} min; well-behaved requests {good.ok}, errors {sum(good.errors.values())}; "
          f"hostile requests answered as expected {bad.ok}, otherwise {sum(bad.errors.values())}")
    for name, i in (("RSS (MiB)", 1), ("descriptors", 2), ("threads", 3)):
        a, b = avg(first, i), avg(last, i)
        scale = 1024 if i == 1 else 1
        growth = (b - a) / a * 100 if a else 0.0
        print(f"  {name:12s} peak in the first minute after warm-up {a / scale:8.1f}, in the last {b / scale:8.1f}  "
              f"growth {growth:+.1f}%  (min {min(r[i] for r in warm) / scale:.1f}, "
              f"max {max(r[i] for r in warm) / scale:.1f})")
    for key, n in sorted(good.errors.items()):
        print(f"  error on a well-behaved route: {key} x{n}")
    for key, n in sorted(bad.errors.items()):
        print(f"  hostile route answered otherwise: {key} x{n}")
    sys.exit(1 if good.errors else 0)


if __name__ == "__main__":
    main()
