"""`python -m paywire_braintree.emulator --host 127.0.0.1 --port N [--public-key K --private-key K
--merchant-id M --settlement instant|batch|pending --certfile F --keyfile F --webhook-url URL]`.

The key pair and merchant id it accepts are printed at start (random unless given).
"""

from __future__ import annotations

import argparse
import secrets
import sys

from paywire.testing.emulator import main
from paywire_braintree.emulator.app import BraintreeEmulator


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--public-key", default=None, help="the public key it accepts (random by default)")
    parser.add_argument("--private-key", default=None, help="the private key it accepts (random by default)")
    parser.add_argument("--merchant-id", default="paywire_merchant", help="the merchant id")
    parser.add_argument("--settlement", default="instant", choices=("instant", "batch", "pending"),
                        help="when submitted captures settle: at once, on request, or pending until decided")
    known, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
    app = BraintreeEmulator(known.public_key or "public_" + secrets.token_hex(8),
                            known.private_key or "private_" + secrets.token_hex(16), known.merchant_id,
                            settlement=known.settlement)
    print(f"merchant id {app.merchant_id}, public key {app.public_key}, private key {app.private_key}", flush=True)
    main(app, rest, prog="python -m paywire_braintree.emulator")


if __name__ == "__main__":
    run(sys.argv[1:])
