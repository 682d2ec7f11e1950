"""A reauthorization within the authorization's 3-day honor period: PayPal refuses it (422
REAUTHORIZATION_TOO_SOON; allowed from day 4 to day 29 of the original authorization), and the
plugin reports a typed refusal that says nothing happened: the authorization stays as it was, and
captures still act on it. PayPal's clock is the emulator's, moved by the test. Real emulator on
loopback."""

from __future__ import annotations

import pytest

from paywire import Money, ProviderState, StateError

EUR = "EUR"
HONOR = 3.0  # days


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _authorization(paypal, authorization: str) -> tuple[str, str | None, int]:
    with paypal.app.lock:
        auth = paypal.app.authorizations[authorization]
        return auth.status, auth.reauthorized_by, len(paypal.app.authorizations)


@pytest.mark.parametrize("days", [0.0, HONOR - 1 / 86400])
def test_a_reauthorization_in_the_honor_period_is_refused_and_changes_nothing(paypal, days):
    authorization = paypal.authorized("100.00")
    before = _authorization(paypal, authorization.reference)
    paypal.days_pass(days)
    with pytest.raises(StateError) as refused:
        paypal.run("reauthorize", reference=authorization.reference, amount=eur("100.00"),
                   idempotency_key=paypal.key())
    error = refused.value
    assert (error.code, error.status) == ("REAUTHORIZATION_TOO_SOON", 422)
    assert not error.may_have_been_sent and not error.state_conflict and not error.retryable
    assert "nothing was reauthorized" in str(error) and "honor period" in str(error)
    assert _authorization(paypal, authorization.reference) == before == ("CREATED", None, before[2])
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.reference, fetched.authorized) == (ProviderState.AUTHORIZED,
                                                                      authorization.reference, eur("100.00"))
    capture = paypal.run("capture", reference=authorization.reference, amount=eur("40.00"), final=False,
                         idempotency_key=paypal.key())
    assert capture.succeeded and capture.amount == eur("40.00")


def test_a_reauthorization_after_the_honor_period_renews_the_authorization(paypal):
    authorization = paypal.authorized("100.00")
    paypal.days_pass(HONOR)
    renewed = paypal.run("reauthorize", reference=authorization.reference, amount=eur("100.00"),
                         idempotency_key=paypal.key())
    assert renewed.succeeded and renewed.reference != authorization.reference
    assert renewed.references["reauthorized"] == authorization.reference


def test_a_reauthorization_after_29_days_finds_the_authorization_expired(paypal):
    authorization = paypal.authorized("100.00")
    paypal.days_pass(29)
    with pytest.raises(StateError) as refused:
        paypal.run("reauthorize", reference=authorization.reference, idempotency_key=paypal.key())
    assert refused.value.code == "AUTHORIZATION_EXPIRED"


def test_a_reauthorization_expires_with_the_original_authorizations_29_days(paypal):
    """A reauthorization restarts the honor period, not the 29 days: "if you do a reauthorization
    on the 27th day of the authorization, you get only two days of honor period" (PayPal), and
    after 29 days of the original a new authorization is needed. A capture of it then finds it
    expired, and so does a read."""
    authorization = paypal.authorized("100.00")
    paypal.days_pass(20)
    renewed = paypal.run("reauthorize", reference=authorization.reference, amount=eur("100.00"),
                         idempotency_key=paypal.key())
    with paypal.app.lock:
        assert (paypal.app.authorizations[renewed.reference].expiration_time
                == paypal.app.authorizations[authorization.reference].expiration_time)
    paypal.days_pass(9 - 1 / 86400)  # the last second of the original's 29 days: it still takes a capture
    fetched = paypal.run("fetch", reference=renewed.reference)
    assert (fetched.state, fetched.reference) == (ProviderState.AUTHORIZED, renewed.reference)
    paypal.days_pass(1 / 86400)
    with pytest.raises(StateError) as refused:
        paypal.run("capture", reference=renewed.reference, amount=eur("40.00"), idempotency_key=paypal.key())
    assert refused.value.code == "AUTHORIZATION_EXPIRED"
    with paypal.app.lock:
        assert paypal.app.authorizations[renewed.reference].status == "EXPIRED"
