"""GraphQL error shapes Braintree can answer with, read as the official SDK reads them: every
error counts, not only the first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import paywire_braintree
from paywire import Gateway, InvalidRequest, Money, PaymentService, Plugins, Retry, SQLiteLedger
from paywire.testing.emulator import EmulatorServer
from paywire.testing.proxy import RewritingProxy
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def _errors(*classes: str) -> list[dict[str, Any]]:
    return [{"message": f"a {error_class.lower()} error", "extensions": {"errorClass": error_class}}
            for error_class in classes]


class _Refused(RewritingProxy):
    """Forwards every request to the emulator (which applies it) and answers each mutation with
    `errors` and its field null: the answer of a request Braintree refused, or failed on."""

    def __init__(self, upstream: str, errors: list[dict[str, Any]]) -> None:
        def rewrite(body: bytes, payload: Any) -> Any:
            if not json.loads(body)["query"].lstrip().startswith("mutation"):
                return payload
            return {"data": {next(iter(payload["data"])): None}, "errors": errors}

        super().__init__(upstream, rewrite)


@pytest.fixture
def refusing(sandbox: Sandbox, emulator: BraintreeEmulator, request: pytest.FixtureRequest,
             tmp_path: Path) -> Iterator[PaymentService]:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(emulator) as server:
        proxy = _Refused(server.url, request.param)
        try:
            with Gateway([sandbox.method("braintree", proxy.url)], plugins=plugins, retry=Retry.never()) as gateway:
                service = PaymentService(gateway, SQLiteLedger(str(tmp_path / "ledger.db")))
                yield service
                service.ledger.close()
        finally:
            proxy.close()


@pytest.mark.parametrize("refusing", [_errors("VALIDATION", "INTERNAL"), _errors("VALIDATION", "SERVICE_AVAILABILITY"),
                                      _errors("AUTHORIZATION", "INTERNAL"), _errors("NOT_FOUND", "INTERNAL"),
                                      [*_errors("VALIDATION"), {"message": "an error of no class"}]],
                         indirect=True, ids=["validation+internal", "validation+availability",
                                             "authorization+internal", "not_found+internal",
                                             "validation+unclassified"])
def test_a_charge_answered_with_an_internal_error_after_another_is_never_recorded_failed(
        refusing: PaymentService, emulator: BraintreeEmulator) -> None:
    """An INTERNAL or SERVICE_AVAILABILITY error says nothing of whether the charge was made,
    wherever it stands among the errors (the SDK raises ServerError for it whatever precedes it):
    the sale Braintree made is left unknown, and reconcile finds it, never recorded failed."""
    with pytest.raises(Exception) as raised:
        refusing.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-1",
                      idempotency_key="errors-after-another")
    assert not isinstance(raised.value, InvalidRequest)
    (made,) = emulator.transactions.values()
    (txn,) = refusing.list_transactions()
    assert txn.status == "unknown", f"Braintree made {made.id}: never recorded failed"


@pytest.mark.parametrize("refusing", [_errors("VALIDATION", "VALIDATION")], indirect=True, ids=["validation"])
def test_validation_errors_alone_are_a_refusal(refusing: PaymentService) -> None:
    with pytest.raises(InvalidRequest):
        refusing.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="E-2",
                      idempotency_key="validation-only")
    (txn,) = refusing.list_transactions()
    assert txn.status == "failed"
