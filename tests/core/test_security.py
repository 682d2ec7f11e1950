"""Security rules: card numbers refused, https only, secrets never shown."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import ConfigurationError, InvalidRequest, Secret
from paywire.security import RedactingFilter, check_endpoint, find_card_number, luhn_valid, redact, refuse_card_numbers


def with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError


pans = st.integers(12, 18).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)).map(with_check_digit)


@given(pans, st.sampled_from(["", " ", "-"]), st.sampled_from(["", "card ", "pan: ", "x/", "(", "number="]))
def test_any_luhn_valid_pan_anywhere_in_a_request_is_refused(pan: str, sep: str, noise: str) -> None:
    spaced = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    request = {"payment": {"notes": [noise + spaced + noise[::-1]]}}
    with pytest.raises(InvalidRequest) as caught:
        refuse_card_numbers(request)
    assert caught.value.param == "payment.notes[0]"
    assert pan not in str(caught.value)


@given(pans)
def test_an_altered_check_digit_is_not_a_pan(pan: str) -> None:
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    assert find_card_number(wrong) is None


def test_tokens_and_amounts_pass() -> None:
    refuse_card_numbers({"source": "pm_card_visa", "amount": 1999, "order": "A-1001", "phone": "+49 30 1234567"})


@given(st.uuids())
def test_uuids_are_not_card_numbers(value: object) -> None:
    refuse_card_numbers({"order": str(value), "note": f"order {value} of 2026-11-22"})


@pytest.mark.parametrize(
    ("url", "environment", "ok"),
    [
        ("https://api.stripe.com", "live", True),
        ("http://api.stripe.com", "live", False),
        ("http://127.0.0.1:9999", "sandbox", True),
        ("http://[::1]:9999", "sandbox", True),
        ("http://localhost:1", "sandbox", True),
        ("http://127.0.0.1:9999", "live", False),
        ("https://127.0.0.1:9999", "live", False),
        ("http://10.0.0.5", "sandbox", False),
        ("ftp://x", "sandbox", False),
    ],
)
def test_endpoints(url: str, environment: str, ok: bool) -> None:
    if ok:
        check_endpoint(url, environment=environment)
    else:
        with pytest.raises(ConfigurationError):
            check_endpoint(url, environment=environment)


def test_secret_never_shows_itself() -> None:
    secret = Secret("client-secret-XYZ")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}"):
        assert "XYZ" not in text
    assert secret.reveal() == "client-secret-XYZ"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_redaction_masks_keys_shapes_known_secrets_and_cards() -> None:
    Secret("opaque-paypal-secret-123")
    data = {
        "Authorization": "Bearer abc",
        "note": "key sk_test_abcdef123 and opaque-paypal-secret-123 card 4242 4242 4242 4242",
        "nested": [{"client_secret": "x"}],
        "amount": 5,
    }
    masked = redact(data)
    assert masked["Authorization"] == "***"
    assert "sk_test_abcdef123" not in masked["note"] and "opaque-paypal-secret-123" not in masked["note"]
    assert "4242 4242 4242 4242" not in masked["note"]
    assert masked["nested"][0]["client_secret"] == "***" and masked["amount"] == 5


def test_redacting_filter_masks_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("paywire.test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="paywire.test.redaction"):
        logger.info("sending %s with %s", "Bearer sk_live_1234567890", {"password": "hunter2"})
    assert "sk_live_1234567890" not in caplog.text and "hunter2" not in caplog.text


def test_paywire_ids_never_look_like_card_numbers() -> None:
    from paywire.security import find_card_number
    from paywire.service.keys import derived_key, new_id

    for _ in range(20_000):
        payment = new_id("pay")
        assert find_card_number(payment) is None and find_card_number(derived_key(payment, "capture", 1)) is None
        assert re.search(r"[0-9]{12}", payment) is None
