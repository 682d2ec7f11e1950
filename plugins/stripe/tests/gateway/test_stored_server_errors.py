"""Stripe's own server error after the request executed, which Stripe keeps under its idempotency
key ("including 500 errors"): every resend under the key gets the same error, so the operation
stays unknown (never failed, though it took effect), and only reading Stripe settles it: reconcile
for a payment's operations, the vault itself for the attach it sent."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from paywire import Customer, Money, OutcomeUnknown, Payment, PaymentService
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _authorized(service: PaymentService) -> Payment:
    return service.authorize("stripe", eur("30.00"), source="pm_card_visa", order_id="S-1")


def _captured(service: PaymentService) -> Payment:
    return service.capture(_authorized(service).id, eur("30.00"))


# operation: (the payment before it, or None for a first operation; Stripe's path; the call)
_OPERATIONS: dict[str, tuple[Callable[[PaymentService], Payment] | None, str, Callable[..., Payment]]] = {
    "authorize": (None, r"^/v1/payment_intents$", lambda s, _: s.authorize(
        "stripe", eur("30.00"), source="pm_card_visa", order_id="S-2", idempotency_key="S-2-auth")),
    "sale": (None, r"^/v1/payment_intents$", lambda s, _: s.sale(
        "stripe", eur("30.00"), source="pm_card_visa", order_id="S-3", idempotency_key="S-3-sale")),
    "capture": (_authorized, r"/capture$", lambda s, p: s.capture(p.id, eur("20.00"))),
    "void": (_authorized, r"/cancel$", lambda s, p: s.void(p.id)),
    "refund": (_captured, r"^/v1/refunds$", lambda s, p: s.refund(p.id, eur("10.00"))),
}


@pytest.mark.parametrize("operation", list(_OPERATIONS))
def test_a_server_error_stripe_keeps_stays_unknown_until_stripe_is_read(
        service: PaymentService, stripe: Any, app: Any, operation: str) -> None:
    before, path, call = _OPERATIONS[operation]
    payment = before(service) if before else None
    app.fail_after_executing(path)
    for _ in range(2):  # the first send, then a resend under its key: Stripe's stored 500 both times
        with pytest.raises(OutcomeUnknown) as unknown:
            call(service, payment)
        txn = service.get_transaction(unknown.value.transaction_id or "")
        assert (txn.kind, txn.status) == (operation, TransactionStatus.UNKNOWN)
    writes = [r.transfer for r in stripe.recorder.sent
              if r.transfer.method == "POST" and re.search(path, urlsplit(r.transfer.url).path)]
    assert len(writes) == 2 and writes[0].idempotency_key == writes[1].idempotency_key
    assert len([call for call in app.calls if call[0] == "POST" and re.search(path, call[1])]) == 1  # then replayed
    report = service.reconcile(payment_id=txn.payment_id)
    assert report.clean, report
    assert service.get_transaction(txn.id).status == TransactionStatus.SUCCEEDED
    recorded = service.get_payment(txn.payment_id or "")
    held = stripe.fetch(recorded.reference)
    assert (recorded.authorized, recorded.captured, recorded.refunded) == (held.authorized, held.captured, held.refunded)


@pytest.mark.parametrize("fault", ["stored", "hidden"])
def test_a_vault_whose_attach_answer_was_a_server_error_reads_the_payment_method(
        service: PaymentService, app: Any, api: Any, fault: str) -> None:
    """The attach took effect. Resending it under its key gets Stripe's stored 500 again for a
    day, and reconcile() cannot read a vault: the PaymentMethod, read, shows it attached to the
    vault's customer, which is the vault's outcome. (The buyer's PaymentMethod, as Stripe.js makes
    it: a test id such as `pm_card_visa` attaches a new copy of itself each time.)"""
    source = api.ok("POST", "/v1/payment_methods", {"type": "card", "card": {"token": "tok_visa"}})["id"]
    if fault == "stored":
        app.fail_after_executing(r"/attach$")
    else:  # a load balancer's 502 hid the stored answer
        app.inject(Fault(kind="status_after", status=502, path=r"/attach$"))
    stored = service.vault("stripe", source, customer=Customer(email="ada@shop.example"), idempotency_key="V-1")
    assert (stored.status, stored.token) == (TransactionStatus.SUCCEEDED, source)
    method = app.get(stored.token)
    assert (method["customer"], len(app.store.customers)) == (stored.provider_reference, 1)
    payment = service.charge_vaulted("stripe", stored.token, eur("9.99"),
                                     customer=Customer(reference=stored.provider_reference))
    assert payment.captured == eur("9.99")


def test_a_vault_whose_attach_did_not_take_effect_stays_unknown(service: PaymentService, app: Any, api: Any) -> None:
    """A 500 before the attach ran: the PaymentMethod, read, is attached to no one, which does not
    say the attach will not still land, so the vault stays unknown (never failed)."""
    source = api.ok("POST", "/v1/payment_methods", {"type": "card", "card": {"token": "tok_visa"}})["id"]
    app.inject(Fault(kind="status", status=500, path=r"/attach$"))
    with pytest.raises(OutcomeUnknown) as unknown:
        service.vault("stripe", source, customer=Customer(email="ada@shop.example"), idempotency_key="V-2")
    assert service.get_transaction(unknown.value.transaction_id or "").status == TransactionStatus.UNKNOWN
    assert app.get(source)["customer"] is None
