"""A return URL is where the provider sends the buyer back: one no provider can send a buyer to
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
