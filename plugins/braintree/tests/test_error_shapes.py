"""GraphQL error shapes Braintree can answer with, read as the official SDK reads them: every
error counts, not only the first."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from paywire import InvalidRequest, Money, PaymentService
from paywire.testing.proxy import RewritingProxy
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def _errors(*classes: str) -> list[dict[str, Any]]:
    return [{"message": f"a {error_class.lower()} error", "extensions": {"errorClass": error_class}}
            for error_class in classes]


class _Refused(RewritingProxy):
    """Forwards every request to the emulator (which applies it) and answers the mutation `field`,
    once armed, with `errors` and its field null: the answer of a request Braintree refused, or
    failed on."""

    def __init__(self, upstream: str) -> None:
        self.field: str | None = None
        self.errors: list[dict[str, Any]] = []

        def rewrite(body: bytes, payload: Any) -> Any:
            query = json.loads(body)["query"]
            if self.field is None or not query.lstrip().startswith("mutation") or f"{self.field}(" not in query:
                return payload
            self.field = None
            return {"data": {next(iter(payload["data"])): None}, "errors": self.errors}

        super().__init__(upstream, rewrite)


@pytest.fixture
def refusing(behind: Callable[[Callable[[str], _Refused]], tuple[PaymentService, _Refused]]) -> tuple[PaymentService, _Refused]:
    return behind(_Refused)


def _sale(service: PaymentService, emulator: BraintreeEmulator) -> str:
    return service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-1",
                        idempotency_key="errors-sale").id


def _capture(service: PaymentService, emulator: BraintreeEmulator) -> str:
    payment = service.authorize("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-2",
                                idempotency_key="errors-auth")
    return service.capture(payment.id, Money.of("5.00", EUR), final=False).id


def _refund(service: PaymentService, emulator: BraintreeEmulator) -> str:
    emulator.settlement = "batch"  # the sale waits for its batch, settled here: a refund of part of it
    payment = service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-3",
                           idempotency_key="errors-refunded-sale")
    emulator.settle(service.list_transactions(payment.id)[-1].provider_reference or "", "SETTLED")
    return service.refund(payment.id, Money.of("5.00", EUR)).id


_OPERATIONS: dict[str, tuple[str, Callable[[PaymentService, BraintreeEmulator], str]]] = {
    "sale": ("chargePaymentMethod", _sale),
    "capture": ("partialCaptureTransaction", _capture),
    "refund": ("refundTransaction", _refund),
}


@pytest.mark.parametrize("operation", list(_OPERATIONS))
@pytest.mark.parametrize("errors", [_errors("VALIDATION", "INTERNAL"), _errors("VALIDATION", "SERVICE_AVAILABILITY"),
                                    _errors("AUTHORIZATION", "INTERNAL"), _errors("NOT_FOUND", "INTERNAL"),
                                    [*_errors("VALIDATION"), {"message": "an error of no class"}]],
                         ids=["validation+internal", "validation+availability", "authorization+internal",
                              "not_found+internal", "validation+unclassified"])
def test_an_operation_answered_with_an_internal_error_after_another_is_never_recorded_failed(
        refusing: tuple[PaymentService, _Refused], emulator: BraintreeEmulator, operation: str,
        errors: list[dict[str, Any]]) -> None:
    """An INTERNAL or SERVICE_AVAILABILITY error says nothing of whether the operation was made,
    wherever it stands among the errors (the SDK raises ServerError for it whatever precedes it):
    what Braintree made is left unknown, never recorded failed, and reconcile finds it."""
    service, proxy = refusing
    field, run = _OPERATIONS[operation]
    proxy.field, proxy.errors = field, errors
    with pytest.raises(Exception) as raised:
        run(service, emulator)
    assert not isinstance(raised.value, InvalidRequest)
    txn = service.list_transactions()[-1]
    assert (txn.kind, txn.status) == (operation, "unknown"), "Braintree made it: never recorded failed"
    service.reconcile(payment_id=txn.payment_id)
    assert service.get_transaction(txn.id).status == "succeeded"


def test_validation_errors_alone_are_a_refusal(refusing: tuple[PaymentService, _Refused]) -> None:
    service, proxy = refusing
    proxy.field, proxy.errors = "chargePaymentMethod", _errors("VALIDATION", "VALIDATION")
    with pytest.raises(InvalidRequest):
        service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-4",
                     idempotency_key="validation-only")
    (txn,) = service.list_transactions()
    assert txn.status == "failed"
