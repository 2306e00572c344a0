"""A stand-in Crafter Studio for one lab host (run by /usr/bin/python3 inside the host; standard library only).

Usage: studio_standin_server.py ADDRESS PORT TOKEN_FILE CALLS_FILE

* ``GET /studio/api/2/monitoring/status?token=T``: 200 ``{"status": "ok"}`` (401 with a wrong token);
* ``POST /studio/api/2/cluster/primary?token=T`` with a JSON body: the call is appended to CALLS_FILE as one
  JSON line ``{"ts", "path", "body"}`` and answered 200 (401 with a wrong token; 503, unrecorded, while a file
  ``fail-publisher`` sits beside CALLS_FILE);
* anything else: 404.

It stands for the parts of Studio the cluster talks to, nothing more: the lab stops it to stand for a Studio
that died, and reads CALLS_FILE to see which primary-publisher calls reached it.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

STATUS_PATH = "/studio/api/2/monitoring/status"
PUBLISHER_PATH = "/studio/api/2/cluster/primary"


def main(argv: list[str]) -> int:
    address, port, token_file, calls_file = argv[0], int(argv[1]), argv[2], argv[3]
    with open(token_file) as fh:
        token = fh.read().strip()
    write_lock = threading.Lock()
    fail_file = os.path.join(os.path.dirname(calls_file), "fail-publisher")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            return query.get("token", [""])[0] == token

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path != STATUS_PATH:
                self._answer(404, {"error": "not found"})
            elif not self._authorised():
                self._answer(401, {"error": "bad token"})
            else:
                self._answer(200, {"status": "ok", "stand_in": True})

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if path != PUBLISHER_PATH:
                self._answer(404, {"error": "not found"})
                return
            if not self._authorised():
                self._answer(401, {"error": "bad token"})
                return
            if os.path.exists(fail_file):  # the lab asks for a cluster API that refuses
                self._answer(503, {"error": "the stand-in's cluster API is told to fail"})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._answer(400, {"error": "body is not JSON"})
                return
            with write_lock, open(calls_file, "a") as fh:
                fh.write(json.dumps({"ts": time.time(), "path": path, "body": body}) + "\n")
            self._answer(200, {"primaryPublisher": body.get("node")})

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, port), Handler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
