"""HTTPS and HTTP/2: wasmhttpd vs nginx, with h2load (nghttp2-client).

Four comparisons, each server pinned to CPU 0 and h2load to CPU 1, the
servers interleaved round by round (see harness.compare), medians and
ranges reported:

1. HTTP/2 over TLS, a 1 KiB file: wasmhttpd vs nginx (`listen ... ssl
   http2`, Debian 12's nginx 1.22 spelling of `http2 on`), the same
   certificate (ECDSA P-256) for both, and both on TLS 1.3 (nginx 1.22
   offers only up to TLS 1.2 unless told);
2. the hello plugin over HTTP/2 (TLS), next to the same plugin over
   HTTP/1.1 (TLS);
3. TLS handshakes per second: one request per connection, `Connection:
   close`, full handshakes (no resumption), wasmhttpd vs nginx;
4. HTTP/1.1 over TLS vs plain HTTP/1.1, the 1 KiB file, wasmhttpd.

    python3 bench/tls.py [h2] [plugin] [handshakes] [tls]   # all four if none named
                                             # BENCH_SECONDS=5 BENCH_ROUNDS=5
"""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, ROUNDS, SECONDS, Server, build_release, ensure_packages,  # noqa: E402
                     free_port, median)

NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    http2_max_requests 1000000;
    http2_max_concurrent_streams 128;
    types {{ application/octet-stream bin; }}
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
        root {site};
    }}
}}
"""


def h2load(port, path, clients, streams, requests=None, h1=False, close=False, seconds=SECONDS):
    """Runs h2load on CPU 1; returns dict(rps, handshakes) for the run."""
    url = f"https://127.0.0.1:{port}{path}"
    argv = ["taskset", "-c", "1", "h2load", "-t1", f"-c{clients}", f"-m{streams}"]
    if h1:
        argv.append("--h1")
    if close:
        argv += ["-H", "Connection: close"]
    if requests:
        argv += [f"-n{requests}"]
    else:
        argv += [f"-D{seconds}", "--warm-up-time=1"]
    out = subprocess.run(argv + [url], check=True, capture_output=True, text=True).stdout
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed",
                     out)
    if not done or int(done.group(5)) > 0 or int(done.group(4)) == 0:
        raise RuntimeError(f"h2load against {url}:\n{out}")
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    return {"rps": rps, "requests": int(done.group(4))}


def plain_h2load(port, path, clients):
    """h2load over plain HTTP/1.1 (no TLS)."""
    url = f"http://127.0.0.1:{port}{path}"
    out = subprocess.run(["taskset", "-c", "1", "h2load", "-t1", f"-c{clients}", "-m1", "--h1",
                          f"-D{SECONDS}", "--warm-up-time=1", url],
                         check=True, capture_output=True, text=True).stdout
    return {"rps": float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))}


def interleave(servers, measure):
    """`measure(server)` for every server, round by round."""
    results = {name: [] for name in servers}
    for _ in range(ROUNDS):
        for name, start in servers.items():
            server = start()
            try:
                results[name].append(measure(name, server))
            finally:
                server.stop()
    return results


def report(title, results, pairs):
    print(f"\n## {title}  ({ROUNDS} rounds, interleaved; server on CPU 0, h2load on CPU 1; medians)")
    print(f"{'server':<36}{'req/s':>12}{'range':>22}")
    for name, runs in results.items():
        rps = [r["rps"] for r in runs]
        print(f"{name:<36}{median(rps):>12.0f}{f'{min(rps):.0f}-{max(rps):.0f}':>22}")
    for ours, other in pairs:
        ratios = [a["rps"] / b["rps"] for a, b in zip(results[ours], results[other])]
        print(f"ratio {ours} / {other}: {median(ratios):.2f}x  (rounds: {min(ratios):.2f}-{max(ratios):.2f})")


PARTS = ("h2", "plugin", "handshakes", "tls")


def main():
    wanted = sys.argv[1:] or list(PARTS)
    unknown = [part for part in wanted if part not in PARTS]
    if unknown:
        sys.exit(f"bench/tls.py: unknown part {unknown[0]!r} (parts: {', '.join(PARTS)})")
    ensure_packages("h2load", "nginx")
    binary = build_release()
    hello = os.path.join(ROOT, "plugins", "hello.wasm")
    if not os.path.exists(hello):
        subprocess.run([os.path.join(ROOT, "plugins", "build")], check=True)
    with tempfile.TemporaryDirectory() as work:
        site = os.path.join(work, "site")
        plugins = os.path.join(work, "plugins")
        os.mkdir(site)
        os.mkdir(plugins)
        with open(os.path.join(site, "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        os.symlink(hello, os.path.join(plugins, "hello.wasm"))
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        nginx_port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(work=work, port=nginx_port, site=site, cert=cert, key=key))
        nginx = "nginx" if subprocess.run(["which", "nginx"], capture_output=True).returncode == 0 \
            else "/usr/sbin/nginx"

        def ours(*extra):
            port = free_port()
            return lambda: Server("wasmhttpd", [binary, str(port), "-b", "127.0.0.1", "-d", site, "-q",
                                                "--plugins", plugins, *extra], port, cwd=work)
        tls = ours("--tls-cert", cert, "--tls-key", key)
        servers = {
            "wasmhttpd": tls,
            "nginx": lambda: Server("nginx", [nginx, "-c", conf, "-e", os.path.join(work, "e.log")],
                                    nginx_port),
        }

        if "h2" in wanted:
            results = interleave(servers, lambda name, s: h2load(s.port, "/1k.bin", 32, 8))
            report("HTTP/2 over TLS, 1 KiB file (h2load -c32 -m8)", results, [("wasmhttpd", "nginx")])

        def plugin(name, s):
            if name.endswith("HTTP/1.1"):
                return h2load(s.port, "/hello", 8, 1, h1=True)
            return h2load(s.port, "/hello", 8, 8)
        if "plugin" in wanted:
            results = interleave({"hello plugin, HTTP/2 (TLS)": tls,
                                  "hello plugin, HTTP/1.1 (TLS)": tls}, plugin)
            report("hello plugin over HTTP/2 (h2load -c8 -m8) and HTTP/1.1 (-c8)", results,
                   [("hello plugin, HTTP/2 (TLS)", "hello plugin, HTTP/1.1 (TLS)")])

        if "handshakes" in wanted:
            results = interleave(servers, lambda name, s: h2load(
                s.port, "/1k.bin", 16, 1, requests=4000, h1=True, close=True))
            report("TLS handshakes per second (h2load --h1 -c16, Connection: close, ECDSA P-256)",
                   results, [("wasmhttpd", "nginx")])

        if "tls" in wanted:
            plain = ours()
            results = interleave({"wasmhttpd HTTP/1.1 over TLS": tls, "wasmhttpd HTTP/1.1 plain": plain},
                                 lambda name, s: plain_h2load(s.port, "/1k.bin", 32) if "plain" in name
                                 else h2load(s.port, "/1k.bin", 32, 1, h1=True))
            report("HTTP/1.1, 1 KiB file, over TLS and plain (h2load --h1 -c32)", results,
                   [("wasmhttpd HTTP/1.1 over TLS", "wasmhttpd HTTP/1.1 plain")])

if __name__ == "__main__":
    main()
