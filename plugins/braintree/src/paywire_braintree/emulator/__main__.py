"""`python -m paywire_braintree.emulator --host 127.0.0.1 --port N [--public-key K --private-key K
--merchant-id M --settlement instant|batch|pending --certfile F --keyfile F --webhook-url URL]`.

The key pair and merchant id it accepts are printed at start (random keys unless given).
"""

from __future__ import annotations

import secrets
import sys

from paywire.testing.emulator import emulator_parser, serve
from paywire_braintree.emulator.app import BraintreeEmulator

PROG = "python -m paywire_braintree.emulator"


def run(argv: list[str] | None = None) -> int:
    parser = emulator_parser(PROG, "A local emulator of Braintree's GraphQL API: every document is validated "
                                   "against Braintree's published schema, then executed.")
    parser.add_argument("--public-key", help="the public key it accepts (random by default)")
    parser.add_argument("--private-key", help="the private key it accepts and signs webhooks with (random by default)")
    parser.add_argument("--merchant-id", default="paywire_merchant", help="the merchant id (default paywire_merchant)")
    parser.add_argument("--settlement", default="instant", choices=("instant", "batch", "pending"),
                        help="when submitted captures settle: at once (default), on request, or pending until decided")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)  # --help is answered before anything else
    app = BraintreeEmulator(args.public_key or "public_" + secrets.token_hex(8),
                            args.private_key or "private_" + secrets.token_hex(16), args.merchant_id,
                            settlement=args.settlement)
    announce = [f"merchant id {app.merchant_id}, public key {app.public_key}, private key {app.private_key}"]
    return serve(app, args, prog=PROG, announce=announce)


if __name__ == "__main__":
    sys.exit(run())
