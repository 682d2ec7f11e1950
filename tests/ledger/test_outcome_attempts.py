"""The outcome of an operation whose request was sent more than once (the retry policy's
attempts, all under one idempotency key): a later attempt's proof that *it* was not applied (a
connection never made, a rate limit, a 5xx the provider documents as not processed) says
nothing about an earlier attempt that may have taken effect, so the operation is unknown,
never failed, and reconciliation settles it from the provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from paywire import InvalidRequest, OutcomeUnknown, PaywireError, ProviderOperation, Retry, hookimpl
from paywire.ledger import Ledger, PaymentState, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, agree, eur

S = TransactionStatus


class ThenRefuse:
    """After the first attempt of `command` is lost (its request applied, the connection dropped),
    the provider refuses the next attempt before processing it, as `how` says."""

    def __init__(self, app: FakePayApp, command: str, how: str) -> None:
        self.app, self.command, self.how = app, command, how
        self.armed = True

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        try:
            response: Any = yield
        except PaywireError:
            if command == self.command and self.armed:
                self.armed = False
                if self.how == "not_processed":
                    self.app.not_processed()
                else:
                    self.app.inject(Fault("status", status=429, times=1))
            raise
        return response


@pytest.mark.parametrize("how", ["not_processed", "rate_limited"])
@pytest.mark.parametrize("kind", ["authorize", "capture"])
def test_a_refused_retry_of_an_attempt_that_took_effect_leaves_the_operation_unknown(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, kind: str, how: str,
) -> None:
    app, url = fakepay
    hook = ThenRefuse(app, kind, how)
    gateway = make_gateway(url, retry=Retry(total=1, backoff_factor=0, respect_retry_after=False),
                           extra=[hook], **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment_id = None
        if kind == "capture":
            payment_id = service.authorize("fakepay", eur("50.00"), source="tok_ok").id
        app.inject(Fault("drop_after", path="/captures$" if kind == "capture" else "/v1/payments$", method="POST"))
        with pytest.raises(PaywireError) as error:
            if kind == "capture":
                service.capture(payment_id or "", eur("20.00"), idempotency_key="cap-1")
            else:
                service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="auth-1")
        assert not hook.armed, "the second attempt was not refused as arranged"
        assert app.count(kind) == 1  # the first attempt took effect
        txn = service.get_transaction(error.value.transaction_id or "")
        assert txn.status == S.UNKNOWN, (txn.status, txn.error_type)
        assert isinstance(error.value, OutcomeUnknown), f"{error.value!r}"
        payment = service.get_payment(txn.payment_id or "")
        assert payment.state != PaymentState.FAILED

        report = service.reconcile()
        assert [(s.transaction_id, s.status) for s in report.settled] == [(txn.id, S.SUCCEEDED)]
        agree(service, app, txn.payment_id or "")
    finally:
        gateway.close()



class UnreadableAnswer:
    """A plugin's `handle_response` that cannot read the provider's success answer for `command`."""

    def __init__(self, command: str) -> None:
        self.command = command

    @hookimpl
    def handle_response(self, command: str, result: Any) -> None:
        if command == self.command:
            raise InvalidRequest(f"cannot read the {command} answer", code="unreadable_answer")


class MisspeltStatus:
    """A plugin whose answer handling builds a result with a status paywire does not know, as a
    handler returning `{"status": "pending"}` does: it once read as a success, and the ledger
    recorded money moved on the plugin's word. The result is refused where it is built."""

    def __init__(self, command: str) -> None:
        self.command = command

    @hookimpl
    def handle_response(self, command: str, result: Any) -> None:
        if command == self.command:
            attrs.evolve(result, status="pending")


@pytest.mark.parametrize(("plugin", "said"), [(UnreadableAnswer, "cannot read the"),
                                              (MisspeltStatus, "status is 'pending'; it must be one of")])
@pytest.mark.parametrize("kind", ["authorize", "capture"])
def test_a_success_answer_a_plugin_hook_cannot_read_is_unknown_never_failed(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, kind: str, plugin: type, said: str,
) -> None:
    """The provider answered 2xx: it applied the request. A plugin failing to read the answer, or
    building a result paywire cannot read, is no evidence that it did not, nor that it did: the
    operation is unknown and reconciliation settles it."""
    app, url = fakepay
    gateway = make_gateway(url, extra=[plugin(kind)], **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment_id = service.authorize("fakepay", eur("50.00"), source="tok_ok").id if kind == "capture" else None
        with pytest.raises(OutcomeUnknown) as lost:
            if kind == "capture":
                service.capture(payment_id or "", eur("20.00"), idempotency_key="cap-1")
            else:
                service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="auth-1")
        assert said in str(lost.value) and app.count(kind) == 1
        txn = service.get_transaction(lost.value.transaction_id or "")
        assert txn.status == S.UNKNOWN, (txn.status, txn.error_type)
        assert service.get_payment(txn.payment_id or "").state != PaymentState.FAILED

        report = service.reconcile()
        assert [(s.transaction_id, s.status) for s in report.settled] == [(txn.id, S.SUCCEEDED)]
        agree(service, app, txn.payment_id or "")
    finally:
        gateway.close()


@pytest.mark.parametrize("how", ["not_processed", "rate_limited"])
@pytest.mark.parametrize("resend", ["retry", "same_call"])
def test_a_resend_the_provider_refuses_before_processing_leaves_a_lost_operation_unknown(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, how: str, resend: str,
) -> None:
    """The first send of a capture took effect and its answer was lost (unknown). Sending it again
    (retry(), or the same call with its key) meets a refusal that proves only that the resend was
    not applied: the capture stays unknown, never failed, and reconciliation settles it."""
    app, url = fakepay
    gateway = make_gateway(url, **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment_id = service.authorize("fakepay", eur("50.00"), source="tok_ok").id
        app.inject(Fault("drop_after", path="/captures$", method="POST"))
        with pytest.raises(OutcomeUnknown) as lost:
            service.capture(payment_id, eur("20.00"), idempotency_key="cap-1")
        assert app.count("capture") == 1
        if how == "not_processed":
            app.not_processed()
        else:
            app.inject(Fault("status", status=429, times=1))
        with pytest.raises(PaywireError) as refused:
            if resend == "retry":
                service.retry(lost.value.transaction_id or "")
            else:
                service.capture(payment_id, eur("20.00"), idempotency_key="cap-1")
        assert isinstance(refused.value, OutcomeUnknown), f"{refused.value!r}"
        txn = service.get_transaction(lost.value.transaction_id or "")
        assert txn.status == S.UNKNOWN, (txn.status, txn.error_type)

        report = service.reconcile()
        assert [(s.transaction_id, s.status) for s in report.settled] == [(txn.id, S.SUCCEEDED)]
        agree(service, app, payment_id)
    finally:
        gateway.close()


@pytest.mark.parametrize("field", ["kind", "status"])
def test_a_provider_operation_paywire_cannot_read_is_refused_where_it_is_built(field: str) -> None:
    """A fetch listing a capture "pending" (for accepted) or a "charge" would be matched to lost
    requests as if it were one paywire knows; the plugin's mistake is named where it is made."""
    fields: dict[str, Any] = {"kind": "capture", "reference": "cap_1", "amount": eur("5.00"), field: "pending"}
    with pytest.raises(ValueError, match=f"ProviderOperation.{field} is 'pending'; it must be one of"):
        ProviderOperation(**fields)


class SeesPayment:
    """Reads the payment's state from the ledger while an authorize's request is being sent."""

    def __init__(self) -> None:
        self.service: PaymentService | None = None
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command == "authorize" and self.service is not None:
            (payment,) = self.service.list_payments()
            self.seen.append(payment.state)
        return (yield)


@pytest.mark.parametrize("source", ["tok_ok", "tok_3ds"])
def test_a_first_operation_sent_again_after_a_retryable_failure_leaves_its_payment_pending_not_failed(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, source: str,
) -> None:
    """The authorize was refused before processing (retryable: its payment failed until a retry
    under its key revives it); the retry's answer is lost, and FakePay holds what it made. While
    the retry is in flight and once its outcome is unknown the payment is pending, never failed,
    a final state telling the shop the buyer's money is not coming; reconciliation then finds
    it authorized, or waiting for the buyer, who completes it."""
    app, url = fakepay
    sees = SeesPayment()
    gateway = make_gateway(url, extra=[sees], **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    call = {"source": source, "return_url": "https://shop.example/back", "idempotency_key": "order-7-auth"}
    try:
        app.not_processed()
        with pytest.raises(PaywireError) as refused:
            service.authorize("fakepay", eur("10.00"), **call)
        assert refused.value.retryable
        payment_id = refused.value.payment_id or ""
        assert service.get_payment(payment_id).state == PaymentState.FAILED
        sees.service = service
        app.inject(Fault("drop_after", path="/v1/payments$"))
        with pytest.raises(OutcomeUnknown):
            service.authorize("fakepay", eur("10.00"), **call)
        app.clear_faults()
        assert sees.seen == [PaymentState.PENDING]
        assert service.get_payment(payment_id).state == PaymentState.PENDING
        report = service.reconcile(payment_id=payment_id)
        waits = source == "tok_3ds"
        assert [s.status for s in report.settled] == [S.ACTION_REQUIRED if waits else S.SUCCEEDED]
        payment = service.get_payment(payment_id)
        if waits:
            assert payment.state == PaymentState.ACTION_REQUIRED and payment.action is not None
            assert service.authorize("fakepay", eur("10.00"), **call).state == PaymentState.ACTION_REQUIRED
            payment = service.complete(payment_id)
        assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("10.00"))
        agree(service, app, payment_id)
    finally:
        gateway.close()
