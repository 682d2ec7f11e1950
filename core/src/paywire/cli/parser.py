"""The command line's arguments: one sub-command per operation."""

from __future__ import annotations

import argparse
import os
from typing import NoReturn

from paywire.cli import demo, operations, serve
from paywire.cli.values import PAYMENT_STATES, TRANSACTION_STATUSES, country, currency, idempotency_key, positive_int


class UsageError(Exception):
    """Bad command-line arguments (exit 2); `main` prints it as one line, or as JSON."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors reach `main` (to be printed as text or JSON) instead of
    exiting from deep inside argparse."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = Parser(prog="paywire", description="paywire: payments through pluggable gateways.")
    parser.add_argument("--config", default=os.environ.get("PAYWIRE_CONFIG"),
                        help="configuration file (default: $PAYWIRE_CONFIG, then ./paywire.toml)")
    parser.add_argument("--ledger", default=None,
                        help="ledger URL: sqlite:///path or postgresql://... (default: $PAYWIRE_LEDGER, the "
                             "config's [paywire] ledger, then sqlite:///paywire.db)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="installed providers, their commands and capabilities, and failed plugins")
    p.set_defaults(run=operations.plugins)

    p = sub.add_parser("methods", help="configured payment methods and which are available for a checkout")
    p.add_argument("--country", type=country, help="ISO country code of the buyer, e.g. DE")
    p.add_argument("--currency", type=currency, help="ISO currency code, e.g. EUR")
    p.add_argument("--amount", help="order total in major units, e.g. 19.99 (needs --currency)")
    p.set_defaults(run=operations.methods)

    for name, text in (("pay", "authorize, or authorize and capture, as the method's payment_action says"),
                       ("authorize", "reserve an amount to capture later"), ("sale", "authorize and capture at once")):
        p = sub.add_parser(name, help=text)
        p.add_argument("method", help="payment method code, e.g. stripe")
        p.add_argument("amount", help="amount in major units, e.g. 19.99")
        p.add_argument("currency", type=currency, help="ISO currency code, e.g. EUR")
        p.add_argument("--source", required=True, help="payment method token (never a card number)")
        p.add_argument("--order-id")
        p.add_argument("--return-url", help="where the buyer returns after a redirect (3-D Secure, approval)")
        p.add_argument("--idempotency-key", type=idempotency_key)
        p.set_defaults(run=operations.initial, operation=name)

    p = sub.add_parser("complete", help="finish a payment after the buyer acted (3-D Secure, approval)")
    p.add_argument("payment_id")
    p.add_argument("--idempotency-key", type=idempotency_key)
    p.set_defaults(run=operations.complete)

    p = sub.add_parser("capture", help="capture all or part of an authorization")
    p.add_argument("payment_id")
    p.add_argument("amount", nargs="?", help="amount in major units (default: what remains)")
    final = p.add_mutually_exclusive_group()  # both given: a mistake, not "the last one wins"
    final.add_argument("--final", dest="final", action="store_true", default=None, help="release the rest")
    final.add_argument("--not-final", dest="final", action="store_false", help="more captures will follow")
    p.add_argument("--idempotency-key", type=idempotency_key)
    p.set_defaults(run=operations.capture)

    p = sub.add_parser("void", help="release an uncaptured authorization, or cancel a payment waiting for its buyer "
                                    "where the provider can (Stripe; a PayPal order cannot be: it lapses)")
    p.add_argument("payment_id")
    p.add_argument("--reason")
    p.add_argument("--idempotency-key", type=idempotency_key)
    p.set_defaults(run=operations.void)

    p = sub.add_parser("refund", help="refund all or part of what was captured")
    p.add_argument("payment_id")
    p.add_argument("amount", nargs="?", help="amount in major units (default: what remains refundable)")
    p.add_argument("--reason")
    p.add_argument("--idempotency-key", type=idempotency_key)
    p.set_defaults(run=operations.refund)

    p = sub.add_parser("show", help="one payment and its transactions")
    p.add_argument("payment_id")
    p.set_defaults(run=operations.show)

    p = sub.add_parser("payments", help="list payments, newest first")
    p.add_argument("--method")
    p.add_argument("--state", choices=PAYMENT_STATES)
    p.add_argument("--limit", type=positive_int, default=50)
    p.set_defaults(run=operations.payments)

    p = sub.add_parser("transactions", help="list transactions (of one payment, or unknown ones with --status)")
    p.add_argument("payment_id", nargs="?")
    p.add_argument("--status", action="append", default=[], choices=TRANSACTION_STATUSES,
                   help="pending, succeeded, failed, action_required, unknown, accepted")
    p.set_defaults(run=operations.transactions)

    p = sub.add_parser("reconcile", help="settle open outcomes (unknown, accepted), payments owing a read and payments "
                                         "waiting for their buyer longer than [paywire] buyer_wait by "
                                         "asking the provider; apply waiting webhook events; resend under its "
                                         "key what the provider holds made but unfinished, as the Janitor does "
                                         "(exit 5 while anything is left open, differing or not reconciled)")
    p.add_argument("--payment-id")
    p.set_defaults(run=operations.reconcile)

    serve.add_parser(sub)

    p = sub.add_parser("verify-webhook", help="verify a webhook payload file with its headers, and show the event")
    p.add_argument("method")
    p.add_argument("body", help="file with the raw body, exactly as received")
    p.add_argument("--header", "-H", action="append", default=[], metavar="NAME: VALUE")
    p.add_argument("--headers", help="file with the headers, one 'Name: value' per line (or a JSON object)")
    p.set_defaults(run=operations.verify_webhook)

    p = sub.add_parser("demo", help="run the shop's payment flows against local provider emulators")
    p.add_argument("--ledger-file", help="keep the demo's SQLite ledger here (default: a temporary file)")
    p.set_defaults(run=demo.run)
    for command in sub.choices.values():  # `--json` after the sub-command too
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    return parser
