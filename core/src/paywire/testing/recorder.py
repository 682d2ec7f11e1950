"""A plugin that records every transfer a gateway sends, and can answer in the provider's place.

The kit registers one on each gateway it builds: recorded transfers are what the plugin really put
on the wire (amounts are decoded from them, bodies are checked for card numbers and secrets), and
an answer given in the provider's place lets the kit try a builder or an error mapping without a
network round trip.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator

import attrs

from paywire.hookspecs import hookimpl
from paywire.http.response import Response
from paywire.http.transfer import Transfer

__all__ = ["RecordedTransfer", "TransferRecorder"]


@attrs.frozen
class RecordedTransfer:
    """A transfer as sent, with the command it belonged to."""

    command: str
    transfer: Transfer


class TransferRecorder:
    """Records transfers (a `send_transfer` wrapper) and, while `answering`, answers for the provider."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[RecordedTransfer] = []
        self._answer: Response | None = None

    def __repr__(self) -> str:
        return f"TransferRecorder({len(self.sent)} sent)"

    @contextlib.contextmanager
    def answering(self, response: Response) -> Iterator[None]:
        """Answer every transfer with `response` while the block runs (retries and re-sends too)."""
        with self._lock:
            self._answer = response
        try:
            yield
        finally:
            with self._lock:
                self._answer = None

    def since(self, mark: int) -> list[RecordedTransfer]:
        """Transfers recorded after `mark` (a previous `len(recorder.sent)`)."""
        with self._lock:
            return self.sent[mark:]

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Transfer) -> Generator[None, Response, Response]:
        with self._lock:
            self.sent.append(RecordedTransfer(command, transfer))
        response: Response = yield
        return response

    @hookimpl(specname="send_transfer", tryfirst=True)
    def _answer_instead(self) -> Response | None:
        with self._lock:
            return self._answer
