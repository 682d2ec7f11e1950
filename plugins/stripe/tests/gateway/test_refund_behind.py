"""A refund Stripe refuses as more than the charge has left, because a refund made without
paywire (the dashboard; no event yet) took part of it: the ledger is behind Stripe, and after the
refusal it counts that refund, whether the refund was a first send or a retry under its key of one
that never arrived. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.testing.emulator import Fault


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(outside=50, asked=60, retried=False)
@example(outside=50, asked=60, retried=True)
@given(outside=st.integers(1, 99), asked=st.one_of(st.none(), st.integers(1, 100)), retried=st.booleans())
def test_a_refund_refused_for_an_outside_refund_leaves_the_ledgers_totals_at_stripes(
        service: PaymentService, stripe: Any, app: Any, api: Any, outside: int, asked: int | None,
        retried: bool) -> None:
    payment = service.sale("stripe", Money.of("100", "EUR"), source="pm_card_visa")
    amount = None if asked is None else Money.of(str(asked), "EUR")
    key = f"refund-{payment.id}"
    if retried:  # its first send never reached Stripe, and its answer is a 500
        app.inject(Fault(kind="status", status=500, path=r"^/v1/refunds$"))
        with pytest.raises(OutcomeUnknown):
            service.refund(payment.id, amount, idempotency_key=key)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": outside * 100})
    try:
        service.refund(payment.id, amount, idempotency_key=key)
    except StateError as refused:
        assert refused.state_conflict and refused.details["reconciled"] is True
        later = service.get_payment(payment.id)
        held = stripe.fetch(later.reference)
        assert (later.captured, later.refunded) == (held.captured, held.refunded)
    else:  # it fit in what was left: the outside refund is for its event, or reconcile(), to tell
        assert outside + (asked or 100 - outside) <= 100
