#!/usr/bin/env python3
"""A fake Allen server for the `mbsr fetch` tests: binds 127.0.0.1 on a port the OS picks, writes
the port to --port-file, answers RMA queries from <root>/experiments.json, serves files under
<root> (with HTTP Range), and injects faults per path/query.

  http_fixture_server.py --root DIR --port-file F [--log F] [--fault PATTERN=KIND[:COUNT]]...

A fault applies to requests whose (unquoted) path+query contains PATTERN, COUNT times (default:
always). KIND: 500 | 404 | cut (send half the body, then close the connection) | stall (send the
headers and 10 bytes, then nothing for 60 s) | hang (accept, never answer) | empty (an RMA answer with no rows) | norange (ignore Range, answer 200 with everything).
Files carry an ETag (start of their SHA-256) and If-Range is honoured (a stale validator gets the
whole file with 200). Each request is logged as
"GET <path> range=<Range or -> fault=<kind or -> -> <status> if-range=<If-Range or ->" to --log.
Only ever listens on 127.0.0.1.
"""
import argparse
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
FAULTS = []  # [pattern, kind, remaining (None = always)]
LOCK = threading.Lock()


def log(line):
    if ARGS.log:
        with LOCK, open(ARGS.log, "a") as f:
            f.write(line + "\n")


def take_fault(full):
    with LOCK:
        for f in FAULTS:
            if f[0] in full and (f[2] is None or f[2] > 0):
                if f[2] is not None:
                    f[2] -= 1
                return f[1]
    return None


def experiments():
    with open(os.path.join(ARGS.root, "experiments.json")) as f:
        return json.load(f)


def rma_answer(q):
    exps = experiments()
    if "WellKnownFile" in q:
        m = re.search(r"attachable_id\$eq(\d+)", q)
        rows = []
        for e in exps:
            if m and e["id"] == int(m.group(1)) and "ImagesResampledTo25MicronARA" in q:
                rows.append({"attachable_id": e["id"], "attachable_type": "SectionDataSet",
                             "download_link": "/api/v2/well_known_file_download/%d" % e["wkf"], "id": e["wkf"],
                             "path": "/external/connectivity/prod/%d/resampled.zip" % e["id"],
                             "well_known_file_type_id": 305807065})
        return {"success": True, "id": 0, "start_row": 0, "num_rows": len(rows), "total_rows": len(rows), "msg": rows}
    if "mouse_connectivity_injection_structure" in q:
        wt = "transgenic_lines$eq0" in q
        rows = [{"id": e["id"], "transgenic-line": e["transgenic-line"], "structure-abbrev": "MOp",
                 "injection-volume": 0.25, "injection-coordinates": [1, 2, 3], "name": "x \"quoted\" \u00b5"}
                for e in exps if not (wt and e["transgenic-line"])]
        return {"success": True, "id": 0, "start_row": 0, "num_rows": len(rows), "total_rows": len(rows), "msg": rows}
    if "model::SectionDataSet" in q:
        rows = [{"id": e["id"], "failed": False, "specimen_id": e["id"] + 1, "storage_directory": None} for e in exps]
        return {"success": True, "id": 0, "start_row": 0, "num_rows": len(rows), "total_rows": len(rows), "msg": rows}
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, ctype="application/octet-stream", extra=None, fault=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if fault == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(60)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_GET(self):
        full = urllib.parse.unquote(self.path)
        rng = self.headers.get("Range")
        ifr = self.headers.get("If-Range")
        fault = take_fault(full)
        status = self.handle_get(full, rng, ifr, fault)
        log("GET %s range=%s fault=%s -> %s if-range=%s" % (full, rng or "-", fault or "-", status, ifr or "-"))

    def handle_get(self, full, rng, ifr, fault):
        if fault == "hang":
            time.sleep(60)
            self.close_connection = True
            return "hang"
        if fault in ("500", "404"):
            self.send_body(int(fault), b"injected fault\n", "text/plain")
            return int(fault)
        path, _, query = full.partition("?")
        if path == "/api/v2/data/query.json":
            q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("q", [""])[0]
            ans = rma_answer(q)
            if fault == "empty" and ans is not None:
                ans = {"success": True, "id": 0, "start_row": 0, "num_rows": 0, "total_rows": 0, "msg": []}
            if ans is None:
                self.send_body(400, json.dumps({"success": False, "msg": "unknown query"}).encode(), "application/json")
                return 400
            self.send_body(200, json.dumps(ans).encode(), "application/json", fault=fault)
            return 200
        local = os.path.normpath(os.path.join(ARGS.root, path.lstrip("/")))
        if not local.startswith(os.path.abspath(ARGS.root)) or not os.path.isfile(local):
            self.send_body(404, b"not found\n", "text/plain")
            return 404
        with open(local, "rb") as f:
            data = f.read()
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:16]
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if ifr is not None and ifr != etag:
            m = None  # RFC 9110 If-Range: the representation changed, send all of it
        if m and fault != "norange":
            start = int(m.group(1))
            if start >= len(data):
                self.send_body(416, b"", extra={"Content-Range": "bytes */%d" % len(data)})
                return 416
            self.send_body(206, data[start:], extra={"Content-Range": "bytes %d-%d/%d" % (start, len(data) - 1, len(data)),
                                                     "ETag": etag}, fault=fault)
            return 206
        self.send_body(200, data, extra={"ETag": etag}, fault=fault)
        return 200


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--fault", action="append", default=[])
    ARGS = ap.parse_args()
    ARGS.root = os.path.abspath(ARGS.root)
    for spec in ARGS.fault:
        pat, _, kind = spec.rpartition("=")
        kind, _, count = kind.partition(":")
        FAULTS.append([pat, kind, int(count) if count else None])
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
