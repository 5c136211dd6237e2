"""Static files: wasmhttpd vs nginx vs python3 -m http.server.

Serves a 1 KiB and a 10 MiB file from each server (keep-alive where the
server offers it) and prints req/s, MB/s, p99 and server CPU per request.

    python3 bench/static.py      # BENCH_SECONDS=5 BENCH_ROUNDS=5 per server and file
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, build_release, compare, ensure_packages, free_port, table  # noqa: E402

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
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    types {{ text/plain txt; application/octet-stream bin; }}
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {site};
    }}
}}
"""


def main():
    ensure_packages("wrk", "nginx")
    binary = build_release()
    with tempfile.TemporaryDirectory() as work:
        site = os.path.join(work, "site")
        os.mkdir(site)
        with open(os.path.join(site, "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        with open(os.path.join(site, "10m.bin"), "wb") as f:
            f.write(os.urandom(10 << 20))

        servers = {}
        port = free_port()
        # Started in the work directory: from the repository it would load
        # the example plugins (./plugins), and their compile would share the
        # server's core with the requests measured here.
        servers["wasmhttpd"] = lambda p=port: Server(
            "wasmhttpd", [binary, str(p), "-b", "127.0.0.1", "-d", site, "-q"], p, cwd=work)
        nginx_port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(work=work, port=nginx_port, site=site))
        nginx = "nginx" if subprocess.run(["which", "nginx"], capture_output=True).returncode == 0 else "/usr/sbin/nginx"
        servers["nginx"] = lambda p=nginx_port: Server("nginx", [nginx, "-c", conf, "-e", os.path.join(work, "nginx-error.log")], p)
        py_port = free_port()
        servers["python http.server"] = lambda p=py_port: Server(
            "python", [sys.executable, "-m", "http.server", str(p), "-b", "127.0.0.1", "-d", site], p)

        # Python's default protocol is HTTP/1.0, one request per connection:
        # with -p HTTP/1.1 its separate header and body writes meet Nagle's
        # algorithm and each keep-alive response stalls ~40 ms, far slower.
        for path, title, connections in [("/1k.bin", "1 KiB file", 32), ("/10m.bin", "10 MiB file", 8)]:
            results = compare(servers, path, connections=connections)
            table(title, results, "wasmhttpd", ["nginx", "python http.server"], connections)


if __name__ == "__main__":
    main()
