"""Webhooks: verified, stored once, applied idempotently and in any arrival order."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from paywire import (
    ConfigurationError,
    EventKind,
    Money,
    OutcomeUnknown,
    PaywireError,
    StateError,
    WebhookVerificationError,
    hookimpl,
)
from paywire.ledger import EventStatus, Ledger, PaymentState, TransactionStatus
from paywire.service import MatchReport, PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def test_unverifiable_webhooks_change_nothing(service: PaymentService, app: FakePayApp) -> None:
    headers, body = app.event("evt_1", EventKind.CAPTURED, "fp_x", amount=100)
    with pytest.raises(WebhookVerificationError):
        service.receive_webhook("fakepay", headers, body + b" ")
    forged, forged_body = app.event("evt_1", EventKind.CAPTURED, "fp_x", amount=100, secret="guessed")
    with pytest.raises(WebhookVerificationError):
        service.receive_webhook("fakepay", forged, forged_body)
    with pytest.raises(WebhookVerificationError, match="malformed"):
        bad = b'{"id": "evt_2"}'
        service.receive_webhook("fakepay", app.event("x", "other", "y")[0] | {"FakePay-Signature": _sign(bad)}, bad)
    with pytest.raises(ConfigurationError):
        service.receive_webhook("nope", headers, body)
    assert service.ledger.list_events() == []


def _sign(body: bytes) -> str:
    import hashlib
    import hmac

    from tests.ledger.fakepay import WEBHOOK_SECRET

    return hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_duplicates_are_applied_once(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    with app.lock:  # a capture made in the provider's dashboard
        cap = app._capture(app.payments[payment.reference or ""], 2_500, final=False)
    headers, body = app.event("evt_cap", EventKind.CAPTURED, cap["id"], amount=2_500,
                              references={"payment": payment.reference or ""})
    first = service.receive_webhook("fakepay", headers, body)
    assert (first.status, first.payment_id) == (EventStatus.APPLIED, payment.id)
    again = service.receive_webhook("fakepay", headers, body)
    assert (again.status, again.payment_id) == ("duplicate", payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured) == (PaymentState.PARTIALLY_CAPTURED, eur("25.00"))
    external = [t for t in service.list_transactions(payment.id) if t.origin == "webhook"]
    assert [(t.kind, t.amount, t.provider_reference) for t in external] == [("capture", eur("25.00"), cap["id"])]
    # The ledger knows the capture now: it can be refunded through the service.
    service.refund(payment.id, eur("25.00"))
    assert app.totals(payment.reference or "") == (10_000, 2_500, 2_500)


def test_events_for_recorded_operations_do_not_double_count(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("40.00"))
    cap = service.list_transactions(payment.id)[-1].provider_reference or ""
    for index, (kind, ref, extra) in enumerate([
        (EventKind.AUTHORIZED, payment.reference, {"amount": 10_000}),
        (EventKind.CAPTURED, cap, {"amount": 4_000}),
        (EventKind.CAPTURED, payment.reference, {"total": 4_000}),
        (EventKind.CAPTURED, payment.reference, {"amount": 4_000}),  # about the payment: a running total
    ]):
        headers, body = app.event(f"evt_{index}", kind, ref or "", **extra)
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    after = service.get_payment(payment.id)
    assert (after.authorized, after.captured) == (eur("100.00"), eur("40.00"))
    assert [t.origin for t in service.list_transactions(payment.id)] == ["service", "service"]


def test_totals_never_move_backwards(service: PaymentService, app: FakePayApp) -> None:
    payment = service.sale("fakepay", eur("80.00"), source="tok_ok")
    for event_id, total in (("evt_a", 3_000), ("evt_b", 1_000), ("evt_c", 2_000)):
        headers, body = app.event(event_id, EventKind.REFUNDED, payment.reference or "", total=total)
        service.receive_webhook("fakepay", headers, body)
    assert service.get_payment(payment.id).refunded == eur("30.00")
    headers, body = app.event("evt_fail", EventKind.FAILED, payment.reference or "")
    service.receive_webhook("fakepay", headers, body)
    headers, body = app.event("evt_void", EventKind.VOIDED, payment.reference or "")
    service.receive_webhook("fakepay", headers, body)
    after = service.get_payment(payment.id)
    assert (after.state, after.captured, after.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("80.00"),
                                                             eur("30.00"))
    notes = [e.note for e in service.ledger.list_events(payment_id=payment.id)]
    assert notes[-2:] == ["ignored: money already moved on this payment",
                          "ignored: the payment has captures, it cannot be voided"]


def test_any_arrival_order_gives_the_same_payment(service: PaymentService, app: FakePayApp) -> None:
    """Every order of four events (external capture and refund objects, running totals) ends in
    the same totals, each event applied once. The objects are made at the provider (in its
    dashboard, as it were), so a read the events make the service take finds what they report:
    a capture or refund recorded while a reported total stands may be one that total counts."""
    outcomes = set()
    for order_index, order in enumerate(itertools.permutations(range(4))):
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        ref = payment.reference or ""
        with app.lock:
            cap = app._capture(app.payments[ref], 3_000, final=False, emit=False)["id"]
            app._capture(app.payments[ref], 2_000, final=False, emit=False)
        refund = app.refund_beside(cap, 1_000)
        events = [
            dict(kind=EventKind.CAPTURED, reference=cap, amount=3_000, references={"payment": ref}),
            dict(kind=EventKind.CAPTURED, reference=ref, total=5_000),
            dict(kind=EventKind.REFUNDED, reference=refund, amount=1_000,
                 references={"capture": cap, "payment": ref}),
            dict(kind=EventKind.REFUNDED, reference=ref, total=1_000),
        ]
        for position in order:
            spec: dict[str, Any] = dict(events[position])
            headers, body = app.event(f"evt_{order_index}_{position}", spec.pop("kind"), spec.pop("reference"),
                                      **spec)
            receipt = service.receive_webhook("fakepay", headers, body)
            assert receipt.status == EventStatus.APPLIED, (order, position, receipt)
        final = service.get_payment(payment.id)
        outcomes.add((final.state, final.authorized, final.captured, final.refunded))
    assert outcomes == {(PaymentState.PARTIALLY_REFUNDED, eur("100.00"), eur("50.00"), eur("10.00"))}


class DeliverDuringSend:
    """Delivers the provider's webhook for a capture before the service has recorded the capture's
    outcome: the order a fast provider and a slow database produce."""

    def __init__(self, app: FakePayApp) -> None:
        self.app = app
        self.service: PaymentService | None = None
        self.receipts: list[str] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "capture" and self.service is not None:
            data = json.loads(response.body)
            # One event names the payment too (matched, then deferred); one only the new capture
            # (unmatched until the capture's id is recorded).
            for suffix, refs in (("a", {"payment": data["payment"]}), ("b", {})):
                headers, body = self.app.event(f"evt_{data['id']}_{suffix}", EventKind.CAPTURED, data["id"],
                                               amount=data["amount"], references=refs)
                self.receipts.append(self.service.receive_webhook("fakepay", headers, body).status)
        return response


def test_an_event_racing_its_own_operation_is_deferred(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    app, url = fakepay
    hook = DeliverDuringSend(app)
    gateway = make_gateway(url, extra=[hook])
    service = hook.service = PaymentService(gateway, ledger)
    try:
        payment = service.authorize("fakepay", eur("60.00"), source="tok_ok")
        payment = service.capture(payment.id, eur("20.00"))
        assert hook.receipts == [EventStatus.DEFERRED, EventStatus.UNMATCHED]
        assert payment.captured == eur("20.00")
        assert [(e.status, e.payment_id) for e in ledger.list_events()] == [(EventStatus.APPLIED, payment.id)] * 2
        assert [t.origin for t in service.list_transactions(payment.id)] == ["service", "service"]
    finally:
        gateway.close()


def test_unmatched_events_are_applied_when_the_payment_is_known(service: PaymentService, app: FakePayApp) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("fakepay", eur("30.00"), source="tok_ok")
    reference = next(iter(app.payments))
    headers, body = app.event("evt_refund", EventKind.REFUNDED, "re_ext", amount=500,
                              references={"payment": reference})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.UNMATCHED
    with app.lock:
        app.payments[reference]["refunded"] = 500  # the refund the event reports
    report = service.reconcile()
    assert [s.status for s in report.settled] == [TransactionStatus.SUCCEEDED]
    payment = service.get_payment(lost.value.payment_id or "")
    assert (payment.captured, payment.refunded) == (eur("30.00"), eur("5.00"))
    assert service.ledger.get_event("fakepay", "evt_refund").status == EventStatus.APPLIED  # type: ignore[union-attr]


def test_failed_and_authorized_events_settle_the_first_operation(service: PaymentService, app: FakePayApp) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.authorize("fakepay", eur("12.00"), source="tok_3ds")
    reference = next(iter(app.payments))
    service.reconcile()  # finds it waiting for the buyer
    payment = service.get_payment(lost.value.payment_id or "")
    assert payment.state == PaymentState.ACTION_REQUIRED
    headers, body = app.event("evt_auth", EventKind.AUTHORIZED, reference, amount=1_200)
    service.receive_webhook("fakepay", headers, body)  # the buyer finished on the provider's page
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("12.00"), None)

    other = service.authorize("fakepay", eur("5.00"), source="tok_3ds")
    headers, body = app.event("evt_failed", EventKind.FAILED, other.reference or "")
    service.receive_webhook("fakepay", headers, body)
    assert service.get_payment(other.id).state == PaymentState.FAILED


def test_concurrent_deliveries_of_one_event_apply_once(fakepay: tuple[FakePayApp, str], make_ledger: Any) -> None:
    """Providers deliver again when an answer is slow: the copies race on separate connections."""
    import threading

    app, url = fakepay
    gateway = make_gateway(url)
    try:
        first = PaymentService(gateway, make_ledger())
        payment = first.authorize("fakepay", eur("100.00"), source="tok_ok")
        headers, body = app.event("evt_race", EventKind.CAPTURED, "cap_outside", amount=1_500,
                                  references={"payment": payment.reference or ""})
        services = [PaymentService(gateway, make_ledger()) for _ in range(6)]
        barrier = threading.Barrier(len(services))
        receipts: list[str] = []

        def deliver(service: PaymentService) -> None:
            barrier.wait()
            receipts.append(service.receive_webhook("fakepay", headers, body).status)

        threads = [threading.Thread(target=deliver, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(receipts) == ["applied"] + ["duplicate"] * 5
        assert first.get_payment(payment.id).captured == eur("15.00")
        assert [t.origin for t in first.list_transactions(payment.id)] == ["service", "webhook"]
    finally:
        gateway.close()


def test_an_unmatched_event_is_applied_when_another_event_teaches_the_ledger_its_reference(
        service: PaymentService, app: FakePayApp) -> None:
    """An event naming only a refund made outside paywire waits, unmatched; the event that records
    that refund on the payment gives the payment the refund's id, and the waiting event applies then,
    not only at the next reconciliation."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_ok")
    headers, body = app.event("evt_re_failed", EventKind.FAILED, "re_outside")  # names only the refund
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.UNMATCHED
    headers, body = app.event("evt_re_ok", EventKind.REFUNDED, "re_outside", amount=1_000,
                              references={"payment": payment.reference or ""})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    waiting = service.ledger.get_event("fakepay", "evt_re_failed")
    assert waiting is not None and (waiting.status, waiting.payment_id) == (EventStatus.APPLIED, payment.id)
    after = service.get_payment(payment.id)
    assert (after.captured, after.refunded) == (eur("50.00"), eur("0.00"))
    assert [t.kind for t in service.list_transactions(payment.id)] == ["sale", "refund", "reversal"]


@pytest.mark.parametrize("failed_first", [True, False])
def test_a_refund_reported_failed_counts_nothing_whichever_event_comes_first(
        service: PaymentService, app: FakePayApp, failed_first: bool) -> None:
    """A refund made outside paywire, then undone by the provider: its failed event may arrive
    before the event that reports the refund. The failure waits for the refund instead of being
    dropped, so the refund is never counted on its own."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_ok")
    refs = {"capture": payment.references.get("capture", ""), "payment": payment.reference or ""}
    failed = app.event("evt_re_failed", EventKind.FAILED, "re_outside", references=refs)
    refunded = app.event("evt_re_ok", EventKind.REFUNDED, "re_outside", amount=1_000, references=refs)
    for headers, body in (failed, refunded) if failed_first else (refunded, failed):
        service.receive_webhook("fakepay", headers, body)
    after = service.get_payment(payment.id)
    assert (after.captured, after.refunded) == (eur("50.00"), eur("0.00"))
    assert [t.kind for t in service.list_transactions(payment.id)] == ["sale", "refund", "reversal"]
    assert {e.status for e in service.ledger.list_events(payment_id=payment.id)} == {EventStatus.APPLIED}


def test_a_refund_reported_failed_while_its_own_answer_is_on_the_way_is_reversed(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """The provider's event that a refund failed overtakes the refund call's own answer (which
    said it succeeded): the refund is recorded, and reversed, not counted."""
    app, url = fakepay

    class FailedDuringSend:
        service: PaymentService | None = None

        @hookimpl(wrapper=True)
        def send_transfer(self, command: str) -> Iterator[None]:
            response: Any = yield
            if command == "refund" and self.service is not None:
                data = json.loads(response.body)
                headers, body = app.event(f"evt_{data['id']}_failed", EventKind.FAILED, data["id"],
                                          references={"capture": data["capture"], "payment": data["payment"]})
                self.service.receive_webhook("fakepay", headers, body)
            return response

    hook = FailedDuringSend()
    gateway = make_gateway(url, extra=[hook])
    service = hook.service = PaymentService(gateway, ledger)
    try:
        payment = service.sale("fakepay", eur("40.00"), source="tok_ok")
        payment = service.refund(payment.id, eur("15.00"))
        assert (payment.captured, payment.refunded) == (eur("40.00"), eur("0.00"))
        assert [t.kind for t in service.list_transactions(payment.id)] == ["sale", "refund", "reversal"]
        assert [e.status for e in ledger.list_events(payment_id=payment.id)] == [EventStatus.APPLIED]
    finally:
        gateway.close()


def test_a_failed_refund_waiting_with_its_refund_for_the_payment_is_applied_with_it(
        service: PaymentService, app: FakePayApp) -> None:
    """Both events of a refund undone by the provider arrive before the payment's own answer
    (lost): they wait unmatched, in the order failed then refunded, and the reconciliation that
    learns the payment applies both, the failure after the refund it names."""
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("fakepay", eur("30.00"), source="tok_ok")
    app.clear_faults()
    reference = next(iter(app.payments))
    refs = {"payment": reference}
    for event_id, kind, amount in (("evt_f", EventKind.FAILED, None), ("evt_r", EventKind.REFUNDED, 500)):
        headers, body = app.event(event_id, kind, "re_ext", amount=amount, references=refs)
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.UNMATCHED
    service.reconcile(payment_id=lost.value.payment_id)
    payment = service.get_payment(lost.value.payment_id or "")
    assert (payment.captured, payment.refunded) == (eur("30.00"), eur("0.00"))
    assert {e.status for e in service.ledger.list_events(payment_id=payment.id)} == {EventStatus.APPLIED}


def test_an_event_reaching_another_methods_endpoint_of_the_provider_is_applied(
        service: PaymentService, app: FakePayApp) -> None:
    """Two methods of one provider ("fakepay", "fakepay_single") share its account and its
    webhooks: an event about a payment of one may arrive at the other's endpoint (one endpoint
    configured, or the first of two to answer). It is applied to the payment it names, not left
    unmatched while the other delivery is taken for a duplicate."""
    payment = service.authorize("fakepay_single", eur("50.00"), source="tok_ok")
    event = app.event("evt_cap", EventKind.CAPTURED, "cap_outside", amount=5_000,
                      references={"payment": payment.reference or ""})
    receipt = service.receive_webhook("fakepay", *event)
    assert (receipt.status, receipt.payment_id) == (EventStatus.APPLIED, payment.id)
    assert service.receive_webhook("fakepay_single", *event).status == "duplicate"
    assert service.get_payment(payment.id).captured == eur("50.00")

    app.inject(Fault("drop_after", path="/v1/payments$"))  # and one that arrives before its payment is known
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("fakepay_single", eur("30.00"), source="tok_ok")
    app.clear_faults()
    reference = next(p for p in app.payments if p != payment.reference)
    headers, body = app.event("evt_re", EventKind.REFUNDED, "re_outside", amount=500, references={"payment": reference})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.UNMATCHED
    service.retry(lost.value.transaction_id or "")  # its answer, under its key, teaches the payment its id
    sold = service.get_payment(lost.value.payment_id or "")
    assert (sold.captured, sold.refunded) == (eur("30.00"), eur("5.00"))
    assert service.ledger.get_event("fakepay", "evt_re").status == EventStatus.APPLIED  # type: ignore[union-attr]


def test_a_void_reported_while_a_capture_is_in_flight_applies_once_the_capture_fails(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """The authorization is voided at the provider (its dashboard, or it expired) while a capture
    is on its way; the void's event arrives before the capture's answer. The event waits for the
    capture instead of being dropped: the provider refuses the capture, and the payment is voided
    as the provider holds it, not left authorized."""
    app, url = fakepay

    class VoidedDuringCapture:
        service: PaymentService | None = None
        receipts: list[str] = []

        @hookimpl(wrapper=True)
        def send_transfer(self, command: str, transfer: Any) -> Iterator[None]:
            if command == "capture" and self.service is not None:
                pid = transfer.url.rsplit("/", 2)[-2]
                with app.lock:
                    app.payments[pid].update(status="voided", closed=True)
                self.receipts.append(self.service.receive_webhook("fakepay", *app.emit("voided", pid)).status)
            response: Any = yield
            return response

    hook = VoidedDuringCapture()
    gateway = make_gateway(url, extra=[hook])
    service = hook.service = PaymentService(gateway, ledger)
    try:
        payment = service.authorize("fakepay", eur("60.00"), source="tok_ok")
        with pytest.raises(PaywireError) as refused:
            service.capture(payment.id, eur("20.00"))  # the provider refuses it: the payment is voided
        assert (refused.value.code, hook.receipts) == ("invalid_state", [EventStatus.DEFERRED])
        after = service.get_payment(payment.id)
        assert (after.state, after.captured) == (PaymentState.VOIDED, eur("0.00"))
        assert [e.status for e in ledger.list_events(payment_id=payment.id)] == [EventStatus.APPLIED]
    finally:
        gateway.close()


@pytest.mark.parametrize("failed_first", [True, False], ids=["failure first", "total first"])
def test_a_refund_undone_lowers_a_reported_total_only_if_that_total_could_count_it(
    service: PaymentService, app: FakePayApp, failed_first: bool,
) -> None:
    """At the provider refund A (10.00) is undone, then refund B (5.00) is made outside paywire;
    B's event reports the running total, 5.00, without A. Whichever event comes first, the ledger
    ends at the provider's 5.00: a total below A's amount cannot have counted A."""
    payment = service.sale("fakepay", Money.of("50.00", "EUR"), source="tok_ok")
    payment = service.refund(payment.id, Money.of("10.00", "EUR"))
    refund = next(t for t in service.list_transactions(payment.id) if t.kind == "refund")
    refs = {"capture": payment.references["capture"], "payment": payment.reference or ""}
    undone = app.event("evt_a_failed", EventKind.FAILED, refund.provider_reference or "", references=refs)
    outside = app.event("evt_b", EventKind.REFUNDED, "re_b", amount=500, total=500, references=refs)
    for event in ((undone, outside) if failed_first else (outside, undone)):
        service.receive_webhook("fakepay", *event)
    assert service.get_payment(payment.id).refunded == Money.of("5.00", "EUR")


def test_an_event_stored_unmatched_through_a_sibling_method_is_matched_by_match_unmatched(
    service: PaymentService, app: FakePayApp, ledger: Ledger,
) -> None:
    """An event that came through one method's endpoint about a payment of the account's other
    method, stored unmatched while that payment's answer was being recorded (their two units
    raced): reconciliation's pass matches it, not only a later operation on the payment."""
    from tests.ledger.test_storage_conformance import event

    payment = service.sale("fakepay_single", Money.of("30.00", "EUR"), source="tok_ok")
    refs = {"payment": payment.reference or "", "capture": payment.references["capture"]}
    with ledger.unit() as u:  # what the losing unit stored
        assert u.insert_event(event("evt_outside", method="fakepay", kind=EventKind.REFUNDED, type="refund.succeeded",
                                    reference="re_outside", references=refs, amount=Money.of("5.00", "EUR")))
    assert service.match_unmatched() == MatchReport(applied=1)
    assert ledger.get_event("fakepay", "evt_outside").status == EventStatus.APPLIED  # type: ignore[union-attr]
    assert service.get_payment(payment.id).refunded == Money.of("5.00", "EUR")
    assert service.match_unmatched() == MatchReport(applied=0)  # applied once


@pytest.mark.parametrize("event_id", ["evt_nul\x00x", "evt_lone\ud800x"], ids=["NUL", "lone surrogate"])
def test_a_verified_event_whose_ids_no_ledger_can_keep_is_refused_not_failed_forever(
    service: PaymentService, app: FakePayApp, ledger: Ledger, event_id: str,
) -> None:
    """Storing it would fail on every delivery (a 500 the provider answers by delivering again, for
    days); it is refused with a 400 instead, and nothing of it is stored."""
    from paywire.web import handle_webhook

    payment = service.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event(event_id, EventKind.REFUNDED, payment.reference or "", total=1000)
    answers = [handle_webhook(service, "fakepay", headers, body) for _ in range(2)]
    assert [(status, json.loads(text)) for status, _, text in answers] == [(400, {"error": "unstorable_event"})] * 2
    assert ledger.list_events() == [] and service.get_payment(payment.id).refunded == Money.of("0.00", "EUR")


@pytest.mark.parametrize("where", ["id", "reference"])
def test_a_verified_event_with_an_id_too_long_for_the_ledgers_index_is_refused_not_failed_forever(
    service: PaymentService, app: FakePayApp, ledger: Ledger, where: str,
) -> None:
    """PostgreSQL's btree keeps index rows of 2704 bytes at most: an event id or reference past
    that failed the insert on every delivery (a 500). Refused with a 400 on every ledger instead;
    ids of a thousand characters are stored."""
    from paywire.web import handle_webhook

    payment = service.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    long = hashlib.shake_256(b"incompressible").hexdigest(1500)  # 3000 characters no index compresses
    refs = {"payment": payment.reference or ""} | ({"refund": long} if where == "reference" else {})
    headers, body = app.event(long if where == "id" else "evt_long_ref", EventKind.OTHER, payment.reference or "",
                              references=refs)
    answers = [handle_webhook(service, "fakepay", headers, body) for _ in range(2)]
    assert [(status, json.loads(text)) for status, _, text in answers] == [(400, {"error": "unstorable_event"})] * 2
    assert ledger.list_events() == []
    kept = long[:1000]
    headers, body = app.event(kept, EventKind.OTHER, payment.reference or "",
                              references={"payment": payment.reference or "", "refund": kept})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED


@pytest.mark.parametrize(("method", "state"), [("fakepay_single", PaymentState.CAPTURED),
                                               ("fakepay", PaymentState.PARTIALLY_CAPTURED)])
def test_a_capture_reported_by_its_event_closes_the_payment_where_the_method_captures_once(
        service: PaymentService, app: FakePayApp, method: str, state: str) -> None:
    """A method that allows one capture per payment holds nothing after it: the provider released
    the rest, as it does after the service's own (final) capture. Another method may capture again."""
    payment = service.authorize(method, eur("100.00"), source="tok_ok")
    headers, body = app.event("evt_total", EventKind.CAPTURED, payment.reference or "", total=2_500)
    assert service.receive_webhook(method, headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured) == (state, eur("25.00"))
    assert payment.capturable == (eur("0.00") if method == "fakepay_single" else eur("75.00"))


def test_an_authorized_event_reporting_nothing_authorized_settles_nothing(
        service: PaymentService, app: FakePayApp) -> None:
    """An authorized event whose amount is zero (nothing held) is no authorization: it neither
    settles an accepted authorization as succeeded nor counts the payment's amount."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_pending")
    [txn] = service.list_transactions(payment.id)
    assert txn.status == TransactionStatus.ACCEPTED
    headers, body = app.event("evt_zero", EventKind.AUTHORIZED, payment.reference or "", amount=0)
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    [txn] = service.list_transactions(payment.id)
    assert (payment.authorized, txn.status) == (eur("0.00"), TransactionStatus.ACCEPTED)


def test_an_event_one_accounts_keys_verify_changes_no_payment_of_another_account(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """Two methods of one provider with different credentials are two accounts: an event verified
    with one's webhook secret (whoever holds that account's keys can sign one) naming the other's
    payment is left unmatched, never applied to it, also by `match_unmatched`."""
    from paywire import Gateway, MethodConfig, Plugins, Retry
    from tests.ledger.fakepay import CREDENTIALS, FakePayPlugin

    app, url = fakepay
    plugins = Plugins()
    plugins.register(FakePayPlugin(), "fakepay")
    other = {"api_key": "fk_test_othershop789", "webhook_secret": "fkwh_othershop012"}
    methods = [MethodConfig(code="fakepay", base_url=url, credentials=dict(CREDENTIALS)),
               MethodConfig(code="other_shop", provider="fakepay", base_url=url, credentials=other)]
    service = PaymentService(Gateway(methods, plugins=plugins, retry=Retry.never()), ledger)
    payment = service.sale("other_shop", eur("50.00"), source="tok_ok")
    forged = app.event("evt_forged", EventKind.REFUNDED, "re_forged", amount=5_000,
                       references={"payment": payment.reference or ""})  # signed with "fakepay"'s secret
    assert service.receive_webhook("fakepay", *forged).status == EventStatus.UNMATCHED
    assert service.match_unmatched() == MatchReport(applied=0)
    assert service.get_payment(payment.id).refunded == eur("0.00")
    own = app.event("evt_own", EventKind.REFUNDED, "re_own", amount=1_000, secret=other["webhook_secret"],
                    references={"payment": payment.reference or ""})
    assert service.receive_webhook("other_shop", *own).status == EventStatus.APPLIED
    assert service.get_payment(payment.id).refunded == eur("10.00")


def test_a_void_reported_after_a_partial_capture_closes_the_payment(service: PaymentService, app: FakePayApp) -> None:
    """A provider that voids an authorization after part of it was captured (PayPal, in its
    dashboard) released the rest: the ledger shows nothing capturable and refuses a capture before
    sending it; what was captured stands."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("30.00"), final=False)
    headers, body = app.event("evt_void", EventKind.VOIDED, payment.reference or "")
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (PaymentState.CAPTURED, eur("30.00"), eur("0.00"))
    sent = len(app.calls)
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("10.00"))
    assert refused.value.code == "capture_closed" and len(app.calls) == sent
    assert service.refund(payment.id, eur("30.00")).state == PaymentState.REFUNDED


def test_a_capture_or_sale_the_provider_reports_reversed_counts_no_more(
        service: PaymentService, app: FakePayApp) -> None:
    """A capture or a sale declined at settlement after the provider reported it done (Braintree's
    settlement declined): a reversed event naming it records its reversal once, and the totals,
    provider-reported ones included, count it no more. A failed event naming the payment object
    after its sale succeeded is about an attempt: it undoes nothing."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("40.00"), final=False)
    capture = service.list_transactions(payment.id)[-1].provider_reference or ""
    total = app.event("evt_total", EventKind.CAPTURED, payment.reference or "", total=4_000)
    assert service.receive_webhook("fakepay", *total).status == EventStatus.APPLIED
    for event_id in ("evt_declined", "evt_declined_again"):
        headers, body = app.event(event_id, EventKind.REVERSED, capture)
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.AUTHORIZED, eur("100.00"),
                                                                      eur("0.00"))
    assert [t.kind for t in service.list_transactions(payment.id)] == ["authorize", "capture", "reversal"]
    with pytest.raises(StateError):
        service.refund(payment.id, eur("1.00"))  # nothing captured to refund

    sale = service.sale("fakepay", eur("30.00"), source="tok_ok")
    attempt = app.event("evt_attempt", EventKind.FAILED, sale.reference or "")
    service.receive_webhook("fakepay", *attempt)
    assert service.get_payment(sale.id).captured == eur("30.00")
    [sold] = service.list_transactions(sale.id)  # the sale names the capture it made
    headers, body = app.event("evt_sale_declined", EventKind.REVERSED, sold.provider_reference or "")
    service.receive_webhook("fakepay", headers, body)
    sale = service.get_payment(sale.id)
    assert (sale.state, sale.authorized, sale.captured) == (PaymentState.FAILED, eur("0.00"), eur("0.00"))


@pytest.mark.parametrize("undone", ["sale", "capture"])
def test_the_refunds_of_an_undone_capture_or_sale_count_no_more(
        service: PaymentService, app: FakePayApp, undone: str) -> None:
    """A capture or sale declined at settlement moved no money, so neither did its refunds: the
    totals count none of them, and an undone sale is a failed payment."""
    if undone == "sale":
        payment = service.sale("fakepay", eur("30.00"), source="tok_ok")
        expected = (PaymentState.FAILED, eur("0.00"), eur("0.00"), eur("0.00"))
    else:
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        payment = service.capture(payment.id, eur("40.00"), final=False)
        expected = (PaymentState.AUTHORIZED, eur("100.00"), eur("0.00"), eur("0.00"))
    made = service.list_transactions(payment.id)[-1].provider_reference or ""
    payment = service.refund(payment.id, eur("10.00"))
    refunded = app.event("evt_refunded_total", EventKind.REFUNDED, payment.reference or "", total=1_000)
    service.receive_webhook("fakepay", *refunded)  # a reported total that counted the refund
    headers, body = app.event("evt_declined", EventKind.REVERSED, made)
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured, payment.refunded) == expected


def test_an_event_from_before_the_provider_undid_a_capture_counts_it_no_more(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("40.00"), final=False)
    capture = service.list_transactions(payment.id)[-1].provider_reference or ""
    service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, capture))
    late = app.event("evt_late", EventKind.CAPTURED, capture, total=4_000)  # delivered out of order
    assert service.receive_webhook("fakepay", *late).status == EventStatus.APPLIED
    assert service.get_payment(payment.id).captured == eur("0.00")


def test_a_secret_lookup_failing_for_another_method_loses_no_charge(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """Whether two methods are one account is read from their credentials, after the provider
    answered: a `get_secret` hook raising for the other method (a vault without its path) makes
    them two accounts, never an error in place of the payment's record."""
    from paywire import Gateway, MethodConfig, Plugins, Retry, hookimpl
    from tests.ledger.fakepay import CREDENTIALS, FakePayPlugin

    class Vault:
        @hookimpl
        def get_secret(self, gateway: str, name: str) -> str | None:
            return {"fakepay": CREDENTIALS}[gateway][name]  # a KeyError for a path it lacks

    _, url = fakepay
    plugins = Plugins()
    plugins.register(FakePayPlugin(), "fakepay")
    plugins.register(Vault(), "vault")
    methods = [MethodConfig(code="fakepay", base_url=url),
               MethodConfig(code="not_in_the_vault", provider="fakepay", base_url=url)]
    with Gateway(methods, plugins=plugins, retry=Retry.never()) as gateway:
        payment = PaymentService(gateway, ledger).sale("fakepay", eur("50.00"), source="tok_ok")
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, eur("50.00"))


def test_an_event_reporting_a_zero_amount_is_stored_with_its_currency_and_read_back(
        service: PaymentService, app: FakePayApp) -> None:
    """A zero is an amount too: stored without its currency (Money(0) is falsy), the event could not
    be read again, so its redelivery and every listing of events failed."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_pending")
    headers, body = app.event("evt_zero_kept", EventKind.AUTHORIZED, payment.reference or "", amount=0)
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    assert service.receive_webhook("fakepay", headers, body).status == "duplicate"
    [event] = service.ledger.list_events(payment_id=payment.id)
    assert (event.event_id, event.amount, event.total) == ("evt_zero_kept", eur("0.00"), None)


def test_a_capture_recorded_from_an_event_keeps_a_zero_amount(service: PaymentService, app: FakePayApp) -> None:
    """A transaction of zero is stored as zero, not as a transaction without an amount."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    headers, body = app.event("evt_zero_capture", EventKind.CAPTURED, payment.reference or "", amount=0,
                              references={"capture": "cap_zero"})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    recorded = [t for t in service.list_transactions(payment.id) if t.origin == "webhook"]
    assert [(t.provider_reference, t.amount) for t in recorded] == [("cap_zero", eur("0.00"))]


def test_a_verified_event_with_its_amount_and_total_in_two_currencies_is_refused_not_stored_in_one(
    service: PaymentService, app: FakePayApp, ledger: Ledger,
) -> None:
    """The ledger keeps one currency per event: the total of 10.00 EUR was applied, and stored
    (and read back, redelivered, listed) as 10.00 USD, the amount's currency."""
    from paywire.web import handle_webhook

    payment = service.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_two_currencies", EventKind.REFUNDED, payment.reference or "", amount=1000,
                              currency="USD", total=1000, total_currency="EUR")
    status, _, text = handle_webhook(service, "fakepay", headers, body)
    assert (status, json.loads(text)) == (400, {"error": "unstorable_event"})
    assert ledger.list_events() == [] and service.get_payment(payment.id).refunded == Money.of("0.00", "EUR")


def test_a_capture_the_ledger_never_held_reported_failed_moves_nothing_and_waits_for_nothing(
        service: PaymentService, app: FakePayApp) -> None:
    """A capture declined in the provider's dashboard: its failed event names an object no answer
    or event will ever record (a failed capture moved nothing). It waited for it forever."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("30.00"), final=False)
    headers, body = app.event("evt_declined", EventKind.FAILED, "cap_dashboard",
                              references={"capture": "cap_dashboard", "payment": payment.reference or ""})
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    after = service.get_payment(payment.id)
    assert (after.state, after.authorized, after.captured) == (payment.state, eur("100.00"), eur("30.00"))
    assert service.ledger.get_event("fakepay", "evt_declined").status == EventStatus.APPLIED  # type: ignore[union-attr]


def test_a_failed_capture_event_waits_while_a_capture_without_its_reference_is_in_flight(
        service: PaymentService, app: FakePayApp) -> None:
    """Its answer may name the capture the event failed: the event waits for it, then applies."""
    from tests.ledger.support import in_thread

    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("hold", path="/captures$", method="POST"))
    thread, out = in_thread(lambda: service.capture(payment.id, eur("30.00"), final=False))
    try:
        assert app.wait_until_held(1)
        headers, body = app.event("evt_declined", EventKind.FAILED, "cap_other",
                                  references={"capture": "cap_other", "payment": payment.reference or ""})
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.DEFERRED
    finally:
        app.release_held()
        thread.join(30)
        app.clear_faults()
    assert service.get_payment(payment.id).captured == eur("30.00"), out
    assert service.ledger.get_event("fakepay", "evt_declined").status == EventStatus.APPLIED  # type: ignore[union-attr]


def test_a_redelivery_applies_an_event_stored_unmatched_whose_payment_is_known_since(
        service: PaymentService, app: FakePayApp) -> None:
    """Stored unmatched while the unit indexing its payment's reference was uncommitted (that
    unit's look for waiting events ran before the event was committed): the provider's
    redelivery, or an operator's resend, applies it rather than answer "duplicate" and leave it
    to the next match_unmatched."""
    from tests.ledger.support import store_unmatched

    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    headers, body = app.event("evt_raced", EventKind.CAPTURED, "cap_beside", amount=2_000,
                              references={"payment": payment.reference or ""})
    store_unmatched(service, "fakepay", headers, body)
    receipt = service.receive_webhook("fakepay", headers, body)
    assert (receipt.status, receipt.payment_id) == ("duplicate", payment.id)
    assert service.get_payment(payment.id).captured == eur("20.00")
    assert service.ledger.get_event("fakepay", "evt_raced").status == EventStatus.APPLIED  # type: ignore[union-attr]
    assert service.receive_webhook("fakepay", headers, body).status == "duplicate"
    assert service.get_payment(payment.id).captured == eur("20.00")


def test_an_event_of_no_effect_leaves_the_payment_row_as_it_was(service: PaymentService, app: FakePayApp) -> None:
    """An event that changes nothing (one of the several a provider sends about each payment, an
    approval, an authorization reporting nothing held, or one in another currency) is stored
    applied, and the payment row is not written: its `updated_at` stays, so a reconciliation that
    read the provider meanwhile finds the payment as it read it and need not read again."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    ref = payment.reference or ""
    events = [("evt_other", "other", {}), ("evt_approved", EventKind.APPROVED, {}),
              ("evt_nothing", EventKind.AUTHORIZED, {"amount": 0}),
              ("evt_usd", EventKind.CAPTURED, {"amount": 500, "currency": "USD"})]
    for event_id, kind, extra in events:
        headers, body = app.event(event_id, kind, ref, references={"payment": ref}, **extra)
        stored = service.receive_webhook("fakepay", headers, body)
        assert (stored.status, stored.payment_id) == (EventStatus.APPLIED, payment.id), (event_id, stored)
        assert service.get_payment(payment.id) == payment, event_id
    headers, body = app.event("evt_cap", EventKind.CAPTURED, "cap_beside", amount=2_500, references={"payment": ref})
    service.receive_webhook("fakepay", headers, body)  # one that does change it still writes it
    captured = service.get_payment(payment.id)
    assert captured.captured == eur("25.00") and captured.updated_at > payment.updated_at


@pytest.mark.parametrize(("kind", "amount", "total"), [(EventKind.REFUNDED, -500, None), (EventKind.CAPTURED, -500, None),
                                                       (EventKind.CAPTURED, None, -500)])
def test_a_verified_event_with_a_negative_amount_is_refused_not_applied(
    service: PaymentService, app: FakePayApp, ledger: Ledger, kind: str, amount: int | None, total: int | None,
) -> None:
    """An event reports money moved or held, never less than none: a refund of -5.00 applied
    would take 5.00 off what the ledger counts refunded, so it would claim more than the
    provider holds."""
    from paywire.web import handle_webhook

    payment = service.sale("fakepay", eur("30.00"), source="tok_ok")
    headers, body = app.event(f"evt_negative_{kind}_{amount}", kind, payment.reference or "", amount=amount,
                              total=total, references={"refund": "re_negative", "capture": "cap_negative"})
    status, _, text = handle_webhook(service, "fakepay", headers, body)
    assert (status, json.loads(text)) == (400, {"error": "unstorable_event"})
    assert ledger.list_events() == []
    paid = service.get_payment(payment.id)
    assert (paid.captured, paid.refunded) == (eur("30.00"), eur("0.00"))
