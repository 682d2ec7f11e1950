"""An order's attempts share its orderId, so search.transactions by it may answer in several
pages: the transaction an earlier attempt made under the key can lie past the first, and a retry
or reconcile that read only that page would write it twice, or conclude it was never made."""

from __future__ import annotations

import pytest

from paywire import Declined, Gateway, Money, Order, OutcomeUnknown, ProviderState, Subject
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

PAGE = 50  # what Braintree returns of a search at most


def _attempt(key: str, source: str = "fake-valid-nonce") -> Subject:
    return Subject(amount=Money.of("25.00", "EUR"), source=source, order=Order(id="order-many"),
                   idempotency_key=key)


def _declined_attempts(gateway: Gateway, count: int) -> None:
    for number in range(count):
        with pytest.raises(Declined):
            gateway.execute("braintree", "authorize", _attempt(f"try-{number}", "fake-processor-declined-visa-nonce"))


def _lost_after_declines(gateway: Gateway, emulator: BraintreeEmulator, earlier: int, key: str) -> None:
    """`earlier` declined attempts of the order, then its authorization under `key`, whose answer
    is lost."""
    _declined_attempts(gateway, earlier)
    emulator.inject(Fault(kind="drop_after", path="authorizePaymentMethod"))
    with pytest.raises(OutcomeUnknown):
        gateway.execute("braintree", "authorize", _attempt(key))


@pytest.mark.parametrize("earlier", [PAGE, PAGE + 7])
def test_a_retry_finds_its_authorization_past_the_first_page_of_its_order(
    gateway: Gateway, emulator: BraintreeEmulator, earlier: int
) -> None:
    _lost_after_declines(gateway, emulator, earlier, "the-one")
    retried = gateway.execute("braintree", "authorize", _attempt("the-one"))
    authorized = [t.id for t in emulator.transactions.values() if t.status == "AUTHORIZED"]
    assert (len(authorized), authorized[-1]) == (1, retried.reference), "the retry found the lost one"


def test_fetch_by_key_finds_the_authorization_past_the_first_page(
    gateway: Gateway, emulator: BraintreeEmulator
) -> None:
    _lost_after_declines(gateway, emulator, PAGE, "lost")
    fetched = gateway.execute("braintree", "fetch", _attempt("lost"))
    (made,) = [t.id for t in emulator.transactions.values() if t.status == "AUTHORIZED"]
    assert (fetched.state, fetched.reference) == (ProviderState.AUTHORIZED, made)


def test_an_unknown_key_is_still_not_found_after_every_page(gateway: Gateway) -> None:
    _declined_attempts(gateway, PAGE + 1)
    fetched = gateway.execute("braintree", "fetch", _attempt("never-sent"))
    assert fetched.state == ProviderState.NOT_FOUND
