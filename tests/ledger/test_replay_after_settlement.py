"""The stored outcome a replay gives is what the ledger now holds, after reconciliation or an
event settled an unknown (or accepted) transaction: a failure the provider decided is raised as
that failure (it did not take effect; a new request needs a new key), never as the
`OutcomeUnknown` its lost answer once was; a success returns the payment."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Declined, EventKind, Gateway, OutcomeUnknown, PaywireError, TransportError, hookimpl
from paywire.ledger import Ledger, Payment, TransactionStatus, open_ledger
from paywire.service import PaymentService, reconcile
from paywire.service.outcome import is_unknown
from paywire.testing.emulator import EmulatorServer, Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, eur, step_past_life, wait_until

S = TransactionStatus
FAILED_AT_PROVIDER = "failed_at_provider"  # the provider holds it failed: its key would get that again
NOT_APPLIED = "not_applied"  # the provider never got it (after its longest life): safe to send again
ANSWERED = (S.SUCCEEDED, S.ACTION_REQUIRED, S.ACCEPTED)


def _service(app: FakePayApp, url: str, ledger: Ledger, extra: list[object] | None = None) -> PaymentService:
    """Every answer read however loaded the machine: the lost requests are lost by a fault, and
    the one life a test needs passed is stepped past on the ledger's clock."""
    return PaymentService(make_gateway(url, extra=extra, **PATIENT), ledger, margin=0)


@pytest.fixture
def svc(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    service = _service(*fakepay, ledger)
    yield service
    service.gateway.close()


def _lost_authorize(svc: PaymentService, app: FakePayApp, key: str) -> tuple[str, str]:
    """An authorize FakePay holds undecided (`tok_pending`) whose answer was lost: its
    transaction id and FakePay's payment id."""
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.authorize("fakepay", eur("10.00"), source="tok_pending", idempotency_key=key)
    (made,) = [pid for pid, p in app.payments.items() if p["idempotency_key"] == key]
    return lost.value.transaction_id or "", made


def _assert_failed_as_recorded(error: PaywireError, svc: PaymentService, txn_id: str, code: str) -> None:
    txn = svc.get_transaction(txn_id)
    assert txn.status == S.FAILED
    assert not isinstance(error, OutcomeUnknown), f"the ledger holds {txn.id} failed, the replay raised {error!r}"
    assert not is_unknown(error) and error.may_have_been_sent is False
    assert (error.code, error.retryable, error.transaction_id) == (code, txn.retryable, txn.id)
    assert "did not take effect" in error.message and "new idempotency key" in error.message
    assert "may have acted" not in error.message


def test_an_unknown_authorize_the_provider_failed_is_replayed_as_failed(svc: PaymentService, app: FakePayApp) -> None:
    txn_id, made = _lost_authorize(svc, app, "auth-1")
    app.decide(made, succeed=False)
    assert [s.status for s in svc.reconcile().settled] == [S.FAILED]
    requests = list(app.calls)
    for replay in (lambda: svc.retry(txn_id),
                   lambda: svc.authorize("fakepay", eur("10.00"), source="tok_pending", idempotency_key="auth-1")):
        with pytest.raises(PaywireError) as replayed:
            replay()
        assert isinstance(replayed.value, Declined)
        _assert_failed_as_recorded(replayed.value, svc, txn_id, FAILED_AT_PROVIDER)
        assert replayed.value.reference == made  # what the refused request left, as the ledger holds it
    # Replayed from the ledger, never sent again: the payment FakePay holds is read first, once
    # per replay (the buyer may have paid what a declined request left, and no event came yet).
    assert list(app.calls) == [*requests, *[("GET", f"/v1/payments/{made}")] * 2]


def test_a_failure_settled_before_its_conclusion_was_recorded_is_replayed_as_failed(
        svc: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger written before settlements recorded their conclusion holds the lost answer's
    error on the failed transaction (its history cannot change): the replay still raises what the
    ledger concluded."""
    txn_id, made = _lost_authorize(svc, app, "auth-old")
    app.decide(made, succeed=False)
    with monkeypatch.context() as before:
        before.setattr(reconcile, "concluded", lambda *args, **kwargs: {})  # the lost answer's error kept
        svc.reconcile()
    assert svc.get_transaction(txn_id).error_type == "OutcomeUnknown"
    with pytest.raises(PaywireError) as replayed:
        svc.retry(txn_id)
    assert isinstance(replayed.value, Declined)
    _assert_failed_as_recorded(replayed.value, svc, txn_id, FAILED_AT_PROVIDER)


def test_an_unknown_capture_the_provider_failed_is_replayed_as_failed(svc: PaymentService, app: FakePayApp) -> None:
    payment = svc.authorize("fakepay", eur("10.00"), source="tok_async")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.capture(payment.id, eur("4.00"), idempotency_key="cap-1")
    (capture,) = app.payments[payment.reference or ""]["_captures"]
    app.decide(capture, succeed=False)
    assert [s.status for s in svc.reconcile().settled] == [S.FAILED]
    txn_id = lost.value.transaction_id or ""
    for replay in (lambda: svc.retry(txn_id), lambda: svc.capture(payment.id, eur("4.00"), idempotency_key="cap-1")):
        with pytest.raises(PaywireError) as replayed:
            replay()
        _assert_failed_as_recorded(replayed.value, svc, txn_id, FAILED_AT_PROVIDER)
    assert app.count("capture") == 0


def test_an_accepted_authorize_a_failure_event_settles_is_replayed_as_failed(svc: PaymentService,
                                                                              app: FakePayApp) -> None:
    txn_id, made = _lost_authorize(svc, app, "auth-2")
    assert [s.status for s in svc.reconcile().settled] == [S.ACCEPTED]  # FakePay is processing it
    headers, body = app.decide(made, succeed=False)
    assert svc.receive_webhook("fakepay", headers, body).status == "applied"
    with pytest.raises(PaywireError) as replayed:
        svc.retry(txn_id)
    _assert_failed_as_recorded(replayed.value, svc, txn_id, FAILED_AT_PROVIDER)
    assert replayed.value.reference == made


def test_an_unknown_authorize_settled_succeeded_is_replayed_as_the_payment(svc: PaymentService,
                                                                             app: FakePayApp) -> None:
    txn_id, made = _lost_authorize(svc, app, "auth-3")
    app.decide(made, succeed=True)
    assert [s.status for s in svc.reconcile().settled] == [S.SUCCEEDED]
    payment = svc.get_payment(svc.get_transaction(txn_id).payment_id or "")
    assert svc.retry(txn_id) == payment
    assert svc.authorize("fakepay", eur("10.00"), source="tok_pending", idempotency_key="auth-3") == payment
    txn = svc.get_transaction(txn_id)
    assert (txn.error_type, txn.error_code, txn.error_message) == (None, None, None)  # no lost answer's error
    assert app.count("authorize") == 1


def test_a_refused_completion_of_a_payment_voided_since_nothing_authorized_is_replayed_as_refused(
        service: PaymentService, app: FakePayApp) -> None:
    """A completion the provider refused (not a decline: the payment still waits for its buyer),
    then the provider voided the unpaid payment (its event): the same call again under its key
    raises the stored refusal. The payment was not paid since, and answering it would tell the
    shop the buyer completed it."""
    payment = service.authorize("fakepay", eur("10.00"), source="tok_3ds")
    app.inject(Fault(kind="status", status=400, method="POST", path="/complete$"))
    with pytest.raises(PaywireError) as refused:
        service.complete(payment.id, idempotency_key="back-1")
    assert service.get_payment(payment.id).state == "action_required"
    voided = app.event("evt_voided", EventKind.VOIDED, payment.reference or "")
    assert service.receive_webhook("fakepay", *voided).status == "applied"
    assert (service.get_payment(payment.id).state, service.get_payment(payment.id).authorized) == (
        "voided", eur("0.00"))
    with pytest.raises(PaywireError) as replayed:
        service.complete(payment.id, idempotency_key="back-1")
    assert type(replayed.value) is type(refused.value) and replayed.value.code == refused.value.code
    assert replayed.value.transaction_id == refused.value.transaction_id
    assert app.count("authorize") == 0


class ReconcileWhileLost:
    """Loses the authorize's answer after its life (stepped past) and letting reconciliation run
    meanwhile: the provider never got it, and the ledger concludes so before the call records."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.service: PaymentService | None = None
        self.monkeypatch = monkeypatch

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command == "authorize" and self.service is not None:
            service, self.service = self.service, None
            (txn,) = service.list_transactions(statuses=[S.PENDING])
            step_past_life(service, [txn.id], self.monkeypatch)
            assert [s.status for s in service.reconcile().settled] == [S.FAILED]
            raise OutcomeUnknown("connection reset while sending (injected)")
        return (yield)


def test_a_call_whose_transaction_reconcile_failed_meanwhile_raises_that_failure(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    lost = ReconcileWhileLost(monkeypatch)
    svc = _service(*fakepay, ledger, extra=[lost])
    try:
        lost.service = svc
        with pytest.raises(PaywireError) as raised:
            svc.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="auth-4")
        assert isinstance(raised.value, TransportError)
        _assert_failed_as_recorded(raised.value, svc, raised.value.transaction_id or "", NOT_APPLIED)
        payment = svc.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="auth-4")
        assert payment.authorized == eur("10.00")  # not applied: sent again under its key
    finally:
        svc.gateway.close()


# -- the invariant --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def patient_fakepay() -> Iterator[tuple[FakePayApp, Gateway]]:
    """FakePay and a gateway reading every answer however loaded the machine: the lost requests
    are lost by a fault, and no life is waited out."""
    app = FakePayApp()
    with EmulatorServer(app) as server, make_gateway(server.url, **PATIENT) as gateway:
        yield app, gateway


SCENARIOS = {
    "kind": st.sampled_from(["authorize", "sale", "capture", "refund"]),
    "succeed": st.booleans(),
    "by_event": st.booleans(),  # accepted by a first reconcile, then decided by the provider's event
    "via_retry": st.booleans(),
}


def _replay_agrees(svc: PaymentService, txn_id: str, replay: Callable[[], object]) -> None:
    """A replay returns the payment when the ledger holds the transaction answered, and raises a
    failure that is no unknown outcome when it holds it failed."""
    txn = svc.get_transaction(txn_id)
    try:
        result = replay()
    except PaywireError as error:
        assert txn.status == S.FAILED, f"{txn.id} is {txn.status}, and its replay raised {error!r}"
        assert not is_unknown(error) and not error.may_have_been_sent, f"{txn.id} is failed; replayed {error!r}"
        assert not error.retryable  # the provider decided: its key would get the same answer
    else:
        assert txn.status in ANSWERED, f"{txn.id} is {txn.status}, and its replay returned {result!r}"
        assert isinstance(result, Payment) and result == svc.get_payment(txn.payment_id or "")


KEYS = itertools.count()  # one emulator serves both backends: a key is never used twice on it


def test_a_replay_never_contradicts_the_ledger(patient_fakepay: tuple[FakePayApp, Gateway],
                                               fresh_ledger_url: Callable[[], str]) -> None:
    app, gateway = patient_fakepay
    current = settings()

    @settings(current, deadline=None, max_examples=min(current.max_examples, 30),
              suppress_health_check=[*current.suppress_health_check, HealthCheck.too_slow,
                                     HealthCheck.function_scoped_fixture])
    @given(**SCENARIOS)
    def run(kind: str, succeed: bool, by_event: bool, via_retry: bool) -> None:
        svc = PaymentService(gateway, partial(open_ledger, fresh_ledger_url())(), margin=0)
        try:
            key = f"replay-{next(KEYS)}"
            payment, lost = _lose(svc, app, kind, key)
            made = _decided_object(app, kind, payment, key)
            if by_event:
                assert [s.status for s in svc.reconcile().settled] == [S.ACCEPTED]
                headers, body = app.decide(made, succeed=succeed)
                assert svc.receive_webhook("fakepay", headers, body).status == "applied"
            else:
                app.decide(made, succeed=succeed)
                assert [s.status for s in svc.reconcile().settled] == [S.SUCCEEDED if succeed else S.FAILED]
            seen = list(app.calls)
            _replay_agrees(svc, lost, (lambda: svc.retry(lost)) if via_retry else _same_call(svc, kind, payment, key))
            # A settled transaction is replayed, never sent again; a failed first operation's
            # payment is read first (the buyer may have paid it since).
            read = [("GET", f"/v1/payments/{made}")] if kind in ("authorize", "sale") and not succeed else []
            assert list(app.calls) == [*seen, *read]
        finally:
            wait_until(lambda: app.inflight == 0, "the emulator is idle")
            svc.ledger.close()

    run()


def _lose(svc: PaymentService, app: FakePayApp, kind: str, key: str) -> tuple[Payment | None, str]:
    """The operation `kind`, its answer lost, left undecided at FakePay: its payment (a follow-up's)
    and its transaction id."""
    payment = None
    if kind in ("capture", "refund"):
        payment = svc.authorize("fakepay", eur("10.00"), source="tok_async")
        if kind == "refund":
            payment = svc.capture(payment.id, eur("10.00"))
            (capture,) = app.payments[payment.reference or ""]["_captures"]
            app.decide(capture)
            svc.reconcile(payment_id=payment.id)
    app.inject(Fault("drop_after", path={"authorize": "/v1/payments$", "sale": "/v1/payments$",
                                         "capture": "/captures$", "refund": "/refunds$"}[kind]))
    with pytest.raises(OutcomeUnknown) as lost:
        _same_call(svc, kind, payment, key)()
    return payment, lost.value.transaction_id or ""


def _same_call(svc: PaymentService, kind: str, payment: Payment | None, key: str) -> Callable[[], object]:
    if kind in ("authorize", "sale"):
        return partial(getattr(svc, kind), "fakepay", eur("10.00"), source="tok_pending", idempotency_key=key)
    assert payment is not None
    return partial(getattr(svc, kind), payment.id, eur("3.00"), idempotency_key=key)


def _decided_object(app: FakePayApp, kind: str, payment: Payment | None, key: str) -> str:
    """FakePay's id of what the lost operation made (undecided)."""
    objects = {"authorize": app.payments, "sale": app.payments, "capture": app.captures, "refund": app.refunds}[kind]
    (made,) = [oid for oid, obj in objects.items() if obj.get("idempotency_key") == key]
    return made
