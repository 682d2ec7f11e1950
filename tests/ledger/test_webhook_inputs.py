"""A webhook handed to the payment service with headers that are no mapping (None, a list of
pairs as some frameworks give them) is refused as a delivery paywire cannot verify, a typed error
naming what to pass, not an AttributeError from inside the gateway."""

from __future__ import annotations

import pytest

from paywire import WebhookVerificationError
from paywire.service import PaymentService


@pytest.mark.parametrize("headers", [None, [("FakePay-Signature", "x")], "FakePay-Signature: x"])
def test_webhook_headers_that_are_no_mapping_are_refused(service: PaymentService, headers: object) -> None:
    with pytest.raises(WebhookVerificationError) as refused:
        service.receive_webhook("fakepay", headers, b"{}")  # type: ignore[arg-type]
    assert "headers" in str(refused.value) and "mapping" in str(refused.value)
    with pytest.raises(WebhookVerificationError):
        service.receive_notification("fakepay", headers, b"{}")  # type: ignore[arg-type]
    assert service.list_payments() == []
