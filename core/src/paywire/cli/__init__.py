"""The `paywire` command line.

`paywire pay` starts a payment as the method's configured `payment_action` says (authorize to
capture later, or authorize and capture at once); `authorize` and `sale` name the operation
themselves. All three take the same arguments and exit codes.

Exit codes: 0 done; 1 the payment failed (declined, a bad webhook); 2 the request was wrong (bad
amount, impossible operation, bad arguments); 3 paywire is set up wrongly (unknown method, missing
credential, unusable ledger); 4 a retryable failure (the ledger's database busy, out of reach or
refusing writes among them: nothing was sent); 5 the outcome is unknown (run the same command
again with the `--idempotency-key` the error names, or `paywire reconcile`, which itself exits 5
while it leaves anything open, differing from the provider or not reconciled); 6 the provider
refused the credentials (a bad API key); 7 the idempotency key was used for another operation, or
its first request is still running; 8 the buyer has not finished
(3-D Secure, approval): send them to the redirect URL, then `paywire complete` (an operation shows
the payment waiting, `complete` says it in its error); 70 an unexpected error inside paywire (a
bug: please report it); 74 the command finished but its output could not be written (a full disk;
any other exit code is kept when that happens: what the command did); 130 interrupted (Ctrl-C or SIGTERM; while the provider was asked, it is 5). Every error prints one line (a JSON object on stdout under `--json`),
never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_RETRYABLE, EXIT_UNKNOWN = 0, 1, 2, 3, 4, 5
EXIT_CREDENTIALS, EXIT_CONFLICT, EXIT_BUYER_ACTION, EXIT_INTERNAL, EXIT_OUTPUT_LOST = 6, 7, 8, 70, 74


def exit_code(error: BaseException) -> int:
    from paywire.errors import (
        AuthenticationError,
        BuyerActionRequired,
        ConfigurationError,
        IdempotencyConflict,
        InvalidRequest,
        OutcomeUnknown,
        PaywireError,
        PluginError,
    )

    if isinstance(error, OutcomeUnknown):
        return EXIT_UNKNOWN
    if isinstance(error, (ConfigurationError, PluginError)):
        return EXIT_CONFIG
    if isinstance(error, AuthenticationError):
        return EXIT_CREDENTIALS
    if isinstance(error, IdempotencyConflict):
        return EXIT_CONFLICT
    if isinstance(error, BuyerActionRequired):
        return EXIT_BUYER_ACTION
    if isinstance(error, InvalidRequest):
        return EXIT_USAGE
    if isinstance(error, PaywireError) and error.retryable:
        return EXIT_RETRYABLE
    if isinstance(error, PaywireError):
        return EXIT_FAILED
    return EXIT_INTERNAL


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _report(error: BaseException, code: int, as_json: bool) -> None:
    """Print `error` as one line on stderr, or as a JSON object on stdout under --json; a message
    of any other error than paywire's own (which masks its own) has secrets and card numbers masked
    (a usage error quotes the arguments: a ledger URL's password, a card number given by mistake)."""
    from paywire.errors import PaywireError
    from paywire.security import redact

    if isinstance(error, PaywireError):
        kind, message = type(error).__name__, error.message
        extra: dict[str, Any] = {"code": error.code, "payment_id": getattr(error, "payment_id", None),
                                 "transaction_id": getattr(error, "transaction_id", None),
                                 "redirect_url": getattr(error, "redirect_url", None),
                                 "idempotency_key": error.details.get("idempotency_key")}
    elif code == EXIT_USAGE:
        kind, message, extra = "UsageError", redact(str(error)), {}
    elif isinstance(error, KeyboardInterrupt):
        kind, message, extra = "Interrupted", "interrupted before it finished", {}
    else:
        kind, message, extra = (type(error).__name__,
                                f"{redact(str(error))} (an unexpected error inside paywire; please report it)", {})
    message = _one_line(message)
    if as_json:
        fields = {"type": kind, "message": message, "exit_code": code, **{k: v for k, v in extra.items() if v}}
        print(json.dumps({"error": fields}, sort_keys=True))
        return
    if extra.get("payment_id"):
        message += f" (payment {extra['payment_id']})"
    print(f"paywire: {kind}: {message}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    from paywire.security import redact

    print(f"paywire: warning: {_one_line(redact(str(message)))}", file=sys.stderr)


class _Output:
    """Standard output that a reader going away (`paywire --json transactions | head -1`), or a
    standard output closed from the start (None), does not interrupt: what is printed goes nowhere,
    and the exit code is still that of what the command did (a failure or an unknown outcome is
    never turned into 0). Nor does an encoding that cannot write a character (an ASCII locale, a
    `PYTHONIOENCODING`; a method's title or an order id in another script): it is written escaped
    (`\\xfc`), as standard error writes it, never turning a payment made into exit 70. A standard
    output that fails otherwise (a full disk, an I/O error) is `lost`: the rest goes nowhere, and
    `main` says so and keeps the exit code of what the command did (74 for a success whose output
    is lost), never a traceback, and never an unknown outcome told as exit 1, failed."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.lost: OSError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        try:
            if self._stream is None:
                return len(text)
            try:
                return self._stream.write(text)
            except UnicodeEncodeError:  # nothing of `text` was written: it is encoded whole first
                encoding = self._stream.encoding or "ascii"
                self._stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
                return len(text)
        except OSError as exc:
            self._gone(exc)
            return len(text)

    def flush(self) -> None:
        try:
            if self._stream is not None:
                self._stream.flush()
        except OSError as exc:
            self._gone(exc)

    def _gone(self, exc: OSError) -> None:
        assert self._stream is not None
        if not isinstance(exc, BrokenPipeError) and self.lost is None:  # a reader gone is no loss
            self.lost = exc
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        self._stream.flush()  # what was still buffered, into the void, not onto the closed pipe at exit


@contextmanager
def _terminated_as_interrupted(wanted: bool) -> Iterator[None]:
    """SIGTERM (`timeout`, a job cancelled, an orchestrator) ends a command as Ctrl-C does: told
    (exit 130, one line, JSON under --json; an unknown outcome, exit 5, while the provider was
    asked), the ledger's open unit rolled back, rather than a silent death that leaves a script
    nothing to parse."""
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from paywire.cli.parser import UsageError, build_parser

    argv = list(sys.argv[1:] if argv is None else argv)
    options = argv[:argv.index("--")] if "--" in argv else argv  # after `--`, every argument is positional
    as_json = any(len(arg) > 2 and "--json".startswith(arg) for arg in options)  # argparse takes `--js` for it too
    warnings.showwarning = _show_warning
    stdout = sys.stdout
    sys.stdout = output = _Output(stdout)
    try:
        try:
            args = build_parser().parse_args(argv)
            with _terminated_as_interrupted(args.command != "serve"):  # `serve` stops on its own terms
                code: int = args.run(args)
        except UsageError as error:
            code = EXIT_USAGE
            _report(error, code, as_json)
        except KeyboardInterrupt as stop:
            code = 130
            _report(stop, code, as_json)
        except SystemExit as done:  # `--help`: argparse prints it and exits; it is flushed below as any output is
            if done.code is not None and not isinstance(done.code, int):
                raise
            code = done.code or EXIT_OK
        except Exception as error:  # noqa: BLE001 - every error is one line and an exit code
            code = exit_code(error)
            _report(error, code, as_json)
        output.flush()
        lost = output.lost
        if lost is not None:
            code = code or EXIT_OUTPUT_LOST
            then = ("though the command finished (exit 74): see what it did with 'paywire payments' or 'paywire show'"
                    if code == EXIT_OUTPUT_LOST else f"the exit code ({code}) is still what the command did")
            print(f"paywire: standard output could not be written ({lost.strerror or type(lost).__name__}): what "
                  f"the command printed is lost, {then}", file=sys.stderr)
        return code
    finally:
        sys.stdout = stdout


def run() -> None:
    """The console script."""
    sys.exit(main())
