"""The `paywire` command line.

Exit codes: 0 done; 1 the payment failed (declined, a bad webhook); 2 the request was wrong (bad
amount, impossible operation, bad arguments); 3 paywire is set up wrongly (unknown method, missing
credential, unusable ledger); 4 a retryable failure; 5 the outcome is unknown (run `paywire
reconcile`); 6 the provider refused the credentials (a bad API key); 7 the idempotency key was
used for another operation, or its first request is still running; 8 the buyer has not finished
(3-D Secure, approval): send them to the redirect URL, then `paywire complete`; 70 an unexpected
error inside paywire (a bug: please report it). Every error prints one line (a JSON object on
stdout under `--json`), never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_RETRYABLE, EXIT_UNKNOWN = 0, 1, 2, 3, 4, 5
EXIT_CREDENTIALS, EXIT_CONFLICT, EXIT_BUYER_ACTION, EXIT_INTERNAL = 6, 7, 8, 70


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
    """Print `error` as one line on stderr, or as a JSON object on stdout under --json."""
    from paywire.errors import PaywireError

    if isinstance(error, PaywireError):
        kind, message = type(error).__name__, error.message
        extra: dict[str, Any] = {"code": error.code, "payment_id": getattr(error, "payment_id", None),
                                 "transaction_id": getattr(error, "transaction_id", None),
                                 "redirect_url": getattr(error, "redirect_url", None)}
    elif code == EXIT_USAGE:
        kind, message, extra = "UsageError", str(error), {}
    else:
        kind, message, extra = type(error).__name__, f"{error} (an unexpected error inside paywire; please report it)", {}
    message = _one_line(message)
    if as_json:
        fields = {"type": kind, "message": message, "exit_code": code, **{k: v for k, v in extra.items() if v}}
        print(json.dumps({"error": fields}, sort_keys=True))
        return
    if extra.get("payment_id"):
        message += f" (payment {extra['payment_id']})"
    print(f"paywire: {kind}: {message}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    print(f"paywire: warning: {_one_line(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from paywire.cli.parser import UsageError, build_parser

    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    warnings.showwarning = _show_warning
    try:
        try:
            args = build_parser().parse_args(argv)
            code: int = args.run(args)
        except UsageError as error:
            _report(error, EXIT_USAGE, as_json)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            raise
        except Exception as error:  # noqa: BLE001 - every error is one line and an exit code
            code = exit_code(error)
            _report(error, code, as_json)
            return code
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`paywire --json transactions | head -1`): stop quietly. Whatever
        # the command did is done; nothing more can be said to a closed stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def run() -> None:
    """The console script."""
    sys.exit(main())
