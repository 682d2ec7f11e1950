"""What an authorization captured in parts has left to capture, in the ledger against Braintree's
own records: once its captures asked for all of it, Braintree takes no more (a capture of what was
left closes it), whether or not one of them was then voided in the Control Panel or declined at
settlement. The ledger never offers to capture what Braintree no longer holds."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from paywire import Money, Payment, PaymentService, ProviderState, StateError, Subject
from paywire.ledger import PaymentState
from paywire.testing.proxy import RewritingProxy
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import captured_amount
from paywire_braintree.emulator.webhooks import notification_body

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def left_at_braintree(emulator: BraintreeEmulator, reference: str) -> Money:
    """What Braintree would still capture of the authorization, read from its own records."""
    with emulator.lock:
        root = emulator.transactions[reference]
        left = Decimal(0) if root.closed else root.amount - captured_amount(emulator.transactions, root)
        return Money.of(f"{left:.2f}", EUR)


def _undo(emulator: BraintreeEmulator, service: PaymentService, capture: str, how: str) -> None:
    if how == "voided in the Control Panel":  # Braintree notifies nothing of a void
        with emulator.lock:
            emulator.operations.reverse({"transactionId": capture})
        return
    emulator.settle(capture, "SETTLEMENT_DECLINED")
    if how == "declined at settlement, notified":
        with emulator.lock:
            body = notification_body(emulator.public_key, emulator.private_key, "transaction_settlement_declined",
                                     emulator.transactions[capture])
        service.receive_webhook("braintree", _FORM, body)


def _captured_in_two(service: PaymentService, emulator: BraintreeEmulator, order_id: str, keys: str,
                     case: str) -> tuple[Payment, list[str]]:
    """An authorization of 100.00, settled in a batch, captured as 30.00 then the 70.00 left, under
    keys `{keys}-auth|a|b-{case}`: the payment, and Braintree's ids of the two captures."""
    emulator.settlement = "batch"
    payment = service.authorize("braintree", Money.of("100.00", EUR), source="fake-valid-nonce",
                                order_id=order_id, idempotency_key=f"{keys}-auth-{case}")
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key=f"{keys}-a-{case}")
    service.capture(payment.id, Money.of("70.00", EUR), final=False, idempotency_key=f"{keys}-b-{case}")
    return payment, emulator.transactions[payment.reference or ""].children


@pytest.mark.parametrize("how", ["voided in the Control Panel", "declined at settlement",
                                 "declined at settlement, notified"])
@pytest.mark.parametrize("which", ["first", "last"])
def test_captures_that_asked_for_all_leave_nothing_to_capture_when_one_is_undone(
    service: PaymentService, emulator: BraintreeEmulator, how: str, which: str
) -> None:
    """30.00 then the 70.00 left of an authorization of 100.00; one of them is then undone. The
    other stands, and Braintree refuses any further capture (91507): once the ledger has read the
    payment (its notification, or reconcile), it offers nothing more to capture."""
    payment, (first, last) = _captured_in_two(service, emulator, f"L-{which}-{how}", "left", f"{which}-{how}")
    reference = payment.reference or ""
    undone, kept = (first, last) if which == "first" else (last, first)
    _undo(emulator, service, undone, how)
    if how.endswith("notified"):  # the notification alone has the service read the payment
        assert service.get_payment(payment.id).capturable == Money.zero(EUR)
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    standing = emulator.transactions[kept].amount
    assert payment.captured == Money.of(f"{standing:.2f}", EUR)
    assert left_at_braintree(emulator, reference) == Money.zero(EUR)
    assert (payment.state, payment.capturable) == (PaymentState.CAPTURED, Money.zero(EUR))
    with pytest.raises(StateError) as refused:  # refused by the ledger: nothing is sent
        service.capture(payment.id, Money.of("1.00", EUR), idempotency_key=f"left-c-{which}-{how}")
    assert refused.value.code == "capture_closed"
    emulator.settle(kept)  # the batch settles what stands; the ledger still offers nothing
    assert not service.reconcile(payment_id=payment.id).mismatches
    assert service.get_payment(payment.id).capturable == Money.zero(EUR)


def test_an_authorization_with_more_left_at_braintree_still_offers_it(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    """Captures that asked for less than all of it, one voided: the rest stays capturable, at
    Braintree and in the ledger, and a capture of it goes through."""
    emulator.settlement = "batch"
    payment = service.authorize("braintree", Money.of("100.00", EUR), source="fake-valid-nonce",
                                order_id="L-open", idempotency_key="left-open-auth")
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key="left-open-a")
    service.capture(payment.id, Money.of("20.00", EUR), final=False, idempotency_key="left-open-b")
    first, _ = emulator.transactions[payment.reference or ""].children
    _undo(emulator, service, first, "voided in the Control Panel")
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured) == (PaymentState.PARTIALLY_CAPTURED, Money.of("20.00", EUR))
    assert Money.zero(EUR) < payment.capturable <= left_at_braintree(emulator, payment.reference or "")
    rest = payment.capturable
    payment = service.capture(payment.id, rest, final=False, idempotency_key="left-open-c")
    assert payment.captured == Money.of("20.00", EUR) + rest and payment.capturable == Money.zero(EUR)
    assert left_at_braintree(emulator, payment.reference or "") == Money.zero(EUR)


@pytest.mark.parametrize("how", ["voided in the Control Panel", "declined at settlement",
                                 "declined at settlement, notified"])
@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("refund", ["part", "all"])
def test_captures_that_asked_for_all_leave_nothing_to_capture_with_a_refund(
    service: PaymentService, emulator: BraintreeEmulator, how: str, which: str, refund: str
) -> None:
    """30.00 then the 70.00 left of an authorization of 100.00; the one that stands is settled
    and refunded (part of it or all), then the other is undone. Braintree reports the payment
    refunded, not captured, and takes no further capture (91507): once the ledger has read the
    payment, it offers nothing more to capture."""
    case = f"{which}-{how}-{refund}"
    payment, (first, last) = _captured_in_two(service, emulator, f"R-{case}", "refunded", case)
    reference = payment.reference or ""
    undone, kept = (first, last) if which == "first" else (last, first)
    standing = Money.of(f"{emulator.transactions[kept].amount:.2f}", EUR)
    given = standing if refund == "all" else Money.of("10.00", EUR)
    emulator.settle(kept)
    if kept == last:  # the ledger refunds the newest capture with enough left
        service.refund(payment.id, given, idempotency_key=f"refunded-r-{case}")
    else:  # the ledger would refund the other: refunded in the Control Panel
        with emulator.lock:
            emulator.operations.refund({"transactionId": kept, "refund": {"amount": f"{given.amount}"}},
                                       origin="CONTROL_PANEL")
    with emulator.lock:
        assert [emulator.transactions[r].amount for r in emulator.transactions[kept].refunds] == [given.amount]
    _undo(emulator, service, undone, how)
    if how.endswith("notified"):  # the notification alone has the service read the payment
        assert service.get_payment(payment.id).capturable == Money.zero(EUR)
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refunded) == (standing, given)
    assert left_at_braintree(emulator, reference) == Money.zero(EUR)
    state = PaymentState.REFUNDED if refund == "all" else PaymentState.PARTIALLY_REFUNDED
    assert (payment.state, payment.capturable) == (state, Money.zero(EUR))
    with pytest.raises(StateError) as refused:  # refused by the ledger: nothing is sent
        service.capture(payment.id, Money.of("1.00", EUR), idempotency_key=f"refunded-c-{case}")
    assert refused.value.code == ("payment_final" if refund == "all" else "capture_closed")


class _Relabel(RewritingProxy):
    """A loopback proxy in front of the emulator that answers every read of an authorization
    captured in parts with its status relabelled `status`: one Braintree adds, paywire not knowing it."""

    def __init__(self, upstream: str, status: str) -> None:
        def rewrite(body: bytes, payload: Any) -> Any:
            node = (payload.get("data") or {}).get("node")
            if isinstance(node, dict) and node.get("status") == "SETTLEMENT_PENDING" \
                    and (node.get("partialCaptureDetails") or {}).get("childCaptures"):
                node["status"] = status
            return payload

        super().__init__(upstream, rewrite)


def test_an_authorization_captured_in_parts_in_a_status_paywire_does_not_know_keeps_capture_open(
    emulator: BraintreeEmulator, behind: Callable[[Callable[[str], _Relabel]], tuple[PaymentService, _Relabel]]
) -> None:
    """A status Braintree adds says nothing of whether the authorization takes more: what it has
    left is unknown, never nothing, which would close for good the capture Braintree still takes."""
    emulator.settlement = "batch"
    service, _ = behind(lambda url: _Relabel(url, "SETTLEMENT_ON_HOLD"))
    payment = service.authorize("braintree", Money.of("100.00", EUR), source="fake-valid-nonce",
                                idempotency_key="unknown-status-auth")
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key="unknown-status-a")
    fetched = service.gateway.execute("braintree", "fetch", Subject(reference=payment.reference, flow=payment.flow))
    assert fetched.capturable is None and fetched.state == ProviderState.PARTIALLY_CAPTURED
    service.reconcile(payment_id=payment.id)
    read = service.get_payment(payment.id)
    assert not read.capture_closed and read.state == PaymentState.PARTIALLY_CAPTURED
    assert left_at_braintree(emulator, payment.reference or "") == Money.of("70.00", EUR)
    done = service.capture(payment.id, Money.of("70.00", EUR), idempotency_key="unknown-status-b")
    assert done.captured == Money.of("100.00", EUR)
