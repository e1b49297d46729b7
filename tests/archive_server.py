"""A small HTTP file server for download tests, run as its own process on 127.0.0.1.

    python archive_server.py ROOT PORT_FILE LOG_FILE BEHAVIOUR_JSON LIFETIME_SECONDS

Serves files of ROOT by name with HTTP Range support. BEHAVIOUR_JSON maps a file name to
{"fail_first": N} (answer 500 to the first N requests), {"cut_after": BYTES} (the first
full-body answer stops after BYTES and drops the connection), {"range_cap": BYTES} (a range
answer holds at most BYTES, as some CDNs do), {"ignore_range": true} (answer every request with
the whole file) and/or {"range_shift": BYTES} (a range answer starts BYTES before what was
asked). Every request is logged as a JSON line (path, range header, status, body bytes sent).
The process exits by itself after LIFETIME_SECONDS, so a crashed test never leaves it behind.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT, PORT_FILE, LOG_FILE, BEHAVIOUR, LIFETIME = (
    Path(sys.argv[1]),
    Path(sys.argv[2]),
    Path(sys.argv[3]),
    json.loads(sys.argv[4]),
    float(sys.argv[5]),
)
COUNTS: dict[str, int] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _log(self, status: int, sent: int) -> None:
        entry = {"path": self.path, "range": self.headers.get("Range"), "status": status, "sent": sent}
        with LOCK, open(LOG_FILE, "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        with LOCK:
            COUNTS[name] = COUNTS.get(name, 0) + 1
            count = COUNTS[name]
        behaviour = BEHAVIOUR.get(name, {})
        path = ROOT / name
        if count <= behaviour.get("fail_first", 0):
            self._log(500, 0)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not path.is_file():
            self._log(404, 0)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start = 0
        requested = self.headers.get("Range")
        end = len(data)
        if (
            requested
            and requested.startswith("bytes=")
            and requested.endswith("-")
            and not behaviour.get("ignore_range")
        ):
            start = max(0, int(requested[len("bytes=") : -1]) - behaviour.get("range_shift", 0))
            if "range_cap" in behaviour:
                end = min(end, start + behaviour["range_cap"])
            if start >= len(data):
                self._log(416, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
            self.send_response(status)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            status = 200
            self.send_response(status)
        body = data[start:end]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = behaviour.get("cut_after")
        if cut is not None and start == 0 and count == behaviour.get("fail_first", 0) + 1:
            self._log(200, cut)  # logged first: the client may be done before this handler is
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # drop it mid-body, as a broken link would
            return
        self._log(status, len(body))
        self.wfile.write(body)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Timer(LIFETIME, server.shutdown).start()
    PORT_FILE.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
