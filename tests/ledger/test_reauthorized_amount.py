"""A reauthorization made beside paywire (PayPal's dashboard, or the gateway's own `reauthorize`)
replaces what the payment's authorization holds, on both ledgers, however the ledger learns of it:
its PAYMENT.AUTHORIZATION.CREATED (each delivery received twice), reconciliation, or both in
either order. For less than the authorization it lowers what is offered to capture; for more
(up to PayPal's overage) it raises it; after captures of an earlier reauthorization it never
drops below what they took. Either way the ledger offers what PayPal takes, refuses before
sending what PayPal would refuse, and reconciles clean."""

from __future__ import annotations

import time

import pytest

from paywire import (
    REAUTHORIZATION_UNDECIDED,
    REAUTHORIZED,
    Gateway,
    Money,
    PaymentService,
    PaywireError,
    StateError,
    Subject,
)
from paywire.ledger import Ledger, Payment
from paywire.testing.sandbox import Sandbox

# Tested alone, the core package has no plugin installed.
paywire_paypal = pytest.importorskip(
    "paywire_paypal", reason="needs the PayPal plugin (installed when all packages are tested together)")

DAY = 86400.0
CREATED = "PAYMENT.AUTHORIZATION.CREATED"
# How the ledger learns of the reauthorization, step by step.
LEARNT = {
    "event": ("event",),
    "reconcile": ("reconcile",),
    "event-then-reconcile": ("event", "reconcile"),
    "reconcile-then-event": ("reconcile", "event"),
    "event-delivered-again": ("event", "event"),
}


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _days_pass(sandbox: Sandbox, days: float) -> None:
    """PayPal's clock moves on (past an authorization's honor period), not the machine's."""
    clock = sandbox.app.clock
    sandbox.app.clock = lambda: clock() + days * DAY


def _reauthorize(sandbox: Sandbox, gateway: Gateway, authorization: str, amount: str) -> str:
    """PayPal reauthorizes `authorization` for `amount`, beside the service; returns the new one."""
    _days_pass(sandbox, 4)
    return gateway.execute("paypal", "reauthorize", Subject(reference=authorization, amount=eur(amount))).reference


def _learn(sandbox: Sandbox, service: PaymentService, payment_id: str, renewed: str, steps: tuple[str, ...]) -> None:
    for step in steps:
        if step == "reconcile":
            service.reconcile(payment_id=payment_id)
            continue
        app = sandbox.app
        event = next(e for e in reversed(app.events) if e["event_type"] == CREATED and e["resource"]["id"] == renewed)
        # Signed by the machine's clock, which the verifier checks (PayPal's moved days on).
        body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
        for _ in range(2):
            service.receive_webhook("paypal", headers, body)


def _offers_what_paypal_takes(sandbox: Sandbox, service: PaymentService, payment: Payment, renewed: str,
                              left: Money) -> None:
    """Captures go to `renewed`; `left` is offered and no more: one cent more is refused before
    sending, all of it PayPal takes, and the ledger reconciles clean before and after."""
    assert payment.references["authorization"] == renewed
    assert payment.capturable == left
    assert not service.reconcile(payment_id=payment.id).mismatches
    sent = sandbox.app.calls[:]
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, left + eur("0.01"), final=False)
    assert refused.value.code == "capture_exceeds_authorized", refused.value
    assert sandbox.app.calls == sent  # nothing was sent
    done = service.capture(payment.id, left, final=False)
    with sandbox.app.lock:
        assert sandbox.app.captures[done.references["capture"]].authorization_id == renewed
    assert not service.reconcile(payment_id=payment.id).mismatches
    assert service.get_payment(payment.id).capturable == Money.zero("EUR")


@pytest.mark.parametrize("learnt", list(LEARNT))
@pytest.mark.parametrize("amount", ["40.00", "115.00"])
def test_a_reauthorization_beside_paywire_replaces_what_the_payment_holds(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str, amount: str,
) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    renewed = _reauthorize(sandbox, gateway, payment.references["authorization"], amount)
    _learn(sandbox, service, payment.id, renewed, LEARNT[learnt])
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.references[REAUTHORIZED]) == (eur(amount), payment.references["void_target"])
    _offers_what_paypal_takes(sandbox, service, payment, renewed, eur(amount))


@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_reauthorization_after_a_reconciliation_still_replaces_what_it_read(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str,
) -> None:
    """Reconciled before the reauthorization, the ledger holds PayPal's 100.00 as read: the
    reauthorization's 40.00 replaces it all the same."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    assert service.reconcile(payment_id=payment.id).clean
    renewed = _reauthorize(sandbox, gateway, payment.references["authorization"], "40.00")
    _learn(sandbox, service, payment.id, renewed, (learnt,))
    _offers_what_paypal_takes(sandbox, service, service.get_payment(payment.id), renewed, eur("40.00"))


def _authorized(sandbox: Sandbox, service: PaymentService) -> tuple[Payment, str]:
    """100.00 authorized through paywire: the payment and its PayPal authorization's id."""
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    return payment, payment.references["authorization"]


def _reauthorized_then_captured(sandbox: Sandbox, gateway: Gateway, service: PaymentService) -> tuple[Payment, str]:
    """100.00 authorized, reauthorized beside paywire as it was (read by reconcile), 60.00 of
    that captured: the payment and its original authorization's id."""
    payment, original = _authorized(sandbox, service)
    first = _reauthorize(sandbox, gateway, original, "100.00")
    _learn(sandbox, service, payment.id, first, ("reconcile",))
    service.capture(payment.id, eur("60.00"), final=False)
    return payment, original


@pytest.mark.parametrize("learnt", list(LEARNT))
def test_a_second_reauthorization_never_drops_below_what_the_first_captured(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str,
) -> None:
    """100.00 reauthorized as it was, 60.00 of that captured, then the original reauthorized again
    for 30.00: what was captured stands, and what is left to capture is the 30.00 the new one holds."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _reauthorized_then_captured(sandbox, gateway, service)
    second = _reauthorize(sandbox, gateway, original, "30.00")
    _learn(sandbox, service, payment.id, second, LEARNT[learnt])
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.captured) == (eur("90.00"), eur("60.00"))
    _offers_what_paypal_takes(sandbox, service, payment, second, eur("30.00"))


@pytest.mark.parametrize("told", ["event", "reconcile"])
@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_capture_of_the_reauthorization_taken_back_leaves_it_authorized(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str, told: str,
) -> None:
    """The reauthorization's 40.00 captured in full beside paywire, read by reconciliation, then
    taken back by PayPal (a chargeback), the ledger `told` by PAYMENT.CAPTURE.DENIED or by
    reconciliation: the payment stays authorized for what the reauthorization held, and its
    capture stays closed (PayPal does not reopen the authorization)."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    renewed = _reauthorize(sandbox, gateway, payment.references["authorization"], "40.00")
    _learn(sandbox, service, payment.id, renewed, (learnt,))
    capture = gateway.execute("paypal", "capture", Subject(reference=renewed, amount=eur("40.00"), final=False))
    assert service.reconcile(payment_id=payment.id).clean
    sandbox.app.deny_capture(capture.reference)
    if told == "reconcile":
        service.reconcile(payment_id=payment.id)
    else:
        app = sandbox.app
        event = next(e for e in reversed(app.events) if e["event_type"] == "PAYMENT.CAPTURE.DENIED")
        body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
        service.receive_webhook("paypal", headers, body)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == ("authorized", eur("40.00"), Money.zero("EUR"))
    assert payment.capturable == Money.zero("EUR") or payment.capture_closed
    with pytest.raises(StateError):
        service.capture(payment.id, eur("0.01"), final=False)


def test_a_capture_of_the_reauthorization_heard_of_first_is_not_counted_before_it(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger,
) -> None:
    """The reauthorization's PAYMENT.AUTHORIZATION.CREATED delivered after the event of a capture
    made on it beside paywire (30.00 of its 40.00): that capture took part of what it holds, not of
    what was authorized before it, so 10.00 is left to capture, as PayPal holds it."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    renewed = _reauthorize(sandbox, gateway, payment.references["authorization"], "40.00")
    gateway.execute("paypal", "capture", Subject(reference=renewed, amount=eur("30.00"), final=False))
    app = sandbox.app
    (captured,) = [e for e in app.events if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]
    body, headers = app.signer.sign(captured, app.webhook_id, app.cert_url(), time.time())
    service.receive_webhook("paypal", headers, body)
    assert service.get_payment(payment.id).captured == eur("30.00")
    _learn(sandbox, service, payment.id, renewed, ("event",))
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.captured) == (eur("40.00"), eur("30.00"))
    _offers_what_paypal_takes(sandbox, service, payment, renewed, eur("10.00"))


def _reviewed(sandbox: Sandbox, gateway: Gateway, authorization: str, amount: str) -> str:
    """PayPal holds a reauthorization of `authorization` for `amount`, asked for beside the
    service, PENDING its review; returns it."""
    sandbox.app.review_reauthorizations = True
    try:
        renewed = _reauthorize(sandbox, gateway, authorization, amount)
    finally:
        sandbox.app.review_reauthorizations = False
    assert sandbox.app.authorizations[renewed].status == "PENDING"
    return renewed


def _offers_nothing(sandbox: Sandbox, service: PaymentService, payment_id: str, held: Money,
                    state: str = "authorized") -> None:
    """While PayPal takes no capture (it reviews the reauthorization, or denied it), the payment
    holds what it held (`held`), offers nothing, and refuses a capture of one cent before sending;
    PayPal refuses one of the authorization the reauthorization renews, and of the reauthorization."""
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.authorized, payment.capturable) == (state, held, Money.zero("EUR"))
    sent = sandbox.app.calls[:]
    with pytest.raises(StateError):
        service.capture(payment_id, eur("0.01"), final=False)
    assert sandbox.app.calls == sent  # nothing was sent
    assert service.reconcile(payment_id=payment_id).clean
    assert service.get_payment(payment_id).capturable == Money.zero("EUR")


@pytest.mark.parametrize("learnt", list(LEARNT))
@pytest.mark.parametrize("amount", ["40.00", "115.00"])
def test_a_reauthorization_paypal_reviews_offers_nothing_until_it_is_created(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str, amount: str,
) -> None:
    """Reconciled while PayPal reviews the reauthorization, the payment still holds its 100.00 and
    offers none of it (PayPal takes no capture of either authorization meanwhile); once PayPal
    creates it, learnt by its event (delivered twice) or reconciliation, it offers what that holds."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _authorized(sandbox, service)
    renewed = _reviewed(sandbox, gateway, original, amount)
    for reference in (original, renewed):
        with pytest.raises(PaywireError):
            gateway.execute("paypal", "capture", Subject(reference=reference, amount=eur("0.01"), final=False))
    service.reconcile(payment_id=payment.id)
    _offers_nothing(sandbox, service, payment.id, eur("100.00"))
    sandbox.app.decide_authorization(renewed, "CREATED")
    _learn(sandbox, service, payment.id, renewed, LEARNT[learnt])
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.references[REAUTHORIZED]) == (eur(amount), original)
    assert REAUTHORIZATION_UNDECIDED not in payment.references
    _offers_what_paypal_takes(sandbox, service, payment, renewed, eur(amount))


@pytest.mark.parametrize("learnt", list(LEARNT))
def test_a_second_reauthorization_paypal_reviews_offers_nothing_then_what_it_holds(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str,
) -> None:
    """100.00 reauthorized as it was, 60.00 of that captured, then the original reauthorized again
    for 30.00, which PayPal reviews: nothing is offered meanwhile, and once created 30.00."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _reauthorized_then_captured(sandbox, gateway, service)
    second = _reviewed(sandbox, gateway, original, "30.00")
    service.reconcile(payment_id=payment.id)
    _offers_nothing(sandbox, service, payment.id, eur("100.00"), "partially_captured")
    sandbox.app.decide_authorization(second, "CREATED")
    _learn(sandbox, service, payment.id, second, LEARNT[learnt])
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.captured) == (eur("90.00"), eur("60.00"))
    _offers_what_paypal_takes(sandbox, service, payment, second, eur("30.00"))


def test_a_reauthorization_paypal_denied_offers_nothing_until_another_is_created(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger,
) -> None:
    """PayPal denies the reauthorization it reviewed (it sends no event for that): reconciled, the
    payment still holds its 100.00 and offers none of it, as PayPal takes no capture of the
    original it was asked to renew (PayPal does not document this: the reading that offers
    least); a reauthorization PayPal creates then offers what it holds."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _authorized(sandbox, service)
    denied = _reviewed(sandbox, gateway, original, "40.00")
    service.reconcile(payment_id=payment.id)
    sandbox.app.decide_authorization(denied, "DENIED")
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).references["authorization"] == original
    _offers_nothing(sandbox, service, payment.id, eur("100.00"))
    with pytest.raises(PaywireError):
        gateway.execute("paypal", "capture", Subject(reference=original, amount=eur("0.01"), final=False))
    renewed = _reauthorize(sandbox, gateway, original, "50.00")
    _learn(sandbox, service, payment.id, renewed, ("event",))
    _offers_what_paypal_takes(sandbox, service, service.get_payment(payment.id), renewed, eur("50.00"))


@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_void_while_paypal_reviews_the_reauthorization_voids_both(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str,
) -> None:
    """The service voids the payment while PayPal reviews its reauthorization (read by
    reconciliation): the void goes to the original, which PayPal voids with the one it reviews;
    the payment is voided and offers nothing, however its events come."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _authorized(sandbox, service)
    renewed = _reviewed(sandbox, gateway, original, "40.00")
    service.reconcile(payment_id=payment.id)
    assert service.void(payment.id).state == "voided"
    assert {sandbox.app.authorizations[a].status for a in (original, renewed)} == {"VOIDED"}
    if learnt == "reconcile":
        assert service.reconcile(payment_id=payment.id).clean
    else:
        app = sandbox.app
        for event in [e for e in app.events if e["event_type"] == "PAYMENT.AUTHORIZATION.VOIDED"]:
            body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
            for _ in range(2):
                service.receive_webhook("paypal", headers, body)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == ("voided", Money.zero("EUR"))


@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_reauthorization_under_review_after_one_never_heard_of_holds_what_that_one_held(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, learnt: str,
) -> None:
    """100.00 reauthorized for 40.00 beside paywire (the ledger not told), then again for 30.00,
    which PayPal reviews: reconciled, the payment holds the 40.00 and offers nothing; once PayPal
    creates the second, 30.00."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment, original = _authorized(sandbox, service)
    _reauthorize(sandbox, gateway, original, "40.00")
    second = _reviewed(sandbox, gateway, original, "30.00")
    service.reconcile(payment_id=payment.id)
    _offers_nothing(sandbox, service, payment.id, eur("40.00"))
    sandbox.app.decide_authorization(second, "CREATED")
    _learn(sandbox, service, payment.id, second, (learnt,))
    _offers_what_paypal_takes(sandbox, service, service.get_payment(payment.id), second, eur("30.00"))
