#!/usr/bin/env python3
"""The service under load with one request in ten malformed (BAD_SHARE), for SECONDS (default 300).

Starts `captcha-ocr-read serve` on a free loopback port, reads each image in examples/ once
alone (the expected readings), then CONNECTIONS threads (default 16) send requests over
keep-alive connections: nine in ten a good image (raw body or JSON), one in ten malformed (bad
base64, truncated image, a decompression bomb, a body over --max-body-bytes, broken JSON, a
JSON image that is not a string, JSON nested 4 million deep, an unknown model). Every answer is
checked: good requests must get 200 and the reading they got alone; bad ones a 4xx with a
one-line JSON error. The server's RSS is sampled after the warm-up and every 30 s; it must still
be running at the end.

  bench/serve_hostile.py [SECONDS] [CONNECTIONS] [BAD_SHARE]

With BAD_SHARE 0 it gives the figures of good requests alone to compare with.

Exit status 0 when every check held. Only the Python standard library is used.
"""
import base64
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "captcha-ocr-read")
MODEL = os.path.join(ROOT, "models", "general.safetensors")
MAX_BODY = 4 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png():
    """A valid 30000 x 30000 grey PNG of zeros: 100 kB that would decode to 900 MB."""
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\0" * 30001
    data = b"".join(compressor.compress(row) for _ in range(30000)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}      # kind -> answered
        self.failures = []    # one line each
        self.good_ms = []

    def add(self, kind, ok, why="", ms=None):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if not ok and len(self.failures) < 50:
                self.failures.append(f"{kind}: {why}")
            if ms is not None:
                self.good_ms.append(ms)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 300
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    bad_share = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--model", f"general={MODEL}", "--port", str(port), "--threads", "2",
                               "--max-batch", "64", "--max-body-bytes", str(MAX_BODY)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        return run(server, port, seconds, connections, bad_share)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(server, port, seconds, connections, bad_share):
    images = []
    for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if name.endswith(".png"):
            with open(os.path.join(ROOT, "examples", name), "rb") as f:
                images.append(f.read())
    expected = []
    for image in images:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/read", image, {"Content-Type": "image/png"})
        expected.append(json.loads(c.getresponse().read())["text"])
        c.close()
    bomb = bomb_png()
    huge = b"\0" * (MAX_BODY + 1)

    def bad_request(rng):
        image = rng.choice(images)
        kind = rng.choice(["bad base64", "truncated image", "bomb image", "huge body", "broken JSON",
                           "image not a string", "deep JSON", "unknown model"])
        if kind == "bad base64":
            return kind, json.dumps({"image": "not*base64!" * 20}), "application/json"
        if kind == "truncated image":
            return kind, image[: len(image) // 2], "image/png"
        if kind == "bomb image":
            return kind, bomb, "image/png"
        if kind == "huge body":
            return kind, huge, "image/png"
        if kind == "broken JSON":
            return kind, '{"image": "' + base64.b64encode(image).decode()[:100], "application/json"
        if kind == "deep JSON":
            return kind, "[" * (MAX_BODY - 1), "application/json"
        if kind == "image not a string":
            return kind, json.dumps({"image": [1, 2, 3]}), "application/json"
        return kind, json.dumps({"image": base64.b64encode(image).decode(), "model": "nosuch"}), "application/json"

    stats = Stats()
    stop_at = time.monotonic() + seconds

    def client(seed):
        rng = random.Random(seed)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop_at:
            if rng.random() < bad_share:
                kind, body, content_type = bad_request(rng)
                good = None
            else:
                good = rng.randrange(len(images))
                if rng.random() < 0.5:
                    kind, body, content_type = "good raw", images[good], "image/png"
                else:
                    kind, body = "good JSON", json.dumps({"image": base64.b64encode(images[good]).decode()})
                    content_type = "application/json"
            start = time.monotonic()
            try:
                c.request("POST", "/v1/read", body, {"Content-Type": content_type})
                response = c.getresponse()
                answer = response.read()
                status = response.status
                closing = response.getheader("Connection", "").lower() == "close"
            except (OSError, http.client.HTTPException) as e:
                # A server may close a connection whose body it refused unread: that is an
                # answer only where the status came first, so count it as a failure otherwise.
                stats.add(kind, False, f"no answer ({e.__class__.__name__}: {e})")
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            ms = (time.monotonic() - start) * 1000
            if good is not None:
                text = json.loads(answer).get("text") if status == 200 else None
                ok = status == 200 and text == expected[good]
                stats.add(kind, ok, f"HTTP {status}, read {text!r}, alone {expected[good]!r}", ms)
            else:
                try:
                    error = json.loads(answer).get("error", "")
                except ValueError:
                    error = ""
                ok = 400 <= status < 500 and error and "\n" not in error
                stats.add(kind, ok, f"HTTP {status} {answer[:120]!r}")
            if closing:
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.close()

    # Warm-up, then the RSS the run starts from.
    warm = time.monotonic() + 5
    while time.monotonic() < warm:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/read", images[0], {"Content-Type": "image/png"})
        c.getresponse().read()
        c.close()
    rss = [rss_kib(server.pid)]
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(min(30, max(0.1, stop_at - time.monotonic())))
        if server.poll() is None:
            rss.append(rss_kib(server.pid))
    for t in threads:
        t.join()
    alive = server.poll() is None
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
    print(f"CPU: {cpu}; {os.cpu_count()} cores; {seconds:.0f} s, {connections} connections")
    total = sum(stats.counts.values())
    bad = sum(n for k, n in stats.counts.items() if not k.startswith("good"))
    print(f"requests: {total} ({total / seconds:.0f}/s), malformed {bad} ({100 * bad / max(1, total):.1f}%)")
    for kind in sorted(stats.counts):
        print(f"  {kind}: {stats.counts[kind]}")
    good = sorted(stats.good_ms)
    if good:
        print(f"good requests: p50 {good[len(good) // 2]:.1f} ms, p99 {good[int(len(good) * 0.99)]:.1f} ms")
    print(f"server RSS (MiB) after warm-up and every 30 s: {' '.join(f'{r / 1024:.0f}' for r in rss)}")
    print(f"server running at the end: {'yes' if alive else 'NO'}")
    print(f"failed checks: {len(stats.failures)}")
    for line in stats.failures[:20]:
        print("  " + line)
    return 0 if alive and not stats.failures else 1


if __name__ == "__main__":
    sys.exit(main())
