"""A caller's idempotency key belongs to the provider account, as the provider scopes it.

The service sends the caller's key to the provider as it is, and Stripe, PayPal and Braintree
scope a key to the account. Two methods configured on one account ("fakepay" and
"fakepay_single" share FakePay's credentials) therefore share one key space: a key used on one
is refused on the other before anything is sent or recorded. Methods on two accounts (other
credentials, here another FakePay emulator) keep keys of their own.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import (
    ConfigurationError,
    Gateway,
    IdempotencyConflict,
    MethodConfig,
    OutcomeUnknown,
    Plugins,
    ProviderUnavailable,
    Retry,
    hookimpl,
)
from paywire.ledger import Ledger, Payment, PaymentState, Transaction, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from tests.ledger.fakepay import CREDENTIALS, FakePayApp, FakePayPlugin
from tests.ledger.support import eur

S = TransactionStatus
KEY = "order-1001-authorize"


def recorded(service: PaymentService, app: FakePayApp) -> tuple[int, list[Payment], list[Transaction]]:
    """What reached the provider (requests) and what the ledger holds."""
    with app.lock:
        sent = len(app.calls)
    return sent, service.list_payments(limit=1000), service.list_transactions()


def refused_as_used_on(conflict: pytest.ExceptionInfo[IdempotencyConflict], method: str, kind: str) -> bool:
    message = str(conflict.value)
    return (conflict.value.code == "idempotency_key_reused" and f"used on method {method!r} for a {kind}" in message
            and "use a new key" in message)


@pytest.mark.parametrize("first", ["answered", "unknown", "failed retryably"])
@pytest.mark.parametrize("amount", ["20.00", "21.00"], ids=["same parameters", "other parameters"])
def test_a_key_used_on_one_method_is_refused_on_the_accounts_other_method(
    service: PaymentService, app: FakePayApp, first: str, amount: str,
) -> None:
    """The second method's call is a conflict, not a second payment holding the first's provider
    object (same parameters: the provider replays its first answer) nor an unknown outcome nothing
    settles (other parameters: the provider refuses the reused key). The first method's own calls
    with the key go on as before: replayed, resent after an unknown outcome, retried after a
    retryable failure."""
    if first == "unknown":
        app.inject(Fault("drop_after", method="POST", path="/v1/payments$"))
    elif first == "failed retryably":
        app.not_processed()
    try:
        payment_id = service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key=KEY).id
    except (OutcomeUnknown, ProviderUnavailable) as exc:
        assert first != "answered"
        payment_id = exc.payment_id or ""
    before = recorded(service, app)

    with pytest.raises(IdempotencyConflict) as conflict:
        service.authorize("fakepay_single", eur(amount), source="tok_ok", idempotency_key=KEY)
    assert refused_as_used_on(conflict, "fakepay", "authorize") and conflict.value.payment_id == payment_id
    assert recorded(service, app) == before  # nothing sent, nothing recorded

    payment = service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key=KEY)
    assert (payment.id, payment.state, payment.authorized) == (payment_id, PaymentState.AUTHORIZED, eur("20.00"))
    assert app.count("authorize") == 1 and len(service.list_payments()) == 1
    attempts = [(t.method, t.status) for t in service.list_transactions()]
    expected = [("fakepay", S.SUCCEEDED)]
    assert attempts == ([("fakepay", S.FAILED), *expected] if first == "failed retryably" else expected)
    with pytest.raises(IdempotencyConflict):  # still, after it succeeded
        service.authorize("fakepay_single", eur(amount), source="tok_ok", idempotency_key=KEY)


def test_a_follow_ups_key_used_on_the_accounts_other_method_is_refused(
    service: PaymentService, app: FakePayApp,
) -> None:
    """A capture, void or refund resolves its method from its payment; the key it is given is
    looked up across that method's account all the same, and so is a first operation's key that
    a follow-up used."""
    cards = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    service.capture(cards.id, eur("10.00"), final=False, idempotency_key="order-1001-capture")
    other = service.authorize("fakepay_single", eur("50.00"), source="tok_ok")
    sold = service.sale("fakepay_single", eur("30.00"), source="tok_ok")
    before = recorded(service, app)
    for operate in (lambda key: service.capture(other.id, idempotency_key=key),
                    lambda key: service.void(other.id, idempotency_key=key),
                    lambda key: service.refund(sold.id, eur("10.00"), idempotency_key=key),
                    lambda key: service.sale("fakepay_single", eur("10.00"), source="tok_ok", idempotency_key=key)):
        with pytest.raises(IdempotencyConflict) as conflict:
            operate("order-1001-capture")
        assert refused_as_used_on(conflict, "fakepay", "capture") and conflict.value.payment_id == cards.id
    assert recorded(service, app) == before and app.count("capture", cards.reference) == 1
    assert service.capture(other.id, idempotency_key="order-1002-capture").captured == eur("50.00")


@pytest.fixture
def second_account() -> Iterator[tuple[FakePayApp, str]]:
    """Another FakePay account: its own emulator, so its own key space at the provider."""
    app = FakePayApp()
    with EmulatorServer(app) as server:
        yield app, server.url


def two_accounts(url: str, other_url: str) -> Gateway:
    """FakePay's account at `url` with its methods "fakepay" and "fakepay_single", and another
    account at `other_url` with the method "other_shop"."""
    plugins = Plugins()
    plugins.register(FakePayPlugin(), "fakepay")
    other = {"api_key": "fk_test_othershop789", "webhook_secret": "fkwh_othershop012"}
    methods = [MethodConfig(code="fakepay", base_url=url, credentials=dict(CREDENTIALS)),
               MethodConfig(code="fakepay_single", provider="fakepay", base_url=url, credentials=dict(CREDENTIALS)),
               MethodConfig(code="other_shop", provider="fakepay", base_url=other_url, credentials=other)]
    return Gateway(methods, plugins=plugins, retry=Retry.never())


def test_methods_on_different_accounts_keep_keys_of_their_own(
    fakepay: tuple[FakePayApp, str], second_account: tuple[FakePayApp, str], ledger: Ledger,
) -> None:
    """Two methods of one provider with other credentials are two accounts: the provider sees the
    same key twice, once on each, so the ledger holds two payments, each with its own object."""
    (app, url), (other_app, other_url) = fakepay, second_account
    with two_accounts(url, other_url) as gateway:
        service = PaymentService(gateway, ledger)
        made: dict[str, Any] = {}
        for method in ("fakepay", "other_shop"):
            payment = service.authorize(method, eur("20.00"), source="tok_ok", idempotency_key=KEY)
            made[method] = service.capture(payment.id, eur("5.00"), idempotency_key="order-1001-capture")
        assert made["fakepay"].id != made["other_shop"].id
        assert [(p.method, p.captured) for p in sorted(service.list_payments(), key=lambda p: p.method)] == [
            ("fakepay", eur("5.00")), ("other_shop", eur("5.00"))]
        assert (app.count("authorize"), app.count("capture")) == (other_app.count("authorize"),
                                                                  other_app.count("capture")) == (1, 1)
        assert made["fakepay"].reference in app.payments and made["other_shop"].reference in other_app.payments
        for method in ("fakepay", "other_shop"):  # and each replays its own
            again = service.authorize(method, eur("20.00"), source="tok_ok", idempotency_key=KEY)
            assert again.id == made[method].id


ACCOUNT = {"fakepay": "one", "fakepay_single": "one", "other_shop": "two"}
_examples = itertools.count()


@settings(suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(st.sampled_from(sorted(ACCOUNT)), st.sampled_from(["a", "b"]),
                                 st.sampled_from(["10.00", "12.00"])), min_size=1, max_size=8))
def test_a_key_makes_one_payment_and_one_provider_call_per_account(
    fakepay: tuple[FakePayApp, str], second_account: tuple[FakePayApp, str], ledger: Ledger,
    calls: list[tuple[str, str, str]],
) -> None:
    """Whatever the order of calls on the methods of two accounts: a key's first call on an
    account owns it there; the same call again is that payment, any other call on that account
    is a conflict; each (account, key) is one payment in the ledger and one provider request."""
    (app, url), (other_app, other_url) = fakepay, second_account
    prefix = f"ex{next(_examples)}-"  # the fixtures outlive an example: each one's keys are its own
    sent = [len(a.calls) for a in (app, other_app)]
    owners: dict[tuple[str, str], tuple[str, str, str]] = {}  # (account, key) -> (method, amount, payment)
    with two_accounts(url, other_url) as gateway:
        service = PaymentService(gateway, ledger)
        for method, key, amount in calls:
            owner = owners.get((ACCOUNT[method], key))
            try:
                payment = service.authorize(method, eur(amount), source="tok_ok", idempotency_key=prefix + key)
            except IdempotencyConflict as conflict:
                assert owner is not None and owner[:2] != (method, amount) and conflict.payment_id == owner[2]
                continue
            assert owner is None or (owner[:2] == (method, amount) and owner[2] == payment.id)
            owners[ACCOUNT[method], key] = (method, amount, payment.id)
        keyed = {t.payment_id for t in service.list_transactions() if t.idempotency_key.startswith(prefix)}
        assert keyed == {payment_id for _, _, payment_id in owners.values()}  # one payment per (account, key)
    requests = [len(a.calls) - before for a, before in zip((app, other_app), sent, strict=True)]
    assert requests == [sum(1 for account, _ in owners if account == name) for name in ("one", "two")]


class Vault:
    """A `get_secret` hook serving FakePay's credentials, except those in `down`, (method, name)
    pairs it fails for: a vault down, or refusing one path."""

    def __init__(self, down: set[tuple[str, str]]) -> None:
        self.down = down

    @hookimpl
    def get_secret(self, gateway: str, name: str) -> str | None:
        if (gateway, name) in self.down:
            raise OSError("the vault is down")
        return CREDENTIALS[name]

    def gateway(self, url: str) -> Gateway:
        """"fakepay" and "fakepay_single", one FakePay account, their credentials from this vault."""
        plugins = Plugins()
        plugins.register(FakePayPlugin(), "fakepay")
        plugins.register(self, "vault")
        methods = [MethodConfig(code="fakepay", base_url=url),
                   MethodConfig(code="fakepay_single", provider="fakepay", base_url=url)]
        return Gateway(methods, plugins=plugins, retry=Retry.never())


def test_a_secrets_hook_down_for_a_moment_does_not_split_the_account_for_good(
    fakepay: tuple[FakePayApp, str], ledger: Ledger,
) -> None:
    """Whether two methods are one account is read from their credentials once; a `get_secret`
    hook failing then (a vault down) makes them two accounts for that call only. Remembered, the
    split would outlive the outage, and a key used on one method would be sent again on the other:
    a second payment holding the first's provider object."""
    app, url = fakepay
    vault = Vault({("fakepay_single", "api_key"), ("fakepay_single", "webhook_secret")})
    with vault.gateway(url) as gateway:
        service = PaymentService(gateway, ledger)
        before = recorded(service, app)
        with pytest.raises(ConfigurationError) as refused:  # which methods share the key cannot be told
            service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="during-the-outage")
        assert refused.value.code == "account_unknown" and refused.value.retryable
        assert recorded(service, app) == before
        service.authorize("fakepay", eur("20.00"), source="tok_ok")  # a key of its own needs no account
        vault.down.clear()
        first = service.authorize("fakepay_single", eur("20.00"), source="tok_ok", idempotency_key=KEY)
        before = recorded(service, app)
        with pytest.raises(IdempotencyConflict) as conflict:
            service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key=KEY)
        assert refused_as_used_on(conflict, "fakepay_single", "authorize") and conflict.value.payment_id == first.id
        assert recorded(service, app) == before


def test_a_key_is_refused_while_a_secrets_hook_cannot_tell_the_account(
    fakepay: tuple[FakePayApp, str], make_ledger: Callable[[], Ledger],
) -> None:
    """Two workers on one ledger, one with its vault refusing a credential of "fakepay_single"
    that only tells the account (its webhook secret; its API key, all its requests need, still
    served). That worker cannot tell that the two methods share the key, so it neither finds the
    other worker's record under the key nor takes the lock the other holds. Its call is refused,
    retryably, before anything is recorded or sent: while the first call is in flight (else two
    requests with one key at once), and after it (else the provider's replay of the first
    answer, a second payment holding the first's provider object); once the vault serves it
    again, the key is the other method's."""
    app, url = fakepay
    healthy, failing = Vault(set()), Vault({("fakepay_single", "webhook_secret")})
    with healthy.gateway(url) as one, failing.gateway(url) as other:
        first, second = PaymentService(one, make_ledger()), PaymentService(other, make_ledger())
        app.inject(Fault("hold", method="POST", path="/v1/payments$"))
        out: list[Any] = []
        sending = threading.Thread(target=lambda: out.append(
            first.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key=KEY)))
        sending.start()
        try:
            assert app.wait_until_held(1), "the first call reached the provider"
            before = recorded(first, app)
            with pytest.raises(ConfigurationError) as refused:
                second.authorize("fakepay_single", eur("20.00"), source="tok_ok", idempotency_key=KEY)
            assert refused.value.code == "account_unknown" and refused.value.retryable
            assert recorded(first, app) == before
        finally:
            app.release_held()
            sending.join(30)
        (made,) = out
        assert isinstance(made, Payment) and made.state == PaymentState.AUTHORIZED
        before = recorded(first, app)
        with pytest.raises(ConfigurationError):
            second.authorize("fakepay_single", eur("20.00"), source="tok_ok", idempotency_key=KEY)
        assert recorded(first, app) == before
        failing.down.clear()
        with pytest.raises(IdempotencyConflict) as conflict:
            second.authorize("fakepay_single", eur("20.00"), source="tok_ok", idempotency_key=KEY)
        assert refused_as_used_on(conflict, "fakepay", "authorize") and conflict.value.payment_id == made.id
        assert recorded(first, app) == before and app.count("authorize") == 1
