#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an S3 server (moto), for etl's tests.

It forwards every request to the upstream server unchanged (the Host header too, so a SigV4 signature stays what the
client computed) except those a rule of the control file picks, which it answers with 503 SlowDown or 500
InternalError, or whose connection it resets (RST) after reading the request, or after forwarding it (the server
acted, the client never hears: a lost response).

    s3_fault_proxy.py --upstream http://127.0.0.1:PORT --control FILE --port-file FILE [--log FILE] [--lifetime S]

The control file is JSON, re-read whenever it changes (and then the rules' counters start over):

    {"rules": [{"kind": "PutObject", "key_contains": "/v1/", "after": 2, "count": 3, "action": "503"}]}

kind: PutObject | UploadPart | CompleteMultipartUpload | CreateMultipartUpload | CopyObject | any;
key_contains: optional substring of the path; after: how many matching requests (whatever other rules did to them)
come before the rule fires (default 0);
count: how many it fails (absent or null: all from then on); action: 503 | 500 | 404_upload (NoSuchUpload, what S3 answers
a retried completion whose first attempt went through) | reset | reset_after. The first rule that matches
and fires decides. Every request is logged as one JSON line to --log: {"kind", "path", "fault"} (fault null when
forwarded), so a test can assert that the faults really happened.

Robustness, since a test waits on it: a thread per connection, every socket with a timeout, `Connection: close` on
every answer, and the process exits by itself when its parent (the test) is gone or after --lifetime seconds.
"""

import argparse
import http.client
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

SOCKET_TIMEOUT = 60
CHUNK = 256 * 1024


class Rules:
    def __init__(self, control, log):
        self.control = control
        self.log_path = log
        self.lock = threading.Lock()
        self.stamp = None
        self.rules = []

    def _reload(self):
        try:
            st = os.stat(self.control)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp:
            return
        self.stamp = stamp
        rules = []
        if stamp is not None:
            try:
                with open(self.control) as f:
                    rules = json.load(f).get("rules", [])
            except (OSError, ValueError) as e:
                print(f"fault proxy: cannot read {self.control}: {e}", file=sys.stderr, flush=True)
                rules = []
        self.rules = [dict(rule, seen=0, fired=0) for rule in rules]

    def decide(self, kind, path):
        """The fault for this request (None: forward it), counted under the lock."""
        with self.lock:
            self._reload()
            fault = None
            for rule in self.rules:
                if rule.get("kind", "any") not in ("any", kind):
                    continue
                if rule.get("key_contains") and rule["key_contains"] not in path:
                    continue
                # Every matching rule counts the request, whichever fires: `after` is in requests of its kind.
                rule["seen"] += 1
                if fault is not None or rule["seen"] <= rule.get("after", 0):
                    continue
                count = rule.get("count")
                if count is not None and rule["fired"] >= count:
                    continue
                rule["fired"] += 1
                fault = str(rule.get("action", "503"))
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps({"kind": kind, "path": path, "fault": fault}) + "\n")
            return fault


def request_kind(method, path, headers):
    parsed = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    segments = [s for s in parsed.path.split("/") if s]
    has_key = len(segments) >= 2  # path-style: /bucket/key
    if method == "PUT":
        if not has_key:
            return "CreateBucket"
        if "partNumber" in query and "uploadId" in query:
            return "UploadPart"
        if headers.get("x-amz-copy-source"):
            return "CopyObject"
        return "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "Post"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "Delete"
    if method in ("GET", "HEAD"):
        return "List" if not has_key else ("Head" if method == "HEAD" else "GetObject")
    return method


ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "404_upload": (404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, "
                   "or the upload may have been aborted or completed."),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    server_version = "s3-fault-proxy"

    def log_message(self, format, *args):  # quiet: the JSON log says what happened
        pass

    def _body_chunks(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            data = self.rfile.read(min(CHUNK, length))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            length -= len(data)
            yield data

    def _handle(self):
        kind = request_kind(self.command, self.path, self.headers)
        fault = self.server.rules.decide(kind, self.path)
        if fault == "reset_after":
            self._forward(lose_response=True)
            return
        if fault is not None:
            for _ in self._body_chunks():
                pass
            if fault == "reset":
                self._reset()
                return
            status, code, message = ERRORS.get(fault, ERRORS["503"])
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                    f"<Resource>{self.path}</Resource></Error>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True
            return
        self._forward()

    def _reset(self):
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _forward(self, lose_response=False):
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=SOCKET_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() in ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect"):
                    continue
                upstream.putheader(name, value)
            upstream.putheader("Connection", "close")
            upstream.endheaders()
            for data in self._body_chunks():
                upstream.send(data)
            response = upstream.getresponse()
            if lose_response:
                response.read()
                self._reset()
                return
            headers = [(n, v) for n, v in response.getheaders()
                       if n.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date")]
            length = response.getheader("Content-Length")
            if self.command == "HEAD" or response.status in (204, 304):
                body_iter, body_length = iter(()), length
            elif length is not None:
                body_iter, body_length = iter(lambda: response.read(CHUNK), b""), length
            else:
                data = response.read()
                body_iter, body_length = iter((data,)), str(len(data))
            self.send_response(response.status, response.reason)
            for name, value in headers:
                self.send_header(name, value)
            if body_length is not None:
                self.send_header("Content-Length", body_length)
            self.send_header("Connection", "close")
            self.end_headers()
            for data in body_iter:
                self.wfile.write(data)
            self.close_connection = True
        finally:
            upstream.close()

    def do_GET(self): self._handle()
    def do_HEAD(self): self._handle()
    def do_PUT(self): self._handle()
    def do_POST(self): self._handle()
    def do_DELETE(self): self._handle()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def exit_when_orphaned(parent, lifetime):
    deadline = time.monotonic() + lifetime
    while True:
        if os.getppid() != parent or time.monotonic() > deadline:
            os._exit(0)
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log")
    parser.add_argument("--lifetime", type=float, default=900)
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    server = Server(("127.0.0.1", 0), Handler)
    server.upstream_host, server.upstream_port = upstream.hostname, upstream.port or 80
    server.rules = Rules(args.control, args.log)
    threading.Thread(target=exit_when_orphaned, args=(os.getppid(), args.lifetime), daemon=True).start()
    # Written whole, then renamed: the test never reads half a port number.
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
