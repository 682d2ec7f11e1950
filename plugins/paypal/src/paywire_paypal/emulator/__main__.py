"""`python -m paywire_paypal.emulator --host 127.0.0.1 --port N [--certfile C --keyfile K]`.

The accepted credentials come from `--client-id`/`--client-secret`, else the environment
(`PAYPAL_CLIENT_ID`, `PAYPAL_CLIENT_SECRET`, `PAYPAL_WEBHOOK_ID`), else the emulator's public
test values `emulator-client-id` / `emulator-client-secret`.
"""

from __future__ import annotations

import argparse
import os

from paywire.testing.emulator import main as serve
from paywire_paypal.emulator.app import PayPalEmulator
from paywire_paypal.emulator.sandbox import CLIENT_ID, CLIENT_SECRET


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--client-id", default=os.environ.get("PAYPAL_CLIENT_ID", CLIENT_ID))
    parser.add_argument("--client-secret", default=os.environ.get("PAYPAL_CLIENT_SECRET", CLIENT_SECRET))
    parser.add_argument("--webhook-id", default=os.environ.get("PAYPAL_WEBHOOK_ID"))
    parser.add_argument("--token-ttl", type=float, default=32400.0)
    ours, rest = parser.parse_known_args(argv)
    app = PayPalEmulator(
        client_id=ours.client_id,
        client_secret=ours.client_secret,
        webhook_id=ours.webhook_id,
        token_ttl=ours.token_ttl,
    )
    serve(app, rest, prog="python -m paywire_paypal.emulator")


if __name__ == "__main__":
    run()
