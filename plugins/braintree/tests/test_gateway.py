"""Every command and error class of the Braintree gateway against its emulator over loopback HTTP
and HTTPS (trustme): authorize, sale, partial and whole captures, void, refunds, fetch (by
reference, and by key after a lost answer), vault and vaulted charges, Braintree's declines,
rejections, validation, authentication and availability errors, and lost answers."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import (
    AuthenticationError,
    Customer,
    Declined,
    Gateway,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    Order,
    OutcomeUnknown,
    PaywireError,
    ProviderState,
    ProviderUnavailable,
    RateLimited,
    Response,
    Result,
    Retry,
    StateError,
    Subject,
    hookimpl,
)
from paywire.service.outcome import is_unknown
from paywire.testing.emulator import Fault
from paywire.testing.proxy import RewritingProxy
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def authorize(gateway: Gateway, amount: str = "100.00", *, key: str = "order-1-auth", sale: bool = False,
              source: str = "fake-valid-nonce", currency: str = EUR, **fields: object) -> Subject:
    return Subject(amount=Money.of(amount, currency), source=source, order=Order(id=f"order-{key}"),
                   idempotency_key=key, **fields)  # type: ignore[arg-type]


def run(gateway: Gateway, command: str, subject: Subject):  # type: ignore[no-untyped-def]
    return gateway.execute("braintree", command, subject)


def test_authorize_two_partial_captures_and_refunds_add_up_at_braintree(gateway: Gateway) -> None:
    auth = run(gateway, "authorize", authorize(gateway))
    assert (auth.status, auth.state, auth.amount) == ("succeeded", ProviderState.AUTHORIZED, Money.of("100.00", EUR))
    first = run(gateway, "capture", Subject(reference=auth.reference, amount=Money.of("30.00", EUR),
                                            final=False, idempotency_key="cap-1"))
    second = run(gateway, "capture", Subject(reference=auth.reference, amount=Money.of("50.00", EUR),
                                             final=True, idempotency_key="cap-2"))
    refund = run(gateway, "refund", Subject(reference=second.reference, amount=Money.of("20.00", EUR),
                                            idempotency_key="ref-1"))
    assert first.reference != second.reference and refund.references["capture"] == second.reference
    fetched = run(gateway, "fetch", Subject(reference=auth.reference))
    assert (fetched.authorized, fetched.captured, fetched.refunded, fetched.state) == (
        Money.of("100.00", EUR), Money.of("80.00", EUR), Money.of("20.00", EUR), ProviderState.PARTIALLY_REFUNDED)
    assert sorted((op.kind, op.idempotency_key, op.amount.minor) for op in fetched.operations) == [
        ("capture", "cap-1", 3000), ("capture", "cap-2", 5000), ("refund", "ref-1", 2000)]
    with pytest.raises(InvalidRequest) as refused:
        run(gateway, "capture", Subject(reference=auth.reference, amount=Money.of("1.00", EUR), idempotency_key="c3"))
    assert refused.value.code == "91507" and not refused.value.retryable


def test_a_whole_capture_without_a_key_captures_the_authorization_itself(gateway: Gateway) -> None:
    auth = run(gateway, "authorize", authorize(gateway, "12.50"))
    captured = run(gateway, "capture", Subject(reference=auth.reference))
    assert (captured.reference, captured.amount) == (auth.reference, Money.of("12.50", EUR))
    run(gateway, "refund", Subject(reference=captured.reference, idempotency_key="whole-refund"))
    assert run(gateway, "fetch", Subject(reference=auth.reference)).state == ProviderState.REFUNDED


def test_a_lost_whole_capture_with_a_key_is_found_by_its_retry_not_refused(
    gateway: Gateway, emulator: BraintreeEmulator
) -> None:
    auth = run(gateway, "authorize", authorize(gateway, "12.50", key="whole-keyed-auth"))
    emulator.inject(Fault(kind="drop_after", path="capture"))
    subject = Subject(reference=auth.reference, idempotency_key="whole-keyed-capture")
    with pytest.raises(OutcomeUnknown):  # Braintree captured it; the answer was lost
        run(gateway, "capture", subject)
    captured = run(gateway, "capture", subject)  # the retry under its key finds that capture
    assert captured.amount == Money.of("12.50", EUR)
    fetched = run(gateway, "fetch", Subject(reference=auth.reference))
    assert (fetched.state, fetched.captured) == (ProviderState.CAPTURED, Money.of("12.50", EUR))


def test_a_sale_in_a_zero_and_a_three_decimal_currency_reaches_braintree_exactly(gateway: Gateway) -> None:
    for amount, currency in (("1999", "JPY"), ("12.345", "KWD")):
        sale = run(gateway, "sale", authorize(gateway, amount, key=f"sale-{currency}", sale=True, currency=currency))
        assert (sale.state, sale.amount) == (ProviderState.CAPTURED, Money.of(amount, currency))
        assert run(gateway, "fetch", Subject(reference=sale.reference)).captured == Money.of(amount, currency)


def test_a_void_releases_the_authorization_once_and_is_refused_after_a_capture(
    gateway: Gateway, emulator: BraintreeEmulator
) -> None:
    auth = run(gateway, "authorize", authorize(gateway))
    voided = run(gateway, "void", Subject(reference=auth.reference, idempotency_key="void-1"))
    assert voided.state == ProviderState.VOIDED
    assert run(gateway, "void", Subject(reference=auth.reference, idempotency_key="void-1")).state == ProviderState.VOIDED
    with pytest.raises(StateError):
        run(gateway, "void", Subject(reference=auth.reference, idempotency_key="void-2"))
    sale = run(gateway, "sale", authorize(gateway, key="sale-void", sale=True))
    calls = len(emulator.calls)
    with pytest.raises(StateError):
        run(gateway, "void", Subject(reference=sale.reference, idempotency_key="void-3"))
    assert len(emulator.calls) == calls + 1, "only the read: nothing was reversed (reversing would refund it)"
    assert run(gateway, "fetch", Subject(reference=sale.reference)).captured == Money.of("100.00", EUR)


@pytest.mark.parametrize(("source", "amount", "code"), [
    ("fake-processor-declined-visa-nonce", "10.00", "2000"),
    ("fake-valid-nonce", "2001.00", "2001"),
    ("fake-valid-nonce", "3000.00", "3000"),
    ("fake-gateway-rejected-fraud-valid-nonce", "10.00", "fraud"),
])
def test_declines_rejections_and_processor_failures_are_declined_with_braintrees_code(
    gateway: Gateway, source: str, amount: str, code: str
) -> None:
    with pytest.raises(Declined) as declined:
        run(gateway, "authorize", authorize(gateway, amount, source=source))
    assert (declined.value.code, declined.value.decline_code, declined.value.retryable) == (code, code, False)


@pytest.mark.parametrize(("source", "code"), [("fake-luhn-invalid-nonce", "81715"), ("fake-consumed-nonce", "93107"),
                                              ("not-a-nonce", "91565")])
def test_a_bad_payment_method_is_an_invalid_request_with_braintrees_legacy_code(
    gateway: Gateway, source: str, code: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        run(gateway, "authorize", authorize(gateway, source=source))
    assert refused.value.code == code and not refused.value.retryable


def test_an_unknown_transaction_is_not_found(gateway: Gateway) -> None:
    with pytest.raises(InvalidRequest) as refused:
        run(gateway, "refund", Subject(reference="dHJhbnNhY3Rpb25fbm9uZQ", idempotency_key="r"))
    assert refused.value.code == "NOT_FOUND"
    assert run(gateway, "fetch", Subject(reference="dHJhbnNhY3Rpb25fbm9uZQ")).state == ProviderState.NOT_FOUND


def test_the_same_key_with_another_amount_is_a_conflict_and_the_same_request_the_same_payment(gateway: Gateway) -> None:
    first = run(gateway, "authorize", authorize(gateway, key="same-key"))
    assert run(gateway, "authorize", authorize(gateway, key="same-key")).reference == first.reference
    with pytest.raises(IdempotencyConflict):
        run(gateway, "authorize", authorize(gateway, "99.00", key="same-key"))


def test_a_lost_authorization_is_found_by_its_order_and_key(gateway: Gateway, emulator: BraintreeEmulator) -> None:
    emulator.inject(Fault(kind="drop_after", path="authorizePaymentMethod"))
    subject = authorize(gateway, key="lost-auth")
    with pytest.raises(OutcomeUnknown):
        run(gateway, "authorize", subject)
    found = run(gateway, "fetch", Subject(idempotency_key="lost-auth", order=subject.order))
    assert (found.state, found.authorized) == (ProviderState.AUTHORIZED, Money.of("100.00", EUR))
    assert run(gateway, "authorize", subject).reference == found.reference, "the retry found it: one authorization"
    assert run(gateway, "fetch", Subject(idempotency_key="never-sent", order=Order(id="o"))).state == ProviderState.NOT_FOUND


def test_a_5xx_after_the_charge_is_unknown_and_the_retry_charges_once(
    gateway: Gateway, emulator: BraintreeEmulator
) -> None:
    emulator.inject(Fault(kind="status_after", status=502, path="chargePaymentMethod"))
    subject = authorize(gateway, key="charge-502", sale=True)
    with pytest.raises(ProviderUnavailable) as unknown:
        run(gateway, "sale", subject)
    assert unknown.value.may_have_been_sent and unknown.value.retryable
    again = run(gateway, "sale", subject)
    assert [t.order_id for t in emulator.transactions.values()].count("order-charge-502") == 1
    assert again.state == ProviderState.CAPTURED


def _retrying(sandbox, served) -> Gateway:  # type: ignore[no-untyped-def]
    """A gateway on the emulator whose retry policy may send a request up to three times."""
    import paywire_braintree
    from paywire import Plugins

    plugins = Plugins()
    plugins.register(paywire_braintree)
    url, ca_certs = served
    method = sandbox.method("braintree", url, **({"ca_certs": ca_certs} if ca_certs else {}))
    return Gateway([method], plugins=plugins, retry=Retry(total=2, backoff_factor=0))


def test_a_lost_capture_is_never_resent_by_the_retry_policy_and_the_retry_with_its_key_finds_it(
    sandbox, served, emulator: BraintreeEmulator  # type: ignore[no-untyped-def]
) -> None:
    with _retrying(sandbox, served) as retrying:
        auth = run(retrying, "authorize", authorize(retrying, key="retry-cap"))
        emulator.inject(Fault(kind="drop_after", path="partialcapture", times=3))
        subject = Subject(reference=auth.reference, amount=Money.of("40.00", EUR), final=False,
                          idempotency_key="retry-cap-1")
        with pytest.raises(OutcomeUnknown):
            run(retrying, "capture", subject)
        emulator.clear_faults()
        assert len(emulator.transactions[auth.reference].children) == 1, "sent once, although retries were allowed"
        captured = run(retrying, "capture", subject)
        assert captured.reference == emulator.transactions[auth.reference].children[0]
        fetched = run(retrying, "fetch", Subject(reference=auth.reference))
        assert fetched.captured == Money.of("40.00", EUR)
        assert [op.idempotency_key for op in fetched.operations] == ["retry-cap-1"]


@pytest.mark.parametrize("fault", [Fault(kind="drop_after", path="node"), Fault(kind="status", status=503, path="node")])
def test_a_query_whose_answer_was_lost_is_asked_again(
    sandbox, served, emulator: BraintreeEmulator, fault: Fault  # type: ignore[no-untyped-def]
) -> None:
    """A query changes nothing at Braintree: its transfer is repeatable, so the retry policy asks again."""
    with _retrying(sandbox, served) as retrying:
        auth = run(retrying, "authorize", authorize(retrying, key=f"retry-read-{fault.kind}"))
        before = len(emulator.calls)
        emulator.inject(fault)
        fetched = run(retrying, "fetch", Subject(reference=auth.reference))
        assert fetched.authorized == Money.of("100.00", EUR)
        assert len(emulator.calls) - before == (2 if fault.kind == "drop_after" else 1)  # a 503 reaches no logic


def test_a_mutation_answered_with_a_5xx_is_never_resent_by_the_retry_policy(
    sandbox, served, emulator: BraintreeEmulator  # type: ignore[no-untyped-def]
) -> None:
    """Braintree deduplicates no mutation: the key travels in its variables, so its transfer is
    not idempotent and a 5xx after the write leaves it unknown, sent once, for the caller's
    retry under its key to find."""
    with _retrying(sandbox, served) as retrying:
        auth = run(retrying, "authorize", authorize(retrying, key="retry-5xx"))
        emulator.inject(Fault(kind="status_after", status=500, path="partialcapture", times=3))
        subject = Subject(reference=auth.reference, amount=Money.of("40.00", EUR), final=False,
                          idempotency_key="retry-5xx-1")
        with pytest.raises(ProviderUnavailable) as unknown:
            run(retrying, "capture", subject)
        emulator.clear_faults()
        assert unknown.value.may_have_been_sent
        assert len(emulator.transactions[auth.reference].children) == 1, "sent once, although retries were allowed"
        assert run(retrying, "capture", subject).reference == emulator.transactions[auth.reference].children[0]


def test_braintrees_availability_and_limit_errors(gateway: Gateway, emulator: BraintreeEmulator) -> None:
    emulator.inject(Fault(kind="status", status=503))
    with pytest.raises(ProviderUnavailable) as unavailable:
        run(gateway, "authorize", authorize(gateway, key="k503"))
    assert unavailable.value.code == "SERVICE_AVAILABILITY"
    emulator.inject(Fault(kind="status", status=429, retry_after=4))
    with pytest.raises(RateLimited) as limited:
        run(gateway, "authorize", authorize(gateway, key="k429"))
    assert (limited.value.code, limited.value.retry_after) == ("RESOURCE_LIMIT", 4)


def test_wrong_credentials_are_a_final_authentication_error(sandbox, served) -> None:  # type: ignore[no-untyped-def]
    import paywire_braintree
    from paywire import Plugins

    plugins = Plugins()
    plugins.register(paywire_braintree)
    url, ca_certs = served
    method = sandbox.method("braintree", url, credentials={"public_key": "nobody", "private_key": "wrong"},
                            **({"ca_certs": ca_certs} if ca_certs else {}))
    with Gateway([method], plugins=plugins) as wrong, pytest.raises(AuthenticationError) as refused:
        run(wrong, "authorize", Subject(amount=Money.of("1.00", EUR), source="fake-valid-nonce"))
    assert refused.value.code == "AUTHENTICATION" and not refused.value.retryable
    assert "wrong" not in str(refused.value)


def test_vault_creates_the_customer_and_the_vaulted_method_charges_merchant_initiated(gateway: Gateway,
                                                                                       emulator: BraintreeEmulator) -> None:
    vaulted = run(gateway, "vault", Subject(source="fake-valid-visa-nonce", customer=Customer(email="b@example.com")))
    assert vaulted.token and vaulted.references["customer"] in emulator.customers
    sale = run(gateway, "sale", Subject(amount=Money.of("9.99", EUR), source=vaulted.token, vaulted=True,
                                        customer=Customer(reference=vaulted.references["customer"]),
                                        idempotency_key="vaulted-sale"))
    assert sale.state == ProviderState.CAPTURED
    again = run(gateway, "vault", Subject(source="fake-valid-nonce",
                                          customer=Customer(reference=vaulted.references["customer"])))
    assert again.references["customer"] == vaulted.references["customer"]
    run(gateway, "unvault", Subject(source=vaulted.token))
    with pytest.raises(InvalidRequest):
        run(gateway, "sale", Subject(amount=Money.of("1.00", EUR), source=vaulted.token, vaulted=True))


def test_unvault_naming_a_customer_by_its_legacy_id_is_checked_against_that_customer(
        gateway: Gateway, emulator: BraintreeEmulator) -> None:
    """A customer is named by its id or by its legacy id: the payment method's holder is compared
    with both, so the holder named by its legacy id deletes, and another customer is refused."""
    ada = run(gateway, "vault", Subject(source="fake-valid-visa-nonce", customer=Customer(email="ada@example.com")))
    grace = run(gateway, "vault", Subject(source="fake-valid-nonce", customer=Customer(email="grace@example.com")))
    legacy = {name: emulator.customers[vaulted.references["customer"]].legacy
              for name, vaulted in (("ada", ada), ("grace", grace))}
    with pytest.raises(InvalidRequest) as refused:
        run(gateway, "unvault", Subject(source=ada.token, customer=Customer(reference=legacy["grace"])))
    assert refused.value.code == "customer_mismatch" and ada.token in emulator.payment_methods
    run(gateway, "unvault", Subject(source=ada.token, customer=Customer(reference=legacy["ada"])))
    assert ada.token not in emulator.payment_methods and grace.token in emulator.payment_methods


def test_a_lost_unvault_is_never_resent_by_the_retry_policy_nor_recorded_failed_when_resent(
    sandbox, served, emulator: BraintreeEmulator, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    from paywire import PaymentService, SQLiteLedger

    with _retrying(sandbox, served) as retrying:
        service = PaymentService(retrying, SQLiteLedger(str(tmp_path / "ledger.db")))
        try:
            token = service.vault("braintree", "fake-valid-visa-nonce", customer=Customer(email="u@example.com")).token
            emulator.inject(Fault(kind="drop_after", path="deletePaymentMethodFromVault"))
            with pytest.raises(OutcomeUnknown) as lost:  # deleted at Braintree; the answer was lost
                service.unvault("braintree", token or "")
            assert token not in emulator.payment_methods
            assert [t.status for t in service.list_transactions()] == ["succeeded", "unknown"]
            # Resent under its key (a new request: Braintree's mutations take no key), NOT_FOUND is
            # the deletion the lost attempt made.
            removed = service.retry(lost.value.transaction_id or "")
            assert [t.status for t in service.list_transactions()] == ["succeeded", "succeeded"]
            assert removed.id == lost.value.transaction_id
            with pytest.raises(InvalidRequest):  # a token that was never there, sent once, is still refused
                service.unvault("braintree", "never-vaulted")
        finally:
            service.ledger.close()


@pytest.mark.parametrize("served", ["http"], indirect=True)
@pytest.mark.parametrize(("nonce", "error", "code"), [
    ("fake-processor-declined-visa-nonce", Declined, "2000"),
    ("fake-processor-failure-visa-nonce", Declined, "3000"),
    ("fake-gateway-rejected-fraud-valid-nonce", Declined, "fraud"),
])
def test_a_card_its_verification_refuses_is_a_declined_vault(
    sandbox, served, emulator: BraintreeEmulator, tmp_path, nonce: str, error: type, code: str  # type: ignore[no-untyped-def]
) -> None:
    """Braintree verifies a card before vaulting it; one the verification refuses is not vaulted,
    and the answer says so with the verification alone (no payment method, no error): a decline,
    recorded failed, never an answer that cannot be read."""
    from paywire import PaymentService, SQLiteLedger

    with _retrying(sandbox, served) as retrying:
        service = PaymentService(retrying, SQLiteLedger(str(tmp_path / "ledger.db")))
        try:
            with pytest.raises(error) as refused:
                service.vault("braintree", nonce, customer=Customer(email="d@example.com"), idempotency_key="vault-d")
            assert refused.value.code == code and "not vaulted" in str(refused.value)
            assert not emulator.payment_methods
            (txn,) = service.list_transactions()
            assert (txn.kind, txn.status, txn.token) == ("vault", "failed", None)
        finally:
            service.ledger.close()


def test_a_lost_vault_is_never_sent_again(
    sandbox, served, emulator: BraintreeEmulator, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """Braintree takes no key for vaulting and cannot find a payment method by one: a resend could
    store the card twice (a single-use nonce would instead be refused, and the vault recorded as
    failed though it was made). It stays unknown, and the call says so without sending."""
    from paywire import PaymentService, SQLiteLedger

    with _retrying(sandbox, served) as retrying:
        service = PaymentService(retrying, SQLiteLedger(str(tmp_path / "ledger.db")))
        try:
            buyer = Customer(email="v@example.com")
            emulator.inject(Fault(kind="drop_after", path="vaultPaymentMethod"))
            with pytest.raises(OutcomeUnknown):
                service.vault("braintree", "fake-valid-visa-nonce", customer=buyer, idempotency_key="vault-1")
            held, requests = len(emulator.payment_methods), len(emulator.calls)
            with pytest.raises(OutcomeUnknown) as again:  # the caller retries with the key
                service.vault("braintree", "fake-valid-visa-nonce", customer=buyer, idempotency_key="vault-1")
            assert again.value.code == "idempotency_key_expired" and "nothing was sent" in str(again.value)
            assert (len(emulator.payment_methods), len(emulator.calls)) == (held, requests)
            assert [t.status for t in service.list_transactions()] == ["unknown"]
        finally:
            service.ledger.close()


def test_a_retry_that_search_cannot_see_yet_is_answered_by_braintrees_duplicate_check(
    gateway: Gateway, emulator: BraintreeEmulator
) -> None:
    emulator.duplicate_window, emulator.search_lag = 300.0, 300.0  # search trails the write; duplicate checking on
    emulator.inject(Fault(kind="drop_after", path="authorizePaymentMethod"))
    subject = authorize(gateway, "42.00", key="dup-auth")
    with pytest.raises(OutcomeUnknown):
        run(gateway, "authorize", subject)
    retried = run(gateway, "authorize", subject)
    authorized = [t for t in emulator.transactions.values() if t.status == "AUTHORIZED"]
    assert [t.id for t in authorized] == [retried.reference], "one authorization: the retry named the original"
    with pytest.raises(Declined) as another:
        run(gateway, "authorize", authorize(gateway, "42.00", key="another-order"))
    assert another.value.code == "duplicate", "another payment of the same card and amount stays Braintree's refusal"


class PartialAnswers(RewritingProxy):
    """A loopback proxy in front of the emulator that adds a GraphQL error of `error_class` beside
    the data of every mutation answer: Braintree's "partial success" (the write was made, a field
    of its answer could not be resolved); with `queries`, beside the data of every read too."""

    def __init__(self, upstream: str, error_class: str, *, mutations: bool = True, queries: bool = False) -> None:
        import json

        self.mutations, self.queries = mutations, queries

        def rewrite(body: bytes, payload: Any) -> Any:
            mutation = json.loads(body)["query"].lstrip().startswith("mutation")
            if (self.mutations if mutation else self.queries) and not payload.get("errors"):
                field = next(iter(payload["data"]))
                payload["errors"] = [{"message": "a field of the answer could not be resolved",
                                      "path": [field, "transaction" if mutation else "customer", "customer"],
                                      "extensions": {"errorClass": error_class}}]
            return payload

        super().__init__(upstream, rewrite)


@pytest.mark.parametrize("error_class", ["VALIDATION", "NOT_FOUND", "AUTHORIZATION", "AUTHENTICATION",
                                         "RESOURCE_LIMIT"])
def test_errors_beside_a_mutations_data_leave_the_charge_unknown_and_the_retry_finds_it(
    sandbox, emulator: BraintreeEmulator, error_class: str, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import paywire_braintree
    from paywire import PaymentService, Plugins, SQLiteLedger
    from paywire.testing.emulator import EmulatorServer

    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(emulator) as server:
        proxy = PartialAnswers(server.url, error_class)
        try:
            with Gateway([sandbox.method("braintree", proxy.url)], plugins=plugins, retry=Retry.never()) as partial, \
                    Gateway([sandbox.method("braintree", server.url)], plugins=plugins, retry=Retry.never()) as plain:
                subject = authorize(partial, "30.00", key=f"partial-{error_class}", sale=True)
                with pytest.raises(OutcomeUnknown) as unknown:  # Braintree charged: its answer says so
                    run(partial, "sale", subject)
                assert unknown.value.may_have_been_sent
                assert [t.order_id for t in emulator.transactions.values()] == [subject.order.id]
                assert run(plain, "sale", subject).reference == next(iter(emulator.transactions))

                service = PaymentService(partial, SQLiteLedger(str(tmp_path / "ledger.db")))
                try:
                    with pytest.raises(OutcomeUnknown):
                        service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="P-2",
                                     idempotency_key=f"partial-service-{error_class}")
                    (txn,) = service.list_transactions()
                    assert txn.status == "unknown", "charged at Braintree: never recorded as failed"
                    service.reconcile(payment_id=txn.payment_id)
                    assert service.get_payment(txn.payment_id or "").captured == Money.of("12.00", EUR)
                finally:
                    service.ledger.close()
        finally:
            proxy.close()


def test_a_read_answering_errors_beside_the_transaction_never_reads_as_braintree_holding_none(
    emulator: BraintreeEmulator, behind  # type: ignore[no-untyped-def]
) -> None:
    """A void whose answer was lost is reconciled by reading the authorization. A NOT_FOUND
    beside the transaction's data is about a field of the answer, not the transaction: read as
    "Braintree holds no such payment", reconciliation would record failed a void Braintree made."""
    from datetime import timedelta
    from unittest import mock

    from paywire.ledger import PaymentState
    from paywire.ledger.model import now

    service, proxy = behind(lambda url: PartialAnswers(url, "NOT_FOUND", mutations=False))
    payment = service.authorize("braintree", Money.of("40.00", EUR), source="fake-valid-nonce",
                                idempotency_key="partial-read")
    emulator.inject(Fault("drop_after", path="reverseTransaction"))
    with pytest.raises(PaywireError):
        service.void(payment.id, idempotency_key="partial-read-void")
    assert emulator.transactions[payment.reference or ""].status == "VOIDED"
    proxy.queries = True
    later = now() + timedelta(days=1)  # the void's request can no longer land
    with mock.patch.object(service.ledger, "now", lambda: later):
        service.reconcile(payment_id=payment.id)
    void = service.list_transactions(payment.id)[-1]
    assert (void.kind, void.status) == ("void", "unknown"), "Braintree voided it: never failed"
    proxy.queries = False
    service.reconcile(payment_id=payment.id)
    assert service.list_transactions(payment.id)[-1].status == "succeeded"
    assert service.get_payment(payment.id).state == PaymentState.VOIDED


@pytest.mark.parametrize("error_class", ["NOT_FOUND", "VALIDATION"])
def test_a_retry_whose_search_answers_errors_beside_the_data_never_records_a_lost_sale_failed(
    emulator: BraintreeEmulator, behind, error_class: str  # type: ignore[no-untyped-def]
) -> None:
    """A sale whose answer was lost is retried: the search for it answers the transactions with a
    GraphQL error beside them. That is an incomplete read, not Braintree refusing the sale: the
    sale it charged stays unknown, never recorded failed, and is found once the search answers."""
    service, proxy = behind(lambda url: PartialAnswers(url, error_class, mutations=False))
    emulator.inject(Fault("drop_after", path="chargePaymentMethod"))
    with pytest.raises(PaywireError):
        service.sale("braintree", Money.of("25.00", EUR), source="fake-valid-nonce",
                     idempotency_key="partial-search")
    (txn,) = service.list_transactions()
    assert txn.status == "unknown" and len(emulator.transactions) == 1
    proxy.queries = True
    with pytest.raises(OutcomeUnknown):
        service.retry(txn.id)
    assert service.list_transactions()[0].status == "unknown", "Braintree charged it: never failed"
    proxy.queries = False
    found = service.retry(txn.id)
    assert found.captured == Money.of("25.00", EUR) and len(emulator.transactions) == 1


@pytest.mark.parametrize("served", ["http"], indirect=True)
@pytest.mark.parametrize("operation", ["partialCaptureTransaction", "refundTransaction"])
def test_a_retry_while_the_first_request_is_still_on_its_way_is_never_written_again(
    sandbox, served, emulator: BraintreeEmulator, tmp_path, operation: str  # type: ignore[no-untyped-def]
) -> None:
    """Braintree takes no key: a capture or refund is found by its key only once it has landed.
    Resent while the first request is still on its way, it would move the money twice; the
    resend sends nothing and says so, and once the first has landed the retry finds it.

    The first request waits at Braintree until the test lets it land (not a latency the client's
    read timeout must beat), and every other call goes through a patient gateway: however loaded
    the machine, the retry comes while the first is still on its way and each read is answered."""
    import threading
    import time

    import paywire_braintree
    from paywire import PaymentService, Plugins, SQLiteLedger

    plugins = Plugins()
    plugins.register(paywire_braintree)
    url, _ = served
    landing, arrived = threading.Event(), threading.Event()
    handle = emulator.handle

    def held_until_landing(request: Any) -> Any:
        if request.carries(operation) and not arrived.is_set():  # the first request only
            arrived.set()
            assert landing.wait(60), "the test never let the first request land"
        return handle(request)

    emulator.handle = held_until_landing  # type: ignore[method-assign]
    with Gateway([sandbox.method("braintree", url, read_timeout=30.0)], plugins=plugins,
                 retry=Retry.never()) as gateway, \
            Gateway([sandbox.method("braintree", url, read_timeout=1.0)], plugins=plugins,
                    retry=Retry.never()) as hurried, \
            SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service, impatient = PaymentService(gateway, ledger), PaymentService(hurried, ledger)
        eur = Money.of("100.00", EUR)
        try:
            if operation == "partialCaptureTransaction":
                payment = service.authorize("braintree", eur, source=sandbox.sources["ok"], idempotency_key="o-1")
                call = lambda: impatient.capture(payment.id, Money.of("30.00", EUR), final=False)  # noqa: E731
            else:
                payment = service.sale("braintree", eur, source=sandbox.sources["ok"], idempotency_key="o-1")
                call = lambda: impatient.refund(payment.id, Money.of("30.00", EUR))  # noqa: E731
            with pytest.raises(OutcomeUnknown) as lost:  # the client gave up before it landed
                call()
            assert arrived.is_set()
            requests = len(emulator.calls)
            with pytest.raises(OutcomeUnknown) as again:  # the caller retries at once
                service.retry(lost.value.transaction_id or "")
            assert again.value.code == "earlier_attempt_not_seen" and "nothing was sent" in str(again.value)
            assert not [c for c in emulator.calls[requests:] if operation in c[1]]
        finally:
            landing.set()  # the first request lands
        reference = service.get_payment(payment.id).reference or ""

        def moved() -> Money | None:
            fetched = gateway.execute("braintree", "fetch", Subject(reference=reference, amount=eur))
            return fetched.captured if operation == "partialCaptureTransaction" else fetched.refunded

        deadline = time.monotonic() + 30  # only guards against a hang
        while moved() != Money.of("30.00", EUR):  # the first request lands
            assert time.monotonic() < deadline, "the first request never landed"
            time.sleep(0.05)
        done = service.retry(lost.value.transaction_id or "")  # found by its key: replayed, not written
        assert (done.captured if operation == "partialCaptureTransaction" else done.refunded) == Money.of("30.00", EUR)
        assert moved() == Money.of("30.00", EUR)  # once at Braintree


class RefuseSales:
    """A shop's answer policy (a `validate_response` hook: a fraud or AVS/CVV check) refusing the
    transaction of every sale Braintree answers, under `code`."""

    def __init__(self, code: str) -> None:
        self.code = code

    @hookimpl
    def validate_response(self, command: str, response: Response) -> Result | None:
        charged = command == "sale" and "chargePaymentMethod" in (response.data or {}).get("data", {})
        return Result.failure("the shop's policy refuses this sale", self.code) if charged else None


@pytest.mark.parametrize("code", ["policy_refused", "DECLINED", "GATEWAY_REJECTED", "FAILED", "VALIDATION"])
def test_a_sale_braintree_made_that_the_shops_policy_refuses_is_unknown_whatever_its_code(
    gateway: Gateway, emulator: BraintreeEmulator, code: str
) -> None:
    """The charge was made (Braintree answered its transaction); a refusal by another validator is
    no evidence that it was not, even when the shop names it as Braintree names a decline."""
    gateway.plugins.register(RefuseSales(code), name="policy")
    with pytest.raises(PaywireError) as refused:
        run(gateway, "sale", authorize(gateway, key=f"refused-{code}", sale=True))
    assert [t.order_id for t in emulator.transactions.values()].count(f"order-refused-{code}") == 1
    assert is_unknown(refused.value), f"{refused.value!r} is recorded failed"
    assert refused.value.code == code
