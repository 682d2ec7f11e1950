"""A void of a payment with a capture (`Capabilities.void_after_capture`, PayPal): where the
provider allows it, it releases what the authorization has left, and is refused before sending
while a capture is in flight (the provider may take the rest with it) or once nothing is left;
elsewhere any capture refuses it."""

from __future__ import annotations

import pytest

from paywire import Capabilities, StateError
from paywire.ledger import TransactionStatus
from paywire.service import rules
from tests.ledger.ledger_rows import authorized, history, row

S = TransactionStatus
RELEASES = Capabilities(capture_multiple=True, void_after_capture=True)


def _captured(minor: int, status: str = S.SUCCEEDED, **flags: bool):
    payment = authorized(10_000)
    txns = [*history(payment, "capture"), row(payment, "capture", minor, status, provider_reference="cap_1")]
    return rules.derive(payment, txns, **flags), txns


def test_a_void_after_a_partial_capture_is_allowed_where_the_provider_releases_the_rest() -> None:
    payment, txns = _captured(3_000)
    rules.check_void(payment, txns, RELEASES)
    with pytest.raises(StateError) as refused:
        rules.check_void(payment, txns, Capabilities(capture_multiple=True))
    assert refused.value.code == "void_after_capture"


@pytest.mark.parametrize(("minor", "status", "flags", "code"), [
    (3_000, S.UNKNOWN, {}, "capture_in_flight"),
    (3_000, S.PENDING, {}, "capture_in_flight"),
    (10_000, S.SUCCEEDED, {}, "void_after_capture"),  # all of it captured
    (3_000, S.SUCCEEDED, {"capture_closed": True}, "void_after_capture"),  # a final capture, or a void, released it
])
def test_a_void_after_a_capture_is_refused_when_it_could_release_nothing_for_sure(
        minor: int, status: str, flags: dict[str, bool], code: str) -> None:
    payment, txns = _captured(minor, status, **flags)
    with pytest.raises(StateError) as refused:
        rules.check_void(payment, txns, RELEASES)
    assert refused.value.code == code
