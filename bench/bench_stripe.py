"""Stripe authorize three ways, side by side in one run, against one canned local server that
answers every request with the same Stripe PaymentIntent (its latest charge expanded):

- raw urllib3 sending the bytes paywire sends (the floor: HTTP and JSON decoding only);
- paywire: `Gateway.execute("stripe", "authorize", ...)`, the whole pipeline and the plugin;
- the official stripe SDK (`StripeClient.v1.payment_intents.create`), as shipped.

Targets: paywire at most 1.10x raw urllib3, and at most half the SDK's latency.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import stripe
import urllib3

import paywire_stripe
from bench.canned_server import canned_server
from bench.timing import Row, median_latency, ratio_rows
from paywire import Gateway, MethodConfig, Money, Order, Plugins, Retry, Subject
from paywire.testing.recorder import TransferRecorder

if TYPE_CHECKING:
    from stripe.params._payment_intent_create_params import PaymentIntentCreateParams

KEY = "sk_test_bench_0123456789abcdefghij"
IDEMPOTENCY_KEY = "order-A-1001-authorize"
CHARGE = {
    "id": "ch_3NbenchCharge00001", "object": "charge", "amount": 1999, "amount_captured": 0, "amount_refunded": 0,
    "balance_transaction": None, "billing_details": {"address": {"city": None, "country": None, "line1": None,
                                                                 "line2": None, "postal_code": None, "state": None},
                                                     "email": None, "name": None, "phone": None},
    "captured": False, "created": 1700000000, "currency": "eur", "customer": None, "description": None,
    "disputed": False, "failure_code": None, "failure_message": None, "livemode": False,
    "metadata": {"paywire_order": "A-1001", "paywire_idempotency_key": IDEMPOTENCY_KEY},
    "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal", "risk_score": 32,
                "seller_message": "Payment complete.", "type": "authorized"},
    "paid": True, "payment_intent": "pi_3NbenchIntent{seq}", "payment_method": "pm_1NbenchMethod00001",
    "payment_method_details": {"card": {"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2034,
                                        "funding": "credit", "last4": "4242", "network": "visa",
                                        "three_d_secure": None}, "type": "card"},
    "refunded": False, "status": "succeeded",
}
INTENT = {
    "id": "pi_3NbenchIntent{seq}", "object": "payment_intent", "amount": 1999, "amount_capturable": 1999,
    "amount_details": {"tip": {}}, "amount_received": 0, "application": None, "application_fee_amount": None,
    "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None, "capture_method": "manual",
    "client_secret": "pi_3NbenchIntent{seq}_secret_bench", "confirmation_method": "automatic",
    "created": 1700000000, "currency": "eur", "customer": None, "description": None, "invoice": None,
    "last_payment_error": None, "latest_charge": CHARGE, "livemode": False,
    "metadata": {"paywire_order": "A-1001", "paywire_idempotency_key": IDEMPOTENCY_KEY}, "next_action": None,
    "on_behalf_of": None, "payment_method": "pm_1NbenchMethod00001", "payment_method_options": {"card": {
        "installments": None, "mandate_options": None, "network": None, "request_three_d_secure": "automatic"}},
    "payment_method_types": ["card"], "processing": None, "receipt_email": None, "review": None,
    "setup_future_usage": None, "shipping": None, "source": None, "statement_descriptor": None,
    "statement_descriptor_suffix": None, "status": "requires_capture", "transfer_data": None, "transfer_group": None,
}
BODY = json.dumps(INTENT, indent=2).encode()  # Stripe answers pretty-printed JSON
PARAMS: dict[str, Any] = {
    "amount": 1999, "currency": "eur", "payment_method": "pm_card_visa", "payment_method_types": ["card"],
    "capture_method": "manual", "confirm": True, "metadata": {"paywire_order": "A-1001",
                                                               "paywire_idempotency_key": IDEMPOTENCY_KEY},
    "expand": ["latest_charge"], "return_url": "https://shop.example/return",
}


def _gateway(url: str, *observers: object) -> Gateway:
    plugins = Plugins()
    plugins.register(paywire_stripe, name="stripe")
    for observer in observers:
        plugins.register(observer)
    method = MethodConfig(code="stripe", base_url=url, environment="sandbox",
                          credentials={"secret_key": KEY, "webhook_secret": "whsec_bench"})
    return Gateway([method], plugins=plugins, retry=Retry.never())


@contextmanager
def contenders() -> Iterator[dict[str, Callable[[], object]]]:
    """The three ways, each sending one authorize to the canned server (checked once first)."""
    subject = Subject(amount=Money.of("19.99", "EUR"), source="pm_card_visa", order=Order(id="A-1001"),
                      idempotency_key=IDEMPOTENCY_KEY, return_url="https://shop.example/return")
    with canned_server(BODY) as url:
        recorder = TransferRecorder()  # raw urllib3 sends exactly the bytes paywire puts on the wire
        with _gateway(url, recorder) as recording:
            recording.execute("stripe", "authorize", subject)
        sent = recorder.sent[0].transfer
        body, headers = sent.body, sent.all_headers()
        pool = urllib3.PoolManager(retries=False)
        gateway = _gateway(url)
        client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
        params = cast("PaymentIntentCreateParams", PARAMS)

        def raw() -> object:
            response = pool.urlopen("POST", sent.url, body=body, headers=headers, retries=False)
            return json.loads(response.data)

        def paywire() -> object:
            return gateway.execute("stripe", "authorize", subject)

        def sdk() -> object:
            return client.v1.payment_intents.create(params=params, options={"idempotency_key": IDEMPOTENCY_KEY})

        # A distinct PaymentIntent per request (the server numbers them), read alike by both.
        ours, theirs = gateway.execute("stripe", "authorize", subject).reference, sdk().id  # type: ignore[attr-defined]
        assert ours != theirs and all(re.fullmatch(r"pi_3NbenchIntent\d{8}", ref or "") for ref in (ours, theirs))
        with gateway:
            yield {"raw urllib3": raw, "paywire": paywire, "stripe SDK 16.1.0": sdk}


def run() -> list[Row]:
    with contenders() as calls:
        medians = median_latency(calls, rounds=11, per_round=200)
    rows = ratio_rows("Stripe authorize (canned PaymentIntent)", medians, "raw urllib3",
                      {"paywire": "<= 1.10", "stripe SDK 16.1.0": ""})
    paywire_vs_sdk = medians["paywire"] / medians["stripe SDK 16.1.0"]
    rows.append(Row("Stripe authorize (canned PaymentIntent)", "paywire / stripe SDK", paywire_vs_sdk, "ratio",
                    paywire_vs_sdk, "stripe SDK 16.1.0", "<= 0.50"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
