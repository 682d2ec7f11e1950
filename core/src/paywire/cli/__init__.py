"""The `paywire` command line.

Exit codes: 0 done; 1 the payment failed (declined, refused credentials, a bad webhook);
2 the request was wrong (bad amount, impossible operation, bad arguments); 3 paywire is set up
wrongly (unknown method, missing credential); 4 a retryable failure; 5 the outcome is unknown
(run `paywire reconcile`). User errors print one line saying what to do, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_RETRYABLE, EXIT_UNKNOWN = 0, 1, 2, 3, 4, 5


def exit_code(error: BaseException) -> int:
    from paywire.errors import ConfigurationError, InvalidRequest, OutcomeUnknown, PaywireError, PluginError

    if isinstance(error, OutcomeUnknown):
        return EXIT_UNKNOWN
    if isinstance(error, (ConfigurationError, PluginError)):
        return EXIT_CONFIG
    if isinstance(error, InvalidRequest):
        return EXIT_USAGE
    if isinstance(error, PaywireError) and error.retryable:
        return EXIT_RETRYABLE
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    from paywire.cli.parser import build_parser
    from paywire.errors import PaywireError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except PaywireError as error:
        what = f"{type(error).__name__}: {error.message}"
        if getattr(error, "payment_id", None):
            what += f" (payment {error.payment_id})"
        print(f"paywire: {what}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The console script."""
    sys.exit(main())
