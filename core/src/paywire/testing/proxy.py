"""A loopback proxy in front of an emulator that rewrites each JSON answer: an answer the real
provider may give and the emulator does not (an error beside the data, a status it adds later),
made from the emulator's own answer, so the state behind it stays the emulator's."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3

__all__ = ["Rewrite", "RewritingProxy"]

# The request's body and the emulator's decoded answer -> the answer to give instead.
Rewrite = Callable[[bytes, Any], Any]
_FORWARDED = ("Authorization", "Braintree-Version", "Content-Type", "Idempotency-Key", "PayPal-Request-Id")


class RewritingProxy:
    """Forwards POSTs to `upstream` and answers `rewrite(body, answer)` (status 200) until `close()`."""

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        class Proxy(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in _FORWARDED if name in self.headers}
                answer = urllib3.request("POST", upstream + self.path, body=body, headers=headers, timeout=10)
                reply = json.dumps(rewrite(body, json.loads(answer.data))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
