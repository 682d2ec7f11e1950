"""Vault, unvault and vaulted charges through the payment service, on each provider's emulator
and each ledger: lost answers, tokens deleted or reused, another buyer's token, keys reused
across operations, bad input and a method that keeps no payment methods."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import (
    Customer,
    Declined,
    Gateway,
    GatewayDefinition,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    Order,
    OutcomeUnknown,
    PaymentService,
    Plugins,
    ProviderUnavailable,
    Retry,
    StateError,
    Subject,
    TransportError,
    UnsupportedOperation,
)
from paywire.ledger import Ledger
from paywire.ledger.model import Transaction, TransactionStatus
from paywire.service import payments
from paywire.service.keys import fingerprint, same_operation
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.recorder import RecordedTransfer, TransferRecorder
from paywire.testing.sandbox import load_sandbox
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, LIFE, PATIENT, wait_out_life, wait_until, within_life

# The three plugins: the core package's session installs none of them (the all session has them).
paywire_stripe = pytest.importorskip("paywire_stripe", reason="needs the Stripe plugin (the all session has it)")
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")
paywire_braintree = pytest.importorskip("paywire_braintree",
                                        reason="needs the Braintree plugin (the all session has it)")
S = TransactionStatus
PROVIDERS: dict[str, tuple[Any, GatewayDefinition]] = {
    "stripe": (paywire_stripe, paywire_stripe.STRIPE),
    "paypal": (paywire_paypal, paywire_paypal.PAYPAL),
    "braintree": (paywire_braintree, paywire_braintree.BRAINTREE),
}
# The request that stores the payment method, and the one that deletes it, by provider.
VAULT_WRITE = {"stripe": Fault(kind="drop_after", path=r"/attach$"),
               "paypal": Fault(kind="drop_after", path=r"^/v3/vault/payment-tokens$", method="POST"),
               "braintree": Fault(kind="drop_after", contains="vaultPaymentMethod")}
UNVAULT_WRITE = {"stripe": Fault(kind="drop_after", path=r"/detach$"),
                 "paypal": Fault(kind="drop_after", path=r"^/v3/vault/payment-tokens/", method="DELETE"),
                 "braintree": Fault(kind="drop_after", contains="deletePaymentMethodFromVault")}
# The read of the stored token an unvault naming a customer makes first, by provider.
UNVAULT_READ = {"stripe": Fault(kind="drop_after", path=r"^/v1/payment_methods/[^/]+$", method="GET"),
                "paypal": Fault(kind="drop_after", path=r"^/v3/vault/payment-tokens/", method="GET"),
                "braintree": Fault(kind="drop_after", path=r"^/graphql/node$", contains="query VaultedPaymentMethod")}
ADA = Customer(email="ada@shop.example", name="Ada Lovelace")
GRACE = Customer(email="grace@shop.example", name="Grace Hopper")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


class Vaulting:
    """A payment service on one provider's emulator, with every transfer recorded."""

    def __init__(self, provider: str, ledger: Ledger, **settings: Any) -> None:
        module, definition = PROVIDERS[provider]
        self.provider = provider
        self.sandbox = load_sandbox(definition)
        self.app: Any = self.sandbox.app
        self.recorder = TransferRecorder()
        self.server = EmulatorServer(self.app).__enter__()
        plugins = Plugins()
        plugins.register(module, name=provider)
        plugins.register(self.recorder, name="recorder")
        self.gateway = Gateway([self.sandbox.method(provider, self.server.url, **settings)], plugins=plugins,
                               retry=Retry.never())
        self.service = PaymentService(self.gateway, ledger, wait_timeout=5.0)
        self.seeded = self._held()  # the sandbox's own test sources

    def close(self) -> None:
        self.gateway.close()
        self.server.__exit__(None, None, None)

    def source(self) -> str:
        """A payment method the provider can vault (PayPal: a setup token the buyer approved)."""
        if self.provider == "stripe":
            return "pm_card_visa"
        if self.provider == "braintree":
            return "fake-valid-visa-nonce"
        setup = self.gateway.execute("paypal", "vault", Subject(source="paypal", idempotency_key=f"setup-{self.sent()}"))
        assert setup.action is not None
        self.sandbox.act_as_buyer(setup.action.redirect_url)
        assert setup.reference
        return setup.reference

    def stored(self) -> int:
        """How many payment methods the provider holds in its vault, besides the sandbox's own."""
        return self._held() - self.seeded

    def _held(self) -> int:
        if self.provider == "stripe":
            return sum(1 for method in self.app.store.payment_methods.values() if method.get("customer"))
        if self.provider == "paypal":
            return len(self.app.payment_tokens)
        return len(self.app.payment_methods)

    def sent(self) -> int:
        return len(self.recorder.sent)

    def vault(self, customer: Customer = ADA, key: str | None = None) -> Transaction:
        stored = self.service.vault(self.provider, self.source(), customer=customer, idempotency_key=key)
        assert stored.status == S.SUCCEEDED and stored.token and stored.provider_reference
        return stored


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shop(provider: str, ledger: Ledger) -> Iterator[Vaulting]:
    vaulting = Vaulting(provider, ledger)
    yield vaulting
    vaulting.close()


def _kinds(service: PaymentService) -> list[tuple[str, str]]:
    return [(t.kind, t.status) for t in service.list_transactions()]


def _asked(sent: RecordedTransfer) -> str:
    """What a transfer asked of the provider about a stored token: "read" or "delete"."""
    transfer = sent.transfer
    if transfer.method == "GET" or b"query VaultedPaymentMethod" in (transfer.body or b""):
        return "read"
    if transfer.method == "DELETE" or transfer.url.endswith("/detach") or b"deletePaymentMethodFromVault" in (
            transfer.body or b""):
        return "delete"
    return f"{transfer.method} {transfer.url}"


# -- a lost vault ---------------------------------------------------------------------------------
def test_a_vault_whose_answer_is_lost_is_unknown_and_never_stored_twice(shop: Vaulting) -> None:
    source = shop.source()
    shop.app.inject(attrs.evolve(VAULT_WRITE[shop.provider]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-lost")
    assert shop.stored() == 1  # the provider stored it; the answer was lost
    txn = shop.service.get_transaction(str(lost.value.transaction_id))
    assert (txn.status, txn.token, txn.payment_id) == (S.UNKNOWN, None, None)
    if shop.provider == "braintree":  # no key: sent again, the method would be stored twice
        sent = shop.sent()
        with pytest.raises(OutcomeUnknown) as refused:
            shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-lost")
        assert refused.value.code == "idempotency_key_expired" and "check with the provider" in str(refused.value)
        assert shop.sent() == sent and shop.service.get_transaction(txn.id).status == S.UNKNOWN
    else:  # the same call under its key: the provider's stored answer, the method it stored
        again = shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-lost")
        assert (again.id, again.status) == (txn.id, S.SUCCEEDED) and again.token
        assert shop.stored() == 1
    assert shop.stored() == 1


@pytest.mark.parametrize("kind", ["drop_after", "status_after"])
def test_the_error_of_a_lost_vault_says_what_settles_it(shop: Vaulting, kind: str) -> None:
    """It said to retry the same call or run reconcile() (a 5xx), or nothing (a dropped
    connection): reconcile() settles no vault, and Braintree's cannot be sent again."""
    shop.app.inject(attrs.evolve(VAULT_WRITE[shop.provider], kind=kind))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault(shop.provider, shop.source(), customer=ADA, idempotency_key="vault-lost")
    said = str(lost.value)
    assert "run reconcile()" not in said and "reconcile() cannot ask the provider about a vault" in said
    if shop.provider == "braintree":
        assert "keeps no idempotency key for vault" in said and "check with the provider" in said
        assert "settle_vault(transaction_id, token=...)" in said
    else:
        assert "vault() again with its parameters and idempotency_key='vault-lost'" in said
    assert lost.value.transaction_id and shop.service.get_transaction(lost.value.transaction_id).status == S.UNKNOWN


def test_a_lost_vault_made_without_a_key_names_the_key_that_settles_it(shop: Vaulting) -> None:
    """It said to retry the same call, which without a key is a new vault: the method stored again."""
    if shop.provider == "braintree":
        pytest.skip("braintree keeps no key for vault: nothing resends it (see the test above)")
    first = shop.vault(key="vault-1")
    source = shop.source()
    shop.app.inject(attrs.evolve(VAULT_WRITE[shop.provider], kind="status_after"))
    reference = Customer(reference=first.provider_reference)  # the whole request is kept: retry() can
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault(shop.provider, source, customer=reference)
    txn = shop.service.get_transaction(str(lost.value.transaction_id))
    assert f"vault() again with idempotency_key={txn.idempotency_key!r}" in str(lost.value)
    assert "retry the same call" not in str(lost.value) and shop.stored() == 2
    again = shop.service.vault(shop.provider, source, customer=reference, idempotency_key=txn.idempotency_key)
    assert (again.id, again.status) == (txn.id, S.SUCCEEDED) and shop.stored() == 2


def test_a_lost_vaulted_charge_made_without_a_key_names_the_key_that_settles_it(shop: Vaulting) -> None:
    """It said to retry the same call (the same key is reused): without a key, the same call
    was a second charge of the vaulted card."""
    stored = shop.vault(key="vault-1")
    buyer = Customer(reference=stored.provider_reference)
    charge = {"stripe": Fault(kind="status_after", path=r"^/v1/payment_intents$"),
              "paypal": Fault(kind="status_after", path=r"^/v2/checkout/orders$"),
              "braintree": Fault(kind="status_after", contains="chargePaymentMethod")}[shop.provider]
    shop.app.inject(charge)
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"), customer=buyer)
    (sale,) = shop.service.list_transactions(str(lost.value.payment_id))
    said = str(lost.value)
    assert "retry the same call" not in said and f"idempotency_key={sale.idempotency_key!r}" in said
    assert "without that key, the call is a new sale" in said
    paid = shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"), customer=buyer,
                                       idempotency_key=sale.idempotency_key)
    assert paid.id == sale.payment_id and paid.captured == usd("5.00")
    assert [p.captured for p in shop.service.list_payments()] == [usd("5.00")]


def test_reconcile_says_what_settles_a_lost_vault(shop: Vaulting) -> None:
    """The note said to retry with retry(transaction_id): Braintree's lost vault cannot be sent
    again at all, and retry() refuses a vault whose buyer's details the ledger does not keep."""
    shop.app.inject(attrs.evolve(VAULT_WRITE[shop.provider]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault(shop.provider, shop.source(), customer=ADA, idempotency_key="vault-lost")
    sent = shop.sent()
    report = shop.service.reconcile()
    assert shop.sent() == sent and report.settled == ()
    (open_vault,) = report.unresolved
    assert (open_vault.transaction_id, open_vault.status) == (lost.value.transaction_id, None)
    if shop.provider == "braintree":
        assert "keeps no idempotency key for vault" in open_vault.note
        assert "check with the provider" in open_vault.note and "retry(" not in open_vault.note
        assert "settle_vault(transaction_id, token=...)" in open_vault.note  # what records what it found
    else:
        assert "vault() again" in open_vault.note and "'vault-lost'" in open_vault.note
        with pytest.raises(InvalidRequest) as not_stored:  # what the note does not offer
            shop.service.retry(open_vault.transaction_id)
        assert not_stored.value.code == "request_not_stored" and shop.sent() == sent


def test_a_lost_vault_past_the_providers_key_life_is_left_to_the_caller(fakepay: tuple[FakePayApp, str],
                                                                        ledger: Ledger) -> None:
    """A provider that keeps a vault's key for less than the vault's request may take to land:
    sent again it could store the method twice, and nothing here can ask about it."""
    app, url = fakepay
    gateway = make_gateway(url, key_lives={"vault": LIFE / 2}, **FAST)
    service = PaymentService(gateway, ledger, margin=0)
    try:
        app.inject(Fault("drop_after", path=r"^/v1/vault$", method="POST"))
        with pytest.raises(OutcomeUnknown) as lost:
            service.vault("fakepay", "tok_ok", idempotency_key="vault-1")
        # its lost answer may come after FAST's read timeout on a loaded machine: it lands all the same
        wait_until(lambda: len(app.vaulted) == 1, "the emulator stored the method")
        assert "kept its idempotency key for vault only" in str(lost.value)
        assert "check with the provider" in str(lost.value)
        (open_vault,) = service.reconcile().unresolved
        assert "kept its idempotency key for vault only" in open_vault.note
        with pytest.raises(OutcomeUnknown) as refused:
            service.vault("fakepay", "tok_ok", idempotency_key="vault-1")
        assert refused.value.code == "idempotency_key_expired" and len(app.vaulted) == 1
    finally:
        gateway.close()


def test_a_lost_vault_the_caller_checked_with_the_provider_can_be_closed(ledger: Ledger) -> None:
    """A lost vault nothing here can settle (Braintree's: no key, no lookup) stayed unknown for
    good, reported by every reconcile(), with no way to record what the caller found."""
    shop = Vaulting("braintree", ledger)
    try:
        shop.app.inject(attrs.evolve(VAULT_WRITE["braintree"]))
        with pytest.raises(OutcomeUnknown) as lost:
            shop.service.vault("braintree", shop.source(), customer=ADA, idempotency_key="vault-lost")
        (method,) = [m for m in shop.app.payment_methods.values() if m.customer]
        closed = shop.service.settle_vault(str(lost.value.transaction_id), token=method.id)
        assert (closed.status, closed.token) == (S.SUCCEEDED, method.id)
        assert shop.service.reconcile().unresolved == ()
    finally:
        shop.close()


def _lost_braintree_vault(shop: Vaulting) -> tuple[Transaction, Any]:
    """A Braintree vault whose answer was lost (the method stored), and the method as stored."""
    shop.app.inject(attrs.evolve(VAULT_WRITE["braintree"]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault("braintree", shop.source(), customer=ADA, idempotency_key="vault-lost")
    (method,) = [m for m in shop.app.payment_methods.values() if m.customer]
    return shop.service.get_transaction(str(lost.value.transaction_id)), method


def test_a_vault_the_caller_settled_is_the_callers_record_and_charges_like_any_other(ledger: Ledger) -> None:
    shop = Vaulting("braintree", ledger)
    try:
        lost, method = _lost_braintree_vault(shop)
        (open_vault,) = shop.service.reconcile().unresolved  # what it says to do
        assert "settle_vault(transaction_id, token=...)" in open_vault.note and "nothing_stored=True" in open_vault.note
        customer = shop.app.customers[method.customer].id
        sent = shop.sent()
        closed = shop.service.settle_vault(lost.id, token=method.id, customer_reference=customer)
        assert closed == shop.service.get_transaction(lost.id) and shop.sent() == sent  # asks nothing
        assert (closed.status, closed.token, closed.provider_reference) == (S.SUCCEEDED, method.id, customer)
        assert closed.settled_by == "caller" and "settle_vault()" in closed.response["settled_by"]
        assert (closed.error_type, closed.error_code, closed.error_message) == (None, None, None)
        assert shop.service.reconcile().clean
        # The same call under its key replays what the caller recorded; nothing is sent.
        again = shop.service.vault("braintree", shop.source(), customer=ADA, idempotency_key="vault-lost")
        assert again == closed and shop.sent() == sent
        # Settled once: settling it again, either way, is refused and changes nothing.
        for call in (lambda: shop.service.settle_vault(lost.id, token="another"),
                     lambda: shop.service.settle_vault(lost.id, nothing_stored=True)):
            with pytest.raises(StateError) as refused:
                call()
            assert refused.value.code == "not_unknown" and "already succeeded (settled by caller)" in str(refused.value)
            assert refused.value.transaction_id == lost.id
        assert shop.service.get_transaction(lost.id) == closed
        paid = shop.service.charge_vaulted("braintree", method.id, usd("5.00"), customer=Customer(reference=customer))
        assert paid.captured == usd("5.00")
    finally:
        shop.close()


def test_settling_a_vault_refuses_all_but_an_unknown_vault_and_bad_input_and_changes_nothing(
        shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    sale = shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                       customer=Customer(reference=stored.provider_reference))
    (charge,) = shop.service.list_transactions(sale.id)
    shop.app.inject(attrs.evolve(VAULT_WRITE[shop.provider]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.vault(shop.provider, shop.source(), customer=ADA, idempotency_key="vault-lost")
    unknown = str(lost.value.transaction_id)
    sent, before = shop.sent(), shop.service.list_transactions()
    refusals: list[tuple[Any, type[Exception], str | None]] = [
        (lambda: shop.service.settle_vault(stored.id, token="tok"), StateError, "not_unknown"),
        (lambda: shop.service.settle_vault(charge.id, token="tok"), InvalidRequest, "not_a_vault"),
        (lambda: shop.service.settle_vault("txn_nowhere", token="tok"), InvalidRequest, "transaction_not_found"),
        (lambda: shop.service.settle_vault(unknown), InvalidRequest, None),  # neither the token nor nothing_stored
        (lambda: shop.service.settle_vault(unknown, token=None), InvalidRequest, None),
        (lambda: shop.service.settle_vault(unknown, token="tok", nothing_stored=True), InvalidRequest, None),
        (lambda: shop.service.settle_vault(unknown, nothing_stored=True, customer_reference="c"), InvalidRequest, None),
        (lambda: shop.service.settle_vault(unknown, nothing_stored="yes"), InvalidRequest, None),  # type: ignore[arg-type]
        (lambda: shop.service.settle_vault(unknown, token="tok", customer_reference=" "), InvalidRequest, None),
        (lambda: shop.service.settle_vault(unknown, token="tok", customer_reference="4242424242424242"),
         InvalidRequest, "raw_card_number"),
        # Its request may still land, and store the method then.
        (lambda: shop.service.settle_vault(unknown, nothing_stored=True), StateError, "not_unknown"),
        *((lambda token=token: shop.service.settle_vault(unknown, token=token), InvalidRequest, None)
          for token in ("", "  ", 42, "tok\x00en", "4242424242424242", "4242 4242 4242 4242")),
    ]
    for call, error, code in refusals:
        with pytest.raises(error) as refused:
            call()
        assert code is None or refused.value.code == code, refused.value  # type: ignore[attr-defined]
        assert "nothing was" in str(refused.value) or code == "transaction_not_found"
    assert shop.sent() == sent and shop.service.list_transactions() == before
    assert shop.service.get_transaction(unknown).status == S.UNKNOWN


def test_a_vault_that_stored_nothing_is_settled_failed_once_its_request_can_no_longer_land(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    app, url = fakepay
    # Nothing resends it: only the caller settles it. Only the lost vault has FAST's short life.
    patient = make_gateway(url, key_lives={"vault": 0}, **PATIENT)
    gateway = make_gateway(url, key_lives={"vault": 0}, **FAST)
    service = PaymentService(patient, ledger, margin=0)
    try:
        app.inject(Fault("status", status=500, path=r"^/v1/vault$", method="POST"))  # answered, never applied
        with pytest.raises(OutcomeUnknown) as lost:
            PaymentService(gateway, ledger, margin=0).vault("fakepay", "tok_ok", idempotency_key="vault-1")
        assert "settle_vault(transaction_id, nothing_stored=True)" in str(lost.value)
        txn = service.get_transaction(str(lost.value.transaction_id))
        try:
            early: Transaction | StateError = service.settle_vault(txn.id, nothing_stored=True)
        except StateError as refused:
            early = refused
        if within_life(service, [txn.id]):  # else a loaded machine was past its life: nothing to say
            assert isinstance(early, StateError) and "may still land" in str(early), early
            assert service.get_transaction(txn.id) == txn
        wait_out_life(service, [txn.id])
        assert app.vaulted == {}  # what the caller finds at the provider
        closed = early if isinstance(early, Transaction) else service.settle_vault(txn.id, nothing_stored=True)
        assert (closed.status, closed.token, closed.settled_by) == (S.FAILED, None, "caller")
        assert closed == service.get_transaction(txn.id) and service.reconcile().unresolved == ()
        # The same call under its key gets the recorded failure (it may not have been sent), not
        # an unknown outcome; a new key vaults anew.
        with pytest.raises(Declined) as replayed:
            service.vault("fakepay", "tok_ok", idempotency_key="vault-1")
        assert (replayed.value.code, replayed.value.may_have_been_sent) == ("failed_at_provider", False)
        assert "nothing was stored" in str(replayed.value) and app.vaulted == {}
        assert service.vault("fakepay", "tok_ok", idempotency_key="vault-2").status == S.SUCCEEDED
    finally:
        gateway.close()
        patient.close()


def test_two_callers_settling_one_vault_at_once_record_one_outcome(
        fakepay: tuple[FakePayApp, str], make_ledger: Callable[[], Ledger]) -> None:
    """Two processes (each its own ledger connection) settle the same lost vault at once, one
    finding the method stored and one finding nothing: one outcome is recorded, and the other
    caller is told it was settled meanwhile, whichever comes first."""
    app, url = fakepay
    gateway = make_gateway(url, key_lives={"vault": 0}, **FAST)
    services = [PaymentService(gateway, make_ledger(), margin=0) for _ in range(2)]
    try:
        app.inject(Fault("drop_after", path=r"^/v1/vault$", method="POST"))
        with pytest.raises(OutcomeUnknown) as lost:
            services[0].vault("fakepay", "tok_ok", idempotency_key="vault-1")
        txn_id = str(lost.value.transaction_id)
        # its lost answer may come after FAST's read timeout on a loaded machine: it lands all the same
        wait_until(lambda: len(app.vaulted) == 1, "the emulator stored the method")
        wait_out_life(services[0], [txn_id])
        (token,) = app.vaulted
        start = threading.Barrier(2)
        results: list[Transaction | Exception] = [ValueError(), ValueError()]

        def settle(n: int) -> None:
            start.wait()
            try:
                results[n] = (services[n].settle_vault(txn_id, token=token) if n == 0 else
                              services[n].settle_vault(txn_id, nothing_stored=True))
            except Exception as exc:  # what each caller got is the assertion
                results[n] = exc

        threads = [threading.Thread(target=settle, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        (recorded,) = [r for r in results if isinstance(r, Transaction)]
        (refused,) = [r for r in results if not isinstance(r, Transaction)]
        assert isinstance(refused, StateError) and refused.code == "not_unknown", refused
        assert services[1].get_transaction(txn_id) == recorded and recorded.settled_by == "caller"
        assert recorded.status in (S.SUCCEEDED, S.FAILED)
    finally:
        gateway.close()


def test_reconcile_offers_retry_for_a_lost_unvault_and_the_retry_settles_it(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    shop.app.inject(attrs.evolve(UNVAULT_WRITE[shop.provider]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.unvault(shop.provider, str(stored.token))
    assert shop.stored() == 0 and shop.service.get_transaction(str(lost.value.transaction_id)).status == S.UNKNOWN
    (open_unvault,) = shop.service.reconcile().unresolved
    assert "retry(transaction_id)" in open_unvault.note
    removed = shop.service.retry(open_unvault.transaction_id)
    assert isinstance(removed, Transaction) and (removed.id, removed.status) == (open_unvault.transaction_id,
                                                                                S.SUCCEEDED)
    assert shop.service.reconcile().unresolved == ()


# -- unvault ----------------------------------------------------------------------------------------
def test_unvault_of_a_token_the_provider_already_deleted_is_refused_and_recorded_failed(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    shop.gateway.execute(shop.provider, "unvault", Subject(source=stored.token, idempotency_key="elsewhere"))
    assert shop.stored() == 0
    with pytest.raises(InvalidRequest) as refused:
        shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    assert refused.value.provider == shop.provider and refused.value.transaction_id
    assert _kinds(shop.service) == [("vault", S.SUCCEEDED), ("unvault", S.FAILED)]


def test_unvault_twice(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    first = shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    sent = shop.sent()
    again = shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    assert again.id == first.id and again.status == S.SUCCEEDED and shop.sent() == sent  # replayed
    with pytest.raises(InvalidRequest):  # a new unvault of a token that is gone
        shop.service.unvault(shop.provider, str(stored.token))
    assert _kinds(shop.service) == [("vault", S.SUCCEEDED), ("unvault", S.SUCCEEDED), ("unvault", S.FAILED)]


def test_charging_an_unvaulted_token_is_refused_and_nothing_succeeds(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    with pytest.raises(InvalidRequest) as refused:
        shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                    customer=Customer(reference=stored.provider_reference), idempotency_key="c-1")
    payment = shop.service.get_payment(str(refused.value.payment_id))
    assert payment.state == "failed" and payment.authorized == payment.captured == usd("0.00")
    assert _kinds(shop.service)[-1] == ("sale", S.FAILED)


# -- the token as kept ------------------------------------------------------------------------------
def test_the_token_is_kept_as_the_provider_named_it_and_charged_from_the_ledger(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    assert shop.service.get_transaction(stored.id).token == stored.token
    assert stored.request["command"] == "vault" and "token" not in stored.request
    payment = shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                          customer=Customer(reference=stored.provider_reference))
    assert payment.token == stored.token and payment.customer_reference == stored.provider_reference
    (sale,) = shop.service.list_transactions(payment.id)
    assert (sale.request["source"], sale.request["vaulted"]) == (stored.token, True)


def test_charging_one_buyers_token_as_another_buyer_is_refused(shop: Vaulting) -> None:
    """PayPal charged Ada's token for Grace (its orders name no customer); Braintree's emulator did
    too (Braintree refuses a payment method of another customer: 91516). The ledger then held a
    payment of Grace's paid with Ada's card."""
    ada, grace = shop.vault(ADA, "vault-ada"), shop.vault(GRACE, "vault-grace")
    with pytest.raises(InvalidRequest) as refused:
        shop.service.charge_vaulted(shop.provider, str(ada.token), usd("5.00"),
                                    customer=Customer(reference=grace.provider_reference), idempotency_key="c-1")
    payment = shop.service.get_payment(str(refused.value.payment_id))
    assert payment.state == "failed" and payment.captured == usd("0.00")
    assert _kinds(shop.service)[-1] == ("sale", S.FAILED)
    # Ada's own charge goes through.
    paid = shop.service.charge_vaulted(shop.provider, str(ada.token), usd("5.00"),
                                       customer=Customer(reference=ada.provider_reference))
    assert paid.captured == usd("5.00")


def test_vaulting_another_buyers_stored_token_is_refused(ledger: Ledger) -> None:
    """PayPal's vault answers a payment token's id with the token as it is: Ada's token vaulted
    for Grace succeeded, naming Ada's customer, and Grace's charges of it then failed."""
    shop = Vaulting("paypal", ledger)
    try:
        ada, grace = shop.vault(ADA, "vault-ada"), shop.vault(GRACE, "vault-grace")
        with pytest.raises(InvalidRequest) as refused:
            shop.service.vault("paypal", str(ada.token), customer=Customer(reference=grace.provider_reference),
                               idempotency_key="vault-3")
        assert (refused.value.code, refused.value.param) == ("customer_mismatch", "customer.reference")
        assert shop.stored() == 2 and _kinds(shop.service)[-1] == ("vault", S.FAILED)
        again = shop.service.vault("paypal", str(ada.token), customer=Customer(reference=ada.provider_reference))
        assert (again.token, again.provider_reference) == (ada.token, ada.provider_reference)
    finally:
        shop.close()


def test_unvault_naming_another_buyer_is_refused(shop: Vaulting) -> None:
    """The customer was ignored: Ada's token was deleted for a caller who said it was Grace's
    (each provider's deletion names no customer)."""
    ada, grace = shop.vault(ADA, "vault-ada"), shop.vault(GRACE, "vault-grace")
    with pytest.raises(InvalidRequest) as refused:
        shop.service.unvault(shop.provider, str(ada.token), customer=Customer(reference=grace.provider_reference),
                             idempotency_key="unvault-1")
    said = refused.value
    assert (said.code, said.param, said.provider) == ("customer_mismatch", "customer.reference", shop.provider)
    assert "nothing was" in said.message and said.transaction_id
    assert shop.stored() == 2 and _kinds(shop.service)[-1] == ("unvault", S.FAILED)
    assert shop.service.get_transaction(said.transaction_id).error_code == "customer_mismatch"
    assert [_asked(t) for t in shop.recorder.since(shop.sent() - 1)] == ["read"]  # the deletion was not sent
    sent = shop.sent()
    with pytest.raises(InvalidRequest):  # the refusal is kept under its key: nothing sent again
        shop.service.unvault(shop.provider, str(ada.token), customer=Customer(reference=grace.provider_reference),
                             idempotency_key="unvault-1")
    assert shop.sent() == sent and shop.stored() == 2


def test_unvault_naming_the_buyer_holding_the_token_reads_it_then_deletes_it(shop: Vaulting) -> None:
    ada, grace = shop.vault(ADA, "vault-ada"), shop.vault(GRACE, "vault-grace")
    mark = shop.sent()
    removed = shop.service.unvault(shop.provider, str(ada.token), customer=Customer(reference=ada.provider_reference))
    assert removed.status == S.SUCCEEDED and shop.stored() == 1
    assert [_asked(t) for t in shop.recorder.since(mark)] == ["read", "delete"]
    # Grace's token is still hers to charge.
    paid = shop.service.charge_vaulted(shop.provider, str(grace.token), usd("5.00"),
                                       customer=Customer(reference=grace.provider_reference))
    assert paid.captured == usd("5.00")


def test_unvault_without_a_customer_reads_nothing(shop: Vaulting) -> None:
    stored = shop.vault(key="vault-1")
    mark, calls = shop.sent(), len(shop.app.calls)
    removed = shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    assert removed.status == S.SUCCEEDED and shop.stored() == 0
    assert [_asked(t) for t in shop.recorder.since(mark)] == ["delete"]
    assert len(shop.app.calls) == calls + 1  # what reached the provider: the deletion alone


def test_unvault_naming_a_buyer_of_a_token_the_provider_no_longer_holds_is_refused_as_without_one(
        shop: Vaulting) -> None:
    """The read finds no token (or, at Stripe, one detached): the deletion answers as it does
    when no customer is named, refused and recorded failed."""
    stored = shop.vault(key="vault-1")
    shop.gateway.execute(shop.provider, "unvault", Subject(source=stored.token, idempotency_key="elsewhere"))
    with pytest.raises(InvalidRequest) as unnamed:
        shop.service.unvault(shop.provider, str(stored.token), idempotency_key="unvault-1")
    with pytest.raises(InvalidRequest) as named:
        shop.service.unvault(shop.provider, str(stored.token), customer=Customer(reference=stored.provider_reference),
                             idempotency_key="unvault-2")
    assert (named.value.code, named.value.param) == (unnamed.value.code, unnamed.value.param)
    assert named.value.code != "customer_mismatch" and named.value.transaction_id
    assert _kinds(shop.service) == [("vault", S.SUCCEEDED), ("unvault", S.FAILED), ("unvault", S.FAILED)]


@pytest.mark.parametrize("kind", ["drop_after", "status_after"])
def test_an_unvault_whose_read_is_lost_deleted_nothing_and_is_recorded_failed(shop: Vaulting, kind: str) -> None:
    """A read takes no effect and the deletion was not sent: the unvault is a retryable failure,
    not an outcome left unknown, and the same call under its key then deletes the token."""
    stored = shop.vault(key="vault-1")
    holder = Customer(reference=stored.provider_reference)
    shop.app.inject(attrs.evolve(UNVAULT_READ[shop.provider], kind=kind))
    with pytest.raises((TransportError, ProviderUnavailable)) as lost:
        shop.service.unvault(shop.provider, str(stored.token), customer=holder, idempotency_key="unvault-1")
    assert not isinstance(lost.value, OutcomeUnknown) and not lost.value.may_have_been_sent
    assert lost.value.retryable and "nothing was" in lost.value.message
    assert shop.stored() == 1 and [_asked(t) for t in shop.recorder.since(shop.sent() - 1)] == ["read"]
    failed = shop.service.get_transaction(str(lost.value.transaction_id))
    assert (failed.status, failed.retryable) == (S.FAILED, True)
    assert shop.service.reconcile().unresolved == ()
    removed = shop.service.unvault(shop.provider, str(stored.token), customer=holder, idempotency_key="unvault-1")
    assert removed.status == S.SUCCEEDED and shop.stored() == 0
    assert _kinds(shop.service) == [("vault", S.SUCCEEDED), ("unvault", S.FAILED), ("unvault", S.SUCCEEDED)]


def test_a_lost_unvault_naming_its_buyer_stays_unknown_until_its_resend_settles_it(shop: Vaulting) -> None:
    """The deletion's answer lost, the token is gone: the resend reads no token (or, at Stripe, a
    detached one) and its deletion answers for the first. A resend whose read is lost stays
    unknown: the first deletion may have taken effect."""
    stored = shop.vault(key="vault-1")
    holder = Customer(reference=stored.provider_reference)
    shop.app.inject(attrs.evolve(UNVAULT_WRITE[shop.provider]))
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.unvault(shop.provider, str(stored.token), customer=holder)
    txn_id = str(lost.value.transaction_id)
    assert shop.stored() == 0 and shop.service.get_transaction(txn_id).status == S.UNKNOWN
    shop.app.inject(attrs.evolve(UNVAULT_READ[shop.provider]))
    with pytest.raises(OutcomeUnknown) as again:
        shop.service.unvault(shop.provider, str(stored.token), customer=holder)  # no key: the open one's retry
    assert again.value.transaction_id == txn_id and shop.service.get_transaction(txn_id).status == S.UNKNOWN
    removed = shop.service.unvault(shop.provider, str(stored.token), customer=holder)
    assert (removed.id, removed.status) == (txn_id, S.SUCCEEDED)
    assert _kinds(shop.service) == [("vault", S.SUCCEEDED), ("unvault", S.SUCCEEDED)]
    assert shop.service.reconcile().unresolved == ()


# -- idempotency keys -------------------------------------------------------------------------------
def test_a_key_used_by_a_vault_is_not_used_again_by_a_charge_or_an_unvault(shop: Vaulting) -> None:
    stored = shop.vault(key="key-1")
    sale = shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                       customer=Customer(reference=stored.provider_reference), idempotency_key="key-2")
    sent, before = shop.sent(), _kinds(shop.service)
    for call in (
        lambda: shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                            customer=Customer(reference=stored.provider_reference),
                                            idempotency_key="key-1"),
        lambda: shop.service.unvault(shop.provider, str(stored.token), idempotency_key="key-1"),
        lambda: shop.service.vault(shop.provider, str(stored.token), customer=ADA, idempotency_key="key-2"),
        lambda: shop.service.unvault(shop.provider, str(stored.token), idempotency_key="key-2"),
    ):
        with pytest.raises(IdempotencyConflict) as conflict:
            call()
        assert conflict.value.code == "idempotency_key_reused"
    assert shop.sent() == sent and _kinds(shop.service) == before and sale.captured == usd("5.00")


def test_a_vault_key_used_again_for_another_buyer_is_a_conflict(shop: Vaulting) -> None:
    """The fingerprint left the buyer's details out, although the provider makes a new customer
    from them: the key replayed Ada's token for Grace."""
    source = shop.source()
    shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-1")
    sent, before = shop.sent(), _kinds(shop.service)
    with pytest.raises(IdempotencyConflict):
        shop.service.vault(shop.provider, source, customer=GRACE, idempotency_key="vault-1")
    for other in (attrs.evolve(ADA, phone="+44 20 7946 0000"), Customer(), None):
        with pytest.raises(IdempotencyConflict):
            shop.service.vault(shop.provider, source, customer=other, idempotency_key="vault-1")
    assert shop.sent() == sent and _kinds(shop.service) == before


def test_a_vault_called_again_with_its_key_and_the_same_buyer_replays(shop: Vaulting) -> None:
    source = shop.source()
    first = shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-1")
    sent = shop.sent()
    again = shop.service.vault(shop.provider, source, customer=Customer(email=ADA.email, name=ADA.name),
                               idempotency_key="vault-1")
    assert again == first and shop.sent() == sent and shop.stored() == 1
    reference = Customer(reference=first.provider_reference)  # a buyer named by the provider's customer
    source = shop.source()
    second = shop.service.vault(shop.provider, source, customer=reference, idempotency_key="vault-2")
    sent = shop.sent()
    assert shop.service.vault(shop.provider, source, customer=reference, idempotency_key="vault-2") == second
    assert shop.sent() == sent


def _as_the_previous_release(kind: str, method: str, scope: str | None, params: Mapping[str, Any]) -> str:
    """A fingerprint as the release before vaults' fingerprints covered the buyer wrote it: of
    the same fields, without the buyer's."""
    return fingerprint(kind, method, scope, {name: value for name, value in params.items() if name != "buyer"})


def test_a_vault_recorded_by_the_previous_release_still_replays_with_its_key(
        shop: Vaulting, monkeypatch: pytest.MonkeyPatch) -> None:
    source = shop.source()
    with monkeypatch.context() as patched:
        patched.setattr(payments, "fingerprint", _as_the_previous_release)
        first = shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-old")
    written = {"amount": None, "currency": None, "source": source, "customer_reference": None, "customer_id": None}
    assert first.fingerprint == fingerprint("vault", shop.provider, None, written)  # as that release wrote it
    sent = shop.sent()
    again = shop.service.vault(shop.provider, source, customer=ADA, idempotency_key="vault-old")
    assert again == first and shop.sent() == sent and shop.stored() == 1
    with pytest.raises(IdempotencyConflict):  # what that fingerprint covers still tells operations apart
        shop.service.vault(shop.provider, source, customer=Customer(id="another", email=ADA.email),
                           idempotency_key="vault-old")
    assert shop.sent() == sent


@given(params=st.dictionaries(st.sampled_from(["source", "customer_reference", "customer_id"]),
                              st.none() | st.text(max_size=5)),
       buyers=st.lists(st.fixed_dictionaries({name: st.none() | st.sampled_from(["ada", "grace", ""])
                                              for name in ("email", "name", "phone")}), min_size=2, max_size=2))
def test_a_vaults_fingerprint_tells_buyers_apart_and_matches_the_previous_releases(
        params: dict[str, Any], buyers: list[dict[str, Any]]) -> None:
    one, other = ({**params, "buyer": buyer} for buyer in buyers)
    recorded = fingerprint("vault", "m", None, one)
    assert same_operation(recorded, fingerprint("vault", "m", None, other), "vault", "m", None, other) == \
        (buyers[0] == buyers[1])
    # Written without the buyer, as before: it cannot tell, so any buyer with the same rest matches.
    assert same_operation(_as_the_previous_release("vault", "m", None, one), fingerprint("vault", "m", None, other),
                          "vault", "m", None, other)


def test_a_charge_keyed_like_a_stripe_vault_step_is_its_own_operation(ledger: Ledger) -> None:
    """Stripe's vault sent its steps under '{key}:customer' and '{key}:attach', in the caller's own
    key space: a sale keyed 'vault-1:attach' after a vault keyed 'vault-1' was sent, refused by
    Stripe as a key of another endpoint, and left unknown."""
    shop = Vaulting("stripe", ledger)
    try:
        shop.vault(key="vault-1")
        sold = shop.service.sale("stripe", usd("5.00"), source="pm_card_visa", idempotency_key="vault-1:attach")
        assert sold.captured == usd("5.00")
    finally:
        shop.close()


def _step_keys(app: Any) -> list[str]:
    """The keys Stripe made customers and attached payment methods under, in order."""
    return [e["request"]["idempotency_key"] for kind in ("customer.created", "payment_method.attached")
            for e in app.events_of_type(kind)]


def test_a_stripe_vault_after_charges_keyed_like_its_steps_sends_them_in_paywires_own_key_space(
        ledger: Ledger) -> None:
    """A vault whose step key a charge took was refused by Stripe (the key of another endpoint),
    and stayed unknown for good: every resend carried that key again."""
    shop = Vaulting("stripe", ledger)
    try:
        for step in ("customer", "attach"):
            sold = shop.service.sale("stripe", usd("5.00"), source="pm_card_visa", idempotency_key=f"vault-2:{step}")
            assert sold.captured == usd("5.00")
        stored = shop.vault(key="vault-2")
        assert _step_keys(shop.app) == ["paywire:customer:vault-2", "paywire:attach:vault-2"]
        assert stored.request["step_keys"] == "own" and shop.stored() == 1
        assert [t.status for t in shop.service.list_transactions()] == [S.SUCCEEDED] * 3
    finally:
        shop.close()


@pytest.mark.parametrize("resend", ["vault", "retry"])
def test_a_stripe_vault_an_earlier_release_left_unknown_is_resent_under_the_keys_it_sent(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch, resend: str) -> None:
    """A vault recorded by a release that made its steps' keys in the caller's key space (its
    request names no `step_keys`) sends them under those keys again: new ones would make a second
    customer, and attach the card to it."""
    shop = Vaulting("stripe", ledger)
    try:
        buyer = ADA if resend == "vault" else None  # retry() resends only a request the ledger keeps whole
        summary = PaymentService._request_summary

        def recorded(*args: Any) -> dict[str, Any]:  # what that release recorded
            return {k: v for k, v in summary(*args).items() if k != "step_keys"}

        def sent(subject: Subject, step: str) -> str:  # the keys that release sent
            return f"{subject.idempotency_key}:{step}"

        shop.app.inject(attrs.evolve(VAULT_WRITE["stripe"]))
        with monkeypatch.context() as before, pytest.raises(OutcomeUnknown) as lost:
            before.setattr(PaymentService, "_request_summary", staticmethod(recorded))
            before.setattr("paywire_stripe.composites.derived_key", sent)
            shop.service.vault("stripe", "pm_card_visa", customer=buyer, idempotency_key="vault-old")
        txn_id = str(lost.value.transaction_id)
        assert "step_keys" not in shop.service.get_transaction(txn_id).request
        assert _step_keys(shop.app) == ["vault-old:customer", "vault-old:attach"]
        (attached,) = [m["id"] for m in shop.app.store.payment_methods.values() if m.get("customer")]
        (open_vault,) = shop.service.reconcile().unresolved
        assert open_vault.transaction_id == txn_id and "'vault-old'" in open_vault.note
        mark = shop.sent()
        if resend == "vault":
            stored = shop.service.vault("stripe", "pm_card_visa", customer=buyer, idempotency_key="vault-old")
        else:
            again = shop.service.retry(txn_id)
            assert isinstance(again, Transaction)
            stored = again
        assert [r.transfer.idempotency_key for r in shop.recorder.since(mark)] == ["vault-old:customer",
                                                                                 "vault-old:attach"]
        assert (stored.id, stored.status, stored.token) == (txn_id, S.SUCCEEDED, attached)
        assert len(shop.app.store.customers) == 1 and shop.stored() == 1
        assert _step_keys(shop.app) == ["vault-old:customer", "vault-old:attach"]  # replayed, nothing made again
        assert shop.service.reconcile().unresolved == ()
    finally:
        shop.close()


@pytest.mark.parametrize("key", ["paywire:attach:vault-1", "paywire:customer:vault-1", "paywire:x"])
def test_a_key_in_paywires_own_key_space_is_refused_before_anything_is_recorded_or_sent(
        shop: Vaulting, key: str) -> None:
    """Where the keys of a command's steps are made: the provider would refuse the one sent second."""
    stored = shop.vault(key="vault-1")
    payment = shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"),
                                          customer=Customer(reference=stored.provider_reference))
    source, buyer = shop.source(), Customer(reference=stored.provider_reference)
    sent, before = shop.sent(), _kinds(shop.service)
    for call in (
        lambda: shop.service.sale(shop.provider, usd("5.00"), source=source, idempotency_key=key),
        lambda: shop.service.charge_vaulted(shop.provider, str(stored.token), usd("5.00"), customer=buyer,
                                            idempotency_key=key),
        lambda: shop.service.refund(payment.id, usd("1.00"), idempotency_key=key),
        lambda: shop.service.vault(shop.provider, source, customer=ADA, idempotency_key=key),
        lambda: shop.service.unvault(shop.provider, str(stored.token), idempotency_key=key),
    ):
        with pytest.raises(InvalidRequest) as refused:
            call()
        assert (refused.value.code, refused.value.param) == ("idempotency_key_reserved", "idempotency_key")
        assert "begins with 'paywire:'" in str(refused.value) and "nothing was recorded or sent" in str(refused.value)
        assert shop.sent() == sent
    assert _kinds(shop.service) == before and shop.stored() == 1


@pytest.mark.parametrize("key", [" paywire:attach:vault-1", "   paywire:customer:vault-1 "])
def test_a_key_the_provider_reads_in_paywires_own_key_space_is_refused_before_anything_is_recorded_or_sent(
        shop: Vaulting, key: str) -> None:
    """HTTP drops the spaces around a header's value: the provider reads ` paywire:attach:vault-1`
    as the key of vault-1's attach step (Stripe then refused the sale as a key used on another
    endpoint, and it was left unknown)."""
    shop.vault(key="vault-1")
    source, sent, before = shop.source(), shop.sent(), _kinds(shop.service)
    for call in (
        lambda: shop.service.sale(shop.provider, usd("5.00"), source=source, idempotency_key=key),
        lambda: shop.service.vault(shop.provider, source, customer=GRACE, idempotency_key=key),
    ):
        with pytest.raises(InvalidRequest) as refused:
            call()
        assert (refused.value.code, refused.value.param) == ("idempotency_key_padded", "idempotency_key")
        assert "nothing was recorded or sent" in str(refused.value)
    assert shop.sent() == sent and _kinds(shop.service) == before and shop.stored() == 1


@pytest.mark.parametrize("padded", [" order-7", "order-7 ", "  order-7  "])
def test_a_key_another_only_by_the_spaces_http_drops_is_refused_not_a_second_payment_of_one_order(
        ledger: Ledger, padded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PayPal reads `order-7 ` as `order-7` and answers with the order it made under it: the
    ledger held two payments of one PayPal order (and would count its capture twice). A new
    operation's key with spaces at either end is refused; the ledger's operations under such a
    key (an earlier release took it) are still found by it."""
    shop = Vaulting("paypal", ledger)
    try:
        first = shop.service.sale("paypal", usd("5.00"), source="paypal", idempotency_key="order-7",
                                  return_url="https://shop.example/back")
        sent, before = shop.sent(), _kinds(shop.service)
        with pytest.raises(InvalidRequest) as refused:
            shop.service.sale("paypal", usd("5.00"), source="paypal", idempotency_key=padded,
                              return_url="https://shop.example/back")
        assert (refused.value.code, refused.value.param) == ("idempotency_key_padded", "idempotency_key")
        assert "nothing was recorded or sent" in str(refused.value)
        assert shop.sent() == sent and _kinds(shop.service) == before
        assert [p.id for p in shop.service.list_payments()] == [first.id]
        with monkeypatch.context() as before:
            before.setattr(payments, "require_unpadded_key", lambda key: None)  # that release took any key
            earlier = shop.service.sale("paypal", usd("6.00"), source="paypal", idempotency_key=padded.replace("order", "legacy"),
                                        return_url="https://shop.example/back")
        sent = shop.sent()
        assert shop.service.sale("paypal", usd("6.00"), source="paypal", idempotency_key=padded.replace("order", "legacy"),
                                 return_url="https://shop.example/back") == earlier and shop.sent() == sent
    finally:
        shop.close()


def test_an_operation_an_earlier_release_recorded_under_a_key_in_paywires_space_is_still_found(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The space was the caller's before: an operation recorded under such a key is replayed, and
    resent, under it, not refused."""
    shop = Vaulting("stripe", ledger)
    try:
        with monkeypatch.context() as before:
            before.setattr(payments, "require_callers_key", lambda key: None)  # that release took any key
            paid = shop.service.sale("stripe", usd("5.00"), source="pm_card_visa", idempotency_key="paywire:sale-1")
            shop.app.inject(attrs.evolve(VAULT_WRITE["stripe"]))
            with pytest.raises(OutcomeUnknown) as lost:
                shop.service.vault("stripe", "pm_card_visa", idempotency_key="paywire:vault-1")
        sent = shop.sent()
        assert shop.service.sale("stripe", usd("5.00"), source="pm_card_visa",
                                 idempotency_key="paywire:sale-1") == paid and shop.sent() == sent
        stored = shop.service.vault("stripe", "pm_card_visa", idempotency_key="paywire:vault-1")
        assert (stored.id, stored.status) == (lost.value.transaction_id, S.SUCCEEDED) and shop.stored() == 1
        with pytest.raises(IdempotencyConflict):  # still that sale's key
            shop.service.sale("stripe", usd("6.00"), source="pm_card_visa", idempotency_key="paywire:sale-1")
    finally:
        shop.close()


# -- bad input and capabilities ---------------------------------------------------------------------
@pytest.mark.parametrize("source", ["", "  ", "4242424242424242", "4242 4242 4242 4242", "tok\x00en", 42, None])
def test_a_bad_source_is_refused_before_anything_is_recorded_or_sent(shop: Vaulting, source: Any) -> None:
    stored = shop.vault(key="vault-1")
    sent, before = shop.sent(), _kinds(shop.service)
    customer = Customer(reference=stored.provider_reference)
    for call in (lambda: shop.service.vault(shop.provider, source, customer=ADA),
                 lambda: shop.service.unvault(shop.provider, source),
                 lambda: shop.service.charge_vaulted(shop.provider, source, usd("5.00"), customer=customer)):
        with pytest.raises(InvalidRequest) as refused:
            call()
        assert refused.value.param == "source"
    assert shop.sent() == sent and _kinds(shop.service) == before


@pytest.mark.parametrize("field", ["email", "name", "phone", "id", "reference"])
def test_a_buyer_with_a_field_of_another_type_is_refused_before_anything_is_recorded_or_sent(
        shop: Vaulting, field: str) -> None:
    """A Customer whose id, email, name or phone was not text raised TypeError from the
    card-number guard (the vault), or reached the plugin's builders."""
    buyer = attrs.evolve(ADA, **{field: 42})
    sent = shop.sent()
    calls = (lambda: shop.service.vault(shop.provider, "tok_x", customer=buyer),
             lambda: shop.service.unvault(shop.provider, "tok_x", customer=buyer),
             lambda: shop.service.charge_vaulted(shop.provider, "tok_x", usd("5.00"), customer=buyer),
             lambda: shop.service.sale(shop.provider, usd("5.00"), source="tok_x",
                                       order=Order(id="A-1", customer=buyer)))
    for call in calls:
        with pytest.raises(InvalidRequest) as refused:
            call()
        assert refused.value.param is not None and refused.value.param.endswith(f"customer.{field}")
    assert shop.sent() == sent and shop.service.list_transactions() == []


def test_a_method_that_keeps_no_payment_methods_refuses_before_sending(provider: str, ledger: Ledger) -> None:
    """vault and unvault were sent on a method configured with can_vault = false (Stripe made a
    customer and attached the card); only the vaulted charge was refused."""
    shop = Vaulting(provider, ledger, capabilities={"vault": False})
    try:
        source = shop.source()
        sent = shop.sent()
        for call in (lambda: shop.service.vault(provider, source, customer=ADA),
                     lambda: shop.service.unvault(provider, "tok_x"),
                     lambda: shop.service.charge_vaulted(provider, "tok_x", usd("5.00"),
                                                         customer=Customer(reference="cust1"))):
            with pytest.raises(UnsupportedOperation) as refused:
                call()
            assert refused.value.code == "no_vault"
        assert shop.sent() == sent and shop.stored() == 0 and shop.service.list_transactions() == []
    finally:
        shop.close()
