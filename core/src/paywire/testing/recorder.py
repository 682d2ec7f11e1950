"""A plugin that records every transfer a gateway sends, and can answer in the provider's place.

The kit registers one on each gateway it builds: recorded transfers are what the plugin really put
on the wire (amounts are decoded from them, bodies are checked for card numbers and secrets), and
an answer given in the provider's place lets the kit try a builder or an error mapping without a
network round trip. An `Aim` says which transfers it answers: a command that reads before it
writes (PayPal's complete reads the order, Braintree looks for what a key already made) must
have its write answered, not the read before it, or a lost read passes for a lost write.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator, Sequence

import attrs

from paywire.hookspecs import hookimpl
from paywire.http.response import Response
from paywire.http.transfer import Transfer

__all__ = ["Aim", "RecordedTransfer", "TransferRecorder", "carries", "every", "the_reads", "the_write"]


@attrs.frozen
class RecordedTransfer:
    """A transfer as sent, with the command it belonged to."""

    command: str
    transfer: Transfer


Aim = Callable[[Sequence["RecordedTransfer"], "RecordedTransfer"], bool]
"""Whether to answer a transfer, given those sent before it while `answering` runs."""


def carries(transfer: Transfer, text: str) -> bool:
    """Whether `text` appears in the transfer's URL, a header value or its body (as sent)."""
    return (text in transfer.url or any(text in value for value in transfer.headers.values())
            or text.encode() in (transfer.body or b""))


def every(earlier: Sequence[RecordedTransfer], record: RecordedTransfer) -> bool:
    """Every transfer: for a command that only reads (or a builder tried dry)."""
    return True


def the_write(key: str) -> Aim:
    """The operation's write (its first transfer carrying its idempotency key, which the provider
    or a resend needs there) and every transfer after it: the reads before it reach the provider."""
    return lambda earlier, record: any(carries(sent.transfer, key) for sent in (*earlier, record))


def the_reads(command: str, key: str) -> Aim:
    """The transfers of `command` before its write (the first carrying `key`): the write, should
    the command send it after a read it did not get, reaches the provider and is recorded."""
    return lambda earlier, record: record.command == command and not any(
        carries(sent.transfer, key) for sent in (*earlier, record))


class TransferRecorder:
    """Records transfers (a `send_transfer` wrapper) and, while `answering`, answers for the provider."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[RecordedTransfer] = []
        self._answer: tuple[Response, Aim, list[RecordedTransfer]] | None = None

    def __repr__(self) -> str:
        return f"TransferRecorder({len(self.sent)} sent)"

    @contextlib.contextmanager
    def answering(self, response: Response, aim: Aim = every) -> Iterator[None]:
        """Answer the transfers `aim` picks with `response` while the block runs (retries and
        re-sends too); the others go to the provider."""
        with self._lock:
            self._answer = (response, aim, [])
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
    def _answer_instead(self, command: str, transfer: Transfer) -> Response | None:
        with self._lock:
            if self._answer is None:
                return None
            response, aim, earlier = self._answer
            record = RecordedTransfer(command, transfer)
            answered = aim(earlier, record)
            earlier.append(record)
            return response if answered else None
