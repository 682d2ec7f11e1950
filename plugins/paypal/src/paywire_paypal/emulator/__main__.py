"""`python -m paywire_paypal.emulator --host 127.0.0.1 --port N [--certfile C --keyfile K]`.

The accepted credentials come from `--client-id`/`--client-secret`, else the environment
(`PAYPAL_CLIENT_ID`, `PAYPAL_CLIENT_SECRET`, `PAYPAL_WEBHOOK_ID`), else the emulator's public
test values `emulator-client-id` / `emulator-client-secret`; they and the webhook id (a random
one unless given) are printed at start, so a shop can be configured against it.
"""

from __future__ import annotations

import os
import sys

from paywire.testing.emulator import emulator_parser, serve
from paywire_paypal.emulator.app import PayPalEmulator
from paywire_paypal.emulator.sandbox import CLIENT_ID, CLIENT_SECRET

PROG = "python -m paywire_paypal.emulator"


def run(argv: list[str] | None = None) -> int:
    parser = emulator_parser(PROG, "A local emulator of PayPal's REST API (OAuth, Orders v2, Payments v2, "
                                   "vault, webhooks).")
    parser.add_argument("--client-id", default=os.environ.get("PAYPAL_CLIENT_ID", CLIENT_ID),
                        help=f"the client id accepted (default: $PAYPAL_CLIENT_ID, else {CLIENT_ID!r})")
    parser.add_argument("--client-secret", default=os.environ.get("PAYPAL_CLIENT_SECRET", CLIENT_SECRET),
                        help="the client secret accepted (default: $PAYPAL_CLIENT_SECRET, else the emulator's "
                             "public test secret)")
    parser.add_argument("--webhook-id", default=os.environ.get("PAYPAL_WEBHOOK_ID"),
                        help="the webhook id events are signed for (default: $PAYPAL_WEBHOOK_ID, else a random one)")
    parser.add_argument("--token-ttl", type=float, default=32400.0,
                        help="seconds an access token lives (default 32400, PayPal's nine hours)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    app = PayPalEmulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        webhook_id=args.webhook_id,
        token_ttl=args.token_ttl,
    )
    announce = [f"client id: {app.client_id}", f"client secret: {args.client_secret}", f"webhook id: {app.webhook_id}"]
    return serve(app, args, prog=PROG, announce=announce)


if __name__ == "__main__":
    sys.exit(run())
