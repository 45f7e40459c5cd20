#!/usr/bin/env python3
"""A recording pass-through in front of Prism (Python stdlib only).

    python3 contract/tap.py --upstream http://127.0.0.1:PRISM_PORT --log FILE
                            [--port 0] [--port-file PATH]

Why it exists: with --errors, Prism in proxy mode answers a request violation
with 422 and a response violation with 500, and the details (which field, what
rule) are only in that answer's application/problem+json body and its
sl-violations header; Prism's own log says just "Request terminated with error:
...#UNPROCESSABLE_ENTITY" with the method and path. The client under test (curl,
or wf2jsm) sees the details but does not print them. The tap forwards every
request byte for byte (only hop-by-hop headers are rewritten) and records one
JSON line per exchange - method, path, status, Prism's problem body and
sl-violations - before it passes the answer back, so contract/report.py can name
the operation and the field.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "host", "content-length"}


class Tap(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None          # (host, port)
    log_file = None
    lock = threading.Lock()
    seq = 0

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else None

    def record(self, entry):
        with Tap.lock:
            Tap.seq += 1
            entry = {"seq": Tap.seq, "t": round(time.time(), 3), **entry}
            Tap.log_file.write(json.dumps(entry) + "\n")
            Tap.log_file.flush()

    def forward(self):
        body = self.read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": self.command, "target": self.path, "path": url.path}
        try:
            conn = http.client.HTTPConnection(*Tap.upstream, timeout=120)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, reason, rheaders = resp.status, resp.reason, resp.getheaders()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            entry.update(status=502, error=f"tap: upstream (Prism) failed: {e}")
            self.record(entry)
            msg = json.dumps({"error": entry["error"]}).encode()
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        ctype = next((v for k, v in rheaders if k.lower() == "content-type"), "")
        entry.update(status=status, content_type=ctype)
        viol = next((v for k, v in rheaders if k.lower() == "sl-violations"), None)
        if viol is not None:
            try:
                entry["sl_violations"] = json.loads(viol)
            except ValueError:
                entry["sl_violations_raw"] = viol
        if "problem+json" in ctype:
            try:
                entry["problem"] = json.loads(data)
            except ValueError:
                entry["problem_raw"] = data.decode("utf-8", "replace")[:2000]
        self.record(entry)
        self.send_response(status, reason)
        for k, v in rheaders:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    up = urllib.parse.urlsplit(args.upstream)
    Tap.upstream = (up.hostname, up.port or 80)
    Tap.log_file = open(args.log, "a", encoding="utf-8")
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), Tap)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"tap listening on http://{args.host}:{port} -> {args.upstream}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
