"""What the caller gives a payment as it starts that providers read: its return URL, its options.

A return URL is where the provider sends the buyer back: one no provider can send a buyer to
(relative, without a host, with spaces) or that runs in the shop's page (`javascript:`, `data:`)
is refused before anything is recorded or sent; the error names the parameter, never the URL
(which may hold what the guard against card numbers would refuse)."""

from __future__ import annotations

import pytest

from paywire import InvalidRequest
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur


def calls(app: FakePayApp) -> int:
    with app.lock:
        return len(app.calls)


@pytest.mark.parametrize("url", [
    "/checkout/back", "shop.example/back", "https:///back", "https://shop.example/back to the shop",
    "https://shop.example/back\n", " https://shop.example/back", "javascript:alert(document.cookie)",
    "JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
    "https://[::1/back", "4242 4242 4242 4242",
])
def test_a_return_url_no_buyer_can_be_sent_back_to_is_refused(service: PaymentService, app: FakePayApp,
                                                              url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        service.authorize("fakepay", eur("10.00"), source="tok_ok", return_url=url)
    assert refused.value.param == "return_url" and "nothing was recorded or sent" in str(refused.value)
    assert "4242" not in str(refused.value) and "alert" not in str(refused.value)
    assert service.list_payments() == [] and service.list_transactions() == [] and calls(app) == 0


@pytest.mark.parametrize("url", ["https://shop.example/back?order=A-1#done", "http://127.0.0.1:8000/back",
                                 "myshopapp://stripe-redirect", "https://[::1]:8443/back"])
def test_an_absolute_return_url_is_taken(service: PaymentService, url: str) -> None:
    """A mobile app's own scheme is what Stripe's SDKs pass as the return URL."""
    assert service.authorize("fakepay", eur("10.00"), source="tok_ok", return_url=url).state == "authorized"


@pytest.mark.parametrize("value", [10**5000, -(10**5000), {"deep": [2**64]}, float("nan"), float("inf"),
                                   {"x": [float("-inf")]}],
                         ids=["5001 digits", "-5001 digits", "2**64 nested", "nan", "inf", "-inf nested"])
def test_options_holding_a_number_no_provider_reads_are_refused(service: PaymentService, app: FakePayApp,
                                                                 value: object) -> None:
    """An int past 64 bits (one past 4300 digits was a bare ValueError, from the request's
    fingerprint) or a float that is no number (JSON has none: `NaN` reached the provider) in the
    options is refused before anything is recorded or sent, by `complete` as by `authorize`."""
    with pytest.raises(InvalidRequest) as refused:
        service.authorize("fakepay", eur("10.00"), source="tok_ok", options={"risk": value})
    assert refused.value.param == "options" and "nothing was recorded or sent" in str(refused.value)
    assert service.list_payments() == [] and calls(app) == 0
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    with pytest.raises(InvalidRequest) as refused:
        service.complete(payment.id, options={"risk": value})
    assert refused.value.param == "options" and calls(app) == 1
    assert [t.kind for t in service.list_transactions()] == ["authorize"]
