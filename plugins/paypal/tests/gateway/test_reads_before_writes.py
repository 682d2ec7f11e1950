"""A read that comes before a write (the order `complete` reads, the vault token a charge reads)
whose answer is lost leaves the write unsent: on a first attempt that is a retryable failure,
nothing paid; when the write was sent before under the key, it stays an unknown outcome."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, ProviderUnavailable, TransportError
from paywire.testing.emulator import Fault

from .conftest import RETURN_URL

ORDER_READ = r"^/v2/checkout/orders/[^/]+$"
TOKEN_READ = r"^/v3/vault/payment-tokens/[^/]+$"
EUR10 = Money.of("10.00", "EUR")
LOST = [Fault(kind="status", status=503, method="GET"), Fault(kind="drop_after", method="GET")]


def _statuses(service: PaymentService, payment_id: str) -> list[tuple[str, str]]:
    return [(t.kind, t.status) for t in service.list_transactions(payment_id)]


def _approved(paypal, service: PaymentService):
    payment = service.authorize("paypal", EUR10, source="paypal", return_url=RETURN_URL,
                                idempotency_key=paypal.key())
    paypal.app.approve(payment.references["payment"])
    return payment


@pytest.mark.parametrize("lost", LOST, ids=["503", "dropped"])
def test_a_completion_whose_order_read_is_lost_sent_nothing_and_is_a_retryable_failure(paypal, service, lost):
    payment = _approved(paypal, service)
    paypal.app.inject(Fault(kind=lost.kind, status=lost.status, method="GET", path=ORDER_READ))
    with pytest.raises((ProviderUnavailable, TransportError)) as raised:
        service.complete(payment.id)
    assert not isinstance(raised.value, OutcomeUnknown) and raised.value.retryable
    assert raised.value.may_have_been_sent is False
    assert paypal.calls("/authorize") == 0 and not paypal.app.authorizations
    assert _statuses(service, payment.id)[-1] == ("complete", "failed")
    assert service.get_payment(payment.id).state == "action_required"
    # The buyer's approval still stands: completing again authorizes, once.
    assert service.complete(payment.id).state == "authorized"
    assert len(paypal.app.authorizations) == 1


def test_a_completion_resent_after_a_lost_answer_stays_unknown_when_its_read_is_lost(paypal, service):
    payment = _approved(paypal, service)
    paypal.app.inject(Fault(kind="drop_after", path="/authorize$"))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id)
    assert len(paypal.app.authorizations) == 1  # the first attempt authorized
    paypal.app.inject(Fault(kind="status", status=503, method="GET", path=ORDER_READ))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id)
    assert _statuses(service, payment.id)[-1] == ("complete", "unknown")
    assert service.complete(payment.id).state == "authorized"
    assert len(paypal.app.authorizations) == 1


@pytest.mark.parametrize("lost", LOST, ids=["503", "dropped"])
def test_a_vaulted_charge_whose_token_read_is_lost_sent_no_order_and_is_a_retryable_failure(paypal, service, lost):
    paypal.app.inject(Fault(kind=lost.kind, status=lost.status, method="GET", path=TOKEN_READ))
    with pytest.raises((ProviderUnavailable, TransportError)) as raised:
        service.sale("paypal", EUR10, source=paypal.app.vault_card(), idempotency_key=paypal.key())
    error = raised.value
    assert not isinstance(error, OutcomeUnknown) and error.retryable and error.may_have_been_sent is False
    assert not paypal.app.orders and paypal.calls("/v2/checkout/orders") == 0
    transaction = service.get_transaction(error.transaction_id)
    assert (transaction.kind, transaction.status) == ("sale", "failed")
    # Sent again with its key, it charges once.
    assert service.retry(transaction.id).state == "captured"
    assert len(paypal.app.orders) == 1 and len(paypal.app.captures) == 1
