"""Currencies at Braintree: its amounts carry no currency (the merchant account's, or the
transaction's, is taken), so an amount in any other currency is refused before anything is sent,
never charged as the same digits in another currency."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

import paywire_braintree
from paywire import Gateway, InvalidRequest, Money, Order, OutcomeUnknown, Plugins, Retry, Subject, hookimpl
from paywire.http.transfer import Transfer
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox
from paywire_braintree.amounts import from_braintree
from paywire_braintree.emulator import BraintreeEmulator, merchant_account


def _writes(emulator: BraintreeEmulator) -> int:
    return len(emulator.calls)


@pytest.fixture
def mapped(sandbox: Sandbox) -> Iterator[Gateway]:
    """A gateway with a merchant account for EUR only; the emulator's default account is in USD."""
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(sandbox.app) as server:
        method = sandbox.method("braintree", server.url,
                                options={"merchant_accounts": {"EUR": merchant_account("EUR")}, "custom_fields": []})
        with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway:
            yield gateway


def test_a_currency_without_its_merchant_account_is_refused_not_charged_in_the_default_accounts(
    mapped: Gateway, emulator: BraintreeEmulator
) -> None:
    """1000 JPY sent without a JPY merchant account would be authorized as 1000.00 USD."""
    before = len(emulator.transactions)
    with pytest.raises(InvalidRequest) as refused:
        mapped.execute("braintree", "authorize", Subject(amount=Money.of("1000", "JPY"), source="fake-valid-nonce",
                                                         order=Order(id="order-jpy"), idempotency_key="jpy-auth"))
    assert (refused.value.code, refused.value.param) == ("currency_not_supported", "currency")
    assert "merchant_accounts" in str(refused.value) and not refused.value.may_have_been_sent
    assert len(emulator.transactions) == before
    euros = mapped.execute("braintree", "authorize", Subject(amount=Money.of("10.00", "EUR"),
                                                             source="fake-valid-nonce", idempotency_key="eur-auth"))
    assert euros.amount == Money.of("10.00", "EUR")


@pytest.mark.parametrize("command", ["capture", "refund"])
def test_a_capture_or_refund_in_another_currency_than_its_transaction_is_refused_before_sending(
    gateway: Gateway, emulator: BraintreeEmulator, command: str
) -> None:
    """5.00 USD captured on a EUR authorization would capture 5.00 EUR."""
    payment = "authorize" if command == "capture" else "sale"
    paid = gateway.execute("braintree", payment, Subject(amount=Money.of("10.00", "EUR"), source="fake-valid-nonce",
                                                         order=Order(id=f"order-{command}"),
                                                         idempotency_key=f"{command}-pay"))
    writes = _writes(emulator)
    with pytest.raises(InvalidRequest) as refused:
        gateway.execute("braintree", command, Subject(reference=paid.reference, amount=Money.of("5.00", "USD"),
                                                      final=False, idempotency_key=f"{command}-usd"))
    assert (refused.value.code, refused.value.param) == ("currency_mismatch", "currency")
    assert "EUR" in str(refused.value) and not refused.value.may_have_been_sent
    assert _writes(emulator) == writes + 1  # the read of the transaction, no write
    fetched = gateway.execute("braintree", "fetch", Subject(reference=paid.reference))
    assert fetched.refunded == Money.zero("EUR")
    assert fetched.captured == (Money.zero("EUR") if command == "capture" else Money.of("10.00", "EUR"))


@pytest.mark.parametrize("value", [12345678901234567.89, 10.5, 10, None, True])
def test_an_answer_amount_that_is_not_a_decimal_string_is_refused_not_rounded(value: object) -> None:
    """Braintree's Amount is a string; a JSON number has been through a float (12345678901234567.89
    reads as 12345678901234568), so it is refused rather than taken for money."""
    with pytest.raises(ValueError, match="Braintree answered"):
        from_braintree({"value": value, "currencyCode": "USD"})
    assert from_braintree({"value": "12345678901234567.89", "currencyCode": "USD"}).minor == 1234567890123456789


class CaptureAmountAnswered:
    """The partial capture's answer carries `value` as its amount (a JSON number, a grouped
    string) or, with `value` None, no amount at all: what a proxy or a changed API may give."""

    def __init__(self, value: object) -> None:
        self.value = value

    @hookimpl(wrapper=True)
    def send_transfer(self, transfer: Transfer) -> Generator[None, Any, Any]:
        response: Any = yield
        if b"partialCaptureTransaction" not in (transfer.body or b"") or response.status != 200:
            return response
        data = json.loads(response.body)
        capture = data["data"]["partialCaptureTransaction"]["capture"]
        if self.value is None:
            del capture["amount"]
        else:
            capture["amount"]["value"] = self.value
        return attrs.evolve(response, body=json.dumps(data).encode(), data=None)


@pytest.mark.parametrize("value", [10.5, "1,000.00", None, "5e0", " 5.00", "\u0665.\u0660\u0660", "-5.00"])
def test_a_capture_answered_with_an_amount_paywire_cannot_read_is_an_unknown_outcome(
    gateway: Gateway, emulator: BraintreeEmulator, value: object
) -> None:
    """Braintree made the capture: a caller of Gateway.execute must be told to reconcile
    (OutcomeUnknown), not get the ValueError or KeyError of reading the answer."""
    paid = gateway.execute("braintree", "authorize", Subject(amount=Money.of("20.00", "EUR"), source="fake-valid-nonce",
                                                             idempotency_key="unread-auth"))
    gateway.plugins.register(CaptureAmountAnswered(value), name="capture-amount-answered")
    with pytest.raises(OutcomeUnknown) as unknown:
        gateway.execute("braintree", "capture", Subject(reference=paid.reference, amount=Money.of("5.00", "EUR"),
                                                        final=False, idempotency_key="unread-capture"))
    assert unknown.value.may_have_been_sent and unknown.value.provider == "braintree"
    assert "cannot be read" in str(unknown.value)
    assert [t.amount for t in emulator.transactions.values()] == [Decimal("20.00"), Decimal("5.00")]  # it was made


def test_a_payment_the_default_merchant_account_took_in_another_currency_is_not_recorded_as_succeeded(
    sandbox: Sandbox, tmp_path: object
) -> None:
    """Without merchant_accounts Braintree takes the default account's currency: 1000 JPY becomes an
    authorization of 1000.00 USD. The ledger must not record it as 1000 JPY authorized."""
    from pathlib import Path

    from paywire import OutcomeUnknown, PaymentService, SQLiteLedger, TransactionStatus

    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(sandbox.app) as server:
        method = sandbox.method("braintree", server.url, options={"custom_fields": []})
        with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway:
            service = PaymentService(gateway, ledger=SQLiteLedger(str(Path(str(tmp_path)) / "ledger.db")))
            with pytest.raises(OutcomeUnknown) as unknown:
                service.authorize("braintree", Money.of("1000", "JPY"), source="fake-valid-nonce", order_id="A-1",
                                  idempotency_key="jpy-auth")
            assert unknown.value.code == "currency_mismatch" and "merchant_accounts" in str(unknown.value)
            assert [t.status for t in service.ledger.list_transactions()] == [TransactionStatus.UNKNOWN]


def test_reconcile_does_not_record_a_payment_braintree_took_in_another_currency_as_authorized(
    sandbox: Sandbox, tmp_path: object
) -> None:
    """The unknown authorization above, reconciled: fetch finds Braintree's transaction by its key,
    authorized in USD. It is no authorization of 1000 JPY: it stays open for a person to look at,
    and the ledger claims nothing authorized."""
    from pathlib import Path

    from paywire import OutcomeUnknown, PaymentService, SQLiteLedger, TransactionStatus

    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(sandbox.app) as server:
        method = sandbox.method("braintree", server.url, options={"custom_fields": []})
        with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway, \
                SQLiteLedger(str(Path(str(tmp_path)) / "ledger.db")) as ledger:
            service = PaymentService(gateway, ledger=ledger)
            with pytest.raises(OutcomeUnknown) as unknown:
                service.authorize("braintree", Money.of("1000", "JPY"), source="fake-valid-nonce", order_id="A-2",
                                  idempotency_key="jpy-auth-2")
            report = service.reconcile()
            assert service.get_transaction(unknown.value.transaction_id or "").status == TransactionStatus.UNKNOWN
            assert [u.transaction_id for u in report.unresolved] == [unknown.value.transaction_id], report
            payment = service.get_payment(unknown.value.payment_id or "")
            assert payment.authorized == Money.zero("JPY") and payment.state != "authorized"


def _withdrawn_currency(transaction: Any) -> None:
    transaction.currency = "HRK"  # withdrawn in 2023: Money refuses it


def _negative_amount(transaction: Any) -> None:
    transaction.amount = -transaction.amount  # Braintree never writes one


@pytest.mark.parametrize("unreadable", [_withdrawn_currency, _negative_amount])
@pytest.mark.parametrize("command", ["authorize", "capture", "refund"])
def test_a_keyed_operation_found_unreadable_is_unknown_neither_refused_nor_a_conflict(
    gateway: Gateway, emulator: BraintreeEmulator, command: str, unreadable: Callable[[Any], None]
) -> None:
    """A retry under its key finds what an earlier attempt made at Braintree, here in a currency no
    longer in ISO 4217 (a legacy merchant account) or with an amount written as Braintree never
    writes one: Braintree holds it, so the outcome is unknown, never an `InvalidRequest` (which the
    payment service records as failed), a reused key (IdempotencyConflict) or a crash."""
    subject = Subject(amount=Money.of("10.00", "EUR"), source="fake-valid-nonce", order=Order(id=f"order-{command}"),
                      idempotency_key=f"{command}-pay")
    paid = gateway.execute("braintree", "sale" if command == "refund" else "authorize", subject)
    if command != "authorize":
        subject = Subject(reference=paid.reference, amount=Money.of("4.00", "EUR"), final=False,
                          idempotency_key=f"{command}-part")
        gateway.execute("braintree", command, subject)
    for transaction in emulator.transactions.values():
        unreadable(transaction)
    with pytest.raises(OutcomeUnknown) as unknown:
        gateway.execute("braintree", command, subject)
    assert unknown.value.may_have_been_sent and "cannot be read" in str(unknown.value)
