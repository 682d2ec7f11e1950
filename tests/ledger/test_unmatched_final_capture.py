"""A final capture's event that comes before its payment can be matched: stored unmatched, it is
applied once the payment's reference is known, and it closes the capture as it would have on
receipt (its `closes_capture` is stored with it), so the rest of the authorization is refused
before anything is sent. Against the FakePay emulator over loopback HTTP, on both ledgers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from paywire import EventKind, StateError, hookimpl
from paywire.ledger import EventStatus, Ledger
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import eur, store_unmatched


def _dashboard_capture(app: FakePayApp, pid: str, amount: int) -> tuple[dict[str, str], bytes]:
    """A final capture made in the provider's dashboard: its event (naming the capture and the
    payment, saying it was final), not delivered yet."""
    with app.lock:
        capture = str(app._capture(app.payments[pid], amount, final=True, emit=False)["id"])
    return app.event(f"evt_{capture}", EventKind.CAPTURED, capture, amount=amount,
                     references={"capture": capture, "payment": pid}, closes_capture=True)


def _refused_before_sending(service: PaymentService, app: FakePayApp, payment_id: str) -> None:
    received = app.received
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), final=False)
    assert refused.value.code == "capture_closed", refused.value
    assert app.received == received  # nothing was sent


class CaptureDuringAuthorize:
    """While the authorization's answer is on its way back, the merchant captures it finally in
    the dashboard and the provider's event about that capture is delivered (twice): the ledger
    does not know the payment's reference yet."""

    def __init__(self, app: FakePayApp) -> None:
        self.app = app
        self.service: PaymentService | None = None
        self.receipts: list[str] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "authorize" and self.service is not None and not self.receipts:
            event = _dashboard_capture(self.app, json.loads(response.body)["id"], 3_000)
            self.receipts += [self.service.receive_webhook("fakepay", *event).status for _ in range(2)]
        return response


def test_a_final_capture_event_before_its_payment_is_known_closes_the_capture_when_applied(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    app, url = fakepay
    hook = CaptureDuringAuthorize(app)
    with make_gateway(url, extra=[hook]) as gateway:
        service = hook.service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        assert hook.receipts == [EventStatus.UNMATCHED, "duplicate"]
        assert (payment.authorized, payment.captured, payment.capture_closed) == (eur("100.00"), eur("30.00"), True)
        (event,) = ledger.list_events(statuses=[EventStatus.APPLIED])  # by the authorization's record
        assert (event.payment_id, event.closes_capture) == (payment.id, True)
        (capture,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
        assert (capture.origin, capture.request.get("final")) == ("webhook", True)
        assert service.receive_webhook("fakepay", *app.event(event.event_id, EventKind.CAPTURED, event.reference or "",
                                       amount=3_000, references=event.references,
                                       closes_capture=True)).status == "duplicate"
        assert len([t for t in service.list_transactions(payment.id) if t.kind == "capture"]) == 1  # applied once
        _refused_before_sending(service, app, payment.id)
        assert service.reconcile(payment_id=payment.id).clean  # the provider's reading agrees
        assert service.get_payment(payment.id).captured == eur("30.00")


@pytest.mark.parametrize("applied_by", ["match_unmatched", "redelivery"])
def test_a_final_capture_event_stored_unmatched_in_a_race_closes_the_capture_when_matched(
        service: PaymentService, app: FakePayApp, applied_by: str) -> None:
    """Stored unmatched while the unit learning its payment's reference was uncommitted, the event
    is applied by `match_unmatched` or by its redelivery, each reading it back from the ledger."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    event = _dashboard_capture(app, payment.reference or "", 3_000)
    store_unmatched(service, "fakepay", *event)
    if applied_by == "match_unmatched":
        assert service.match_unmatched().applied == 1
    else:
        assert service.receive_webhook("fakepay", *event).status == "duplicate"
    assert service.receive_webhook("fakepay", *event).status == "duplicate"
    assert service.match_unmatched().applied == 0
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capture_closed) == (eur("30.00"), True)
    assert len([t for t in service.list_transactions(payment.id) if t.kind == "capture"]) == 1
    _refused_before_sending(service, app, payment.id)
