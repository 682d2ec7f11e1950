"""`python -m paywire_stripe.emulator --host 127.0.0.1 --port N [--certfile C --keyfile K] [--webhook-url U]`.

Secrets come from the environment, not the command line: `STRIPE_EMULATOR_WEBHOOK_SECRET` (the
`whsec_...` events are signed with; a random one is generated and printed at start when unset, as
`stripe listen` does) and `STRIPE_EMULATOR_API_KEY` (the only key accepted; any `sk_test_` key
when unset). `STRIPE_EMULATOR_API_VERSION` sets the account's default API version.
"""

from __future__ import annotations

import os
import sys

from paywire.testing.emulator import emulator_parser, serve
from paywire_stripe.emulator.app import DEFAULT_API_VERSION, StripeEmulator

PROG = "python -m paywire_stripe.emulator"


def run(argv: list[str] | None = None) -> int:
    parser = emulator_parser(PROG, "A local emulator of Stripe's API (PaymentIntents, refunds, customers, "
                                   "webhooks). Secrets come from STRIPE_EMULATOR_WEBHOOK_SECRET and "
                                   "STRIPE_EMULATOR_API_KEY; STRIPE_EMULATOR_API_VERSION sets the API version.")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)  # --help is answered before anything else
    secret = os.environ.get("STRIPE_EMULATOR_WEBHOOK_SECRET")
    app = StripeEmulator(
        webhook_secret=secret,
        api_key=os.environ.get("STRIPE_EMULATOR_API_KEY"),
        api_version=os.environ.get("STRIPE_EMULATOR_API_VERSION", DEFAULT_API_VERSION),
    )
    announce = [] if secret is not None else [f"Your webhook signing secret is {app.webhook_secret}"]
    return serve(app, args, prog=PROG, announce=announce)


if __name__ == "__main__":
    sys.exit(run())
