"""What a listing or a reconciliation run is asked for: a state or a status that does not exist
(a typo) is refused, not answered with nothing, and a count that is not a whole number both
ledgers take is refused, not read as "no limit" by SQLite, an error by PostgreSQL and an
OverflowError past 64 bits."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import InvalidRequest
from paywire.service import PaymentService


@pytest.mark.parametrize("call", [
    lambda s: s.list_payments(state="authorised"),
    lambda s: s.list_transactions(statuses=["unknwon"]),
    lambda s: s.list_transactions(statuses="unknown"),  # a str is a sequence of letters
    lambda s: s.reconcile(limit=-1),
    lambda s: s.reconcile(limit=True),
    lambda s: s.reconcile(limit=2**70),
    lambda s: s.reconcile(limit=1.5),
    lambda s: s.match_unmatched(limit=-1),
    lambda s: s.match_unmatched(limit=1.5),
    lambda s: s.match_unmatched(limit=2**64),
], ids=["state typo", "status typo", "statuses a str", "reconcile -1", "reconcile True", "reconcile 2**70",
        "reconcile 1.5", "match -1", "match 1.5", "match 2**64"])
def test_a_listing_or_a_run_asked_for_what_cannot_be_is_refused(service: PaymentService, call: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        call(service)
    assert refused.value.param in ("state", "statuses", "limit"), refused.value


def test_every_state_and_status_is_taken(service: PaymentService) -> None:
    from paywire.service.inputs import PAYMENT_STATES, TRANSACTION_STATUSES

    assert "authorized" in PAYMENT_STATES and "unknown" in TRANSACTION_STATUSES
    for state in PAYMENT_STATES:
        assert service.list_payments(state=state) == []
    assert service.list_transactions(statuses=TRANSACTION_STATUSES) == []
    assert service.reconcile(limit=0).settled == () and service.match_unmatched(limit=0).applied == 0
