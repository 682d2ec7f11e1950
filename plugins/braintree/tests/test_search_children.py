"""Braintree's search.transactions finds partial captures too: a capture made without an orderId
(the Control Panel's, another client's) takes its authorization's orderId and custom fields, the
paywire_key among them. Braintree documents no order for the results, so a search by the order
may list that capture before the authorization it belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import paywire_braintree
from paywire import Gateway, Money, Order, OutcomeUnknown, Plugins, Retry, Subject
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.proxy import RewritingProxy
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def _newest_first(body: bytes, payload: Any) -> Any:
    """Search results in the opposite order to the emulator's."""
    if "search" in json.loads(body)["query"] and isinstance(payload.get("data"), dict):
        connection = payload["data"]["search"]["transactions"]
        connection["edges"] = connection["edges"][::-1]
    return payload


@pytest.fixture
def gateways(sandbox: Sandbox, emulator: BraintreeEmulator) -> Iterator[tuple[Gateway, Gateway]]:
    """A gateway on the emulator, and one whose searches come newest first."""
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(emulator) as server:
        proxy = RewritingProxy(server.url, _newest_first)
        try:
            with Gateway([sandbox.method("braintree", server.url)], plugins=plugins, retry=Retry.never()) as plain, \
                    Gateway([sandbox.method("braintree", proxy.url)], plugins=plugins, retry=Retry.never()) as newest:
                yield plain, newest
        finally:
            proxy.close()


def test_a_lost_authorization_is_found_by_its_key_not_as_a_capture_of_it(
        gateways: tuple[Gateway, Gateway], emulator: BraintreeEmulator) -> None:
    plain, newest = gateways
    subject = Subject(amount=Money.of("50.00", EUR), source="fake-valid-nonce", order=Order(id="S-1"),
                      idempotency_key="search-children-auth")
    emulator.inject(Fault(kind="drop_after", path="authorizePaymentMethod"))
    with pytest.raises(OutcomeUnknown):
        plain.execute("braintree", "authorize", subject)
    (authorization,) = emulator.transactions
    # captured in part without an orderId: the capture takes the authorization's, and its custom fields
    plain.execute("braintree", "capture", Subject(reference=authorization, amount=Money.of("20.00", EUR), final=False))
    assert len(emulator.transactions) == 2

    found = newest.execute("braintree", "fetch", keyed_fetch(subject))
    assert (found.reference, found.authorized, found.captured) == (authorization, Money.of("50.00", EUR),
                                                                   Money.of("20.00", EUR))
    replayed = newest.execute("braintree", "authorize", subject)
    assert (replayed.reference, replayed.captured) == (authorization, Money.of("20.00", EUR))
    assert len(emulator.transactions) == 2, "nothing charged again"


def keyed_fetch(subject: Subject) -> Subject:
    """The fetch of the first operation by its key and order, as reconcile asks it."""
    return Subject(order=subject.order, idempotency_key=subject.idempotency_key, flow="authorize")
