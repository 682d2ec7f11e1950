"""Security rules: card numbers refused, https only, secrets never shown."""

from __future__ import annotations

import logging
import re
import threading
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import ConfigurationError, Secret, Subject, security
from paywire.security import RedactingFilter, check_endpoint, redact


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
        ("https://127.1:9999", "live", False),
        ("https://[::ffff:127.0.0.1]:9999", "live", False),
        ("https://0.0.0.0", "live", False),
        ("https://localhost.:9999", "live", False),
        ("http://0x7f.1:9999", "sandbox", True),
        ("https://api.stripe.com.", "live", True),
        ("https://8.8.8.8", "live", True),
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




@pytest.mark.parametrize(("text", "kept"), [
    ("https://hooks.stripe.com/3d_secure_2/hosted?payment_intent=pi_3NabcDEF"
     "&payment_intent_client_secret=pi_3NabcDEF_secret_XyZ123abc", "payment_intent=pi_3NabcDEF"),
    ("http://127.0.0.1:1/redirect/authenticate/src_1AbcDe?client_secret=src_client_secret_AbCdEf12",
     "/redirect/authenticate/src_1AbcDe?client_secret="),
    ("setup seti_1Abcdef_secret_ABCDEFG", "setup "),
])
def test_a_client_secret_is_masked_wherever_it_stands(text: str, kept: str) -> None:
    """A client secret lets whoever holds it act on its payment: masked in logs and summaries,
    in the query of a buyer's redirect as much as alone."""
    masked = redact(text)
    assert "_secret_" not in masked and "***" in masked and kept in masked


@pytest.mark.parametrize("url", ["https://user:Pw9xSecret@api.example.com/v1", "http://user:Pw9x/Secret@10.0.0.1/v1",
                                 "http://user:Pw9x#Secret@api.example.com/v1"])
def test_an_endpoint_refused_never_shows_its_password(url: str) -> None:
    from paywire.errors import ConfigurationError
    from paywire.security import check_endpoint

    with pytest.raises(ConfigurationError) as refused:
        check_endpoint(url.replace("https", "http"), environment="live")
    assert "Secret" not in str(refused.value) and "Pw9x" not in str(refused.value) and "***" in str(refused.value)


def test_words_around_secret_are_not_a_client_secret() -> None:
    for text in ("the_secret_garden", "my_payment_secret_word", "https://www.paypal.com/checkoutnow?token=5O19012"):
        assert redact(text) == text

@given(st.lists(st.one_of(st.sampled_from(["Authorization", "author", "x-api-key", "x-api", "client_secret", "client",
                                            "CVC", "cv", "note", "PassWord", "pass", "tokens", "tok", "id"]), st.text(max_size=12)),
                min_size=1, max_size=12))
def test_a_key_is_masked_by_its_name_every_time_it_comes(keys: list[str]) -> None:
    """Whether a key names a secret is remembered by key; the answer is the same each time."""
    for key in keys + keys[::-1]:
        sensitive = re.search(r"authorization|secret|password|passwd|token|api[_-]?key|client[_-]?secret|cvc|"
                              r"cvv|card[_-]?number|signature|cookie", key, re.IGNORECASE) is not None
        assert redact({key: "plain value"}) == {key: "***" if sensitive else "plain value"}
        assert redact(MappingProxyType({key: ["plain value"]})) == {key: "***" if sensitive else ["plain value"]}


def test_a_secret_known_later_is_masked_in_text_redacted_before() -> None:
    """Redaction remembers the texts it has seen; a secret wrapped afterwards still masks them."""
    text = "the token opaque-later-secret-9f3a was logged"
    assert redact(text) == text  # not known yet, of no recognisable shape
    Secret("opaque-later-secret-9f3a")
    assert redact(text) == "the token *** was logged"
    assert redact({"note": text}) == {"note": "the token *** was logged"}

def test_redacting_filter_masks_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("paywire.test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="paywire.test.redaction"):
        logger.info("sending %s with %s", "Bearer sk_live_1234567890", {"password": "hunter2"})
    assert "sk_live_1234567890" not in caplog.text and "hunter2" not in caplog.text


def test_redacting_filter_masks_the_error_texts_of_a_logged_stack_trace(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("sk_live_trace_0123456789abcdef")
    log = security.get_logger("paywire.test.trace")
    try:
        raise RuntimeError(f"connect with {secret.reveal()} for card 4242 4242 4242 4242")
    except RuntimeError:
        with caplog.at_level(logging.ERROR, logger="paywire.test.trace"):
            log.exception("it failed")
    assert "Traceback" in caplog.text and "RuntimeError: connect with *** for card ***" in caplog.text
    assert secret.reveal() not in caplog.text and "4242 4242" not in caplog.text


def test_redaction_runs_while_other_threads_make_secrets() -> None:
    """A secret wrapped on one thread (a credential loaded, a token refreshed) while another
    redacts a summary: the redaction neither fails nor misses a secret known before it began."""
    before = security._known_secrets
    made = [Secret(f"race-{n}-{'x' * 8}") for n in range(1_000)]  # a set long enough to be walked mid-change
    stop = threading.Event()
    failures: list[BaseException] = []

    def make() -> None:
        n = 0
        while not stop.is_set():
            Secret(f"race-new-{n}-{'y' * 8}")
            n += 1

    def scrub() -> None:
        try:
            for n in range(1_500):
                secret = made[n % len(made)].reveal()
                assert secret not in redact(f"call {n}: {secret}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=scrub) for _ in range(2)]
    maker = threading.Thread(target=make)
    try:
        maker.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        maker.join()
        security._known_secrets = before  # the rest of the run redacts against the usual few
        security._secrets_version += 1
    assert failures == []


def test_an_error_never_carries_a_card_number_or_a_secret_it_was_given() -> None:
    """A provider may echo the card or a credential in its error text, and a refusal may quote the
    caller's value: the error is raised on, printed and shown to the buyer, so it is masked."""
    from paywire.errors import Declined, InvalidRequest

    key = Secret("fk_test_echoed_key_1234")
    declined = Declined(f"card 4111 1111 1111 1111 was declined (key {key.reveal()})",
                        customer_message="Your card 4111111111111111 was declined")
    for text in (str(declined), repr(declined), declined.message, declined.customer_message):
        assert "4111" not in text.replace("***", "") and key.reveal() not in text
    refused = InvalidRequest("order_id '4111111111111111' differs from order.id 'A-1'", param="order_id")
    assert "4111111111111111" not in str(refused) and refused.param == "order_id"


@pytest.mark.parametrize("form", ["quote", "quote_plus", "json", "json_slash", "basic"])
def test_a_known_secret_is_masked_in_the_forms_text_encodes_it_in(form: str) -> None:
    import base64
    import json
    from urllib.parse import quote, quote_plus

    value = "fk/test+ledger=key&123"
    Secret(value)
    written = {"quote": quote(value, safe=""), "quote_plus": quote_plus(value), "json": json.dumps(value)[1:-1],
               "json_slash": json.dumps(value)[1:-1].replace("/", "\\/"),
               "basic": base64.b64encode(f"merchant:{value}".encode()).decode()}[form]
    masked = redact(f"the provider answered: bad key {written} (check it)")
    assert written not in masked and "***" in masked and masked.startswith("the provider answered: bad key ")


def test_shapes_and_passwords_in_text_are_masked_whole() -> None:
    assert redact("whsec_abcdefgh%2Bijklmnop next") == "*** next"
    assert redact("GET http://merchant:hunter2pass@api.example.com/v1 failed") == \
        "GET http://merchant:***@api.example.com/v1 failed"


def test_reprs_show_no_url_password_and_no_basic_username() -> None:
    from paywire import BasicAuth, MethodConfig, TransferFactory

    url = "http://merchant:hunter2pass@127.0.0.1:9"
    auth = BasicAuth("AZdfr0uLXSf6pq-client-id", Secret("client-secret-value"))
    factory = TransferFactory(url, "POST", "/v1/pay", auth=auth)
    transfer = factory.create({"a": 1}, Subject(idempotency_key="k"))
    for shown in (repr(MethodConfig(code="fakepay", base_url=url)), repr(factory), repr(transfer), repr(auth)):
        assert "hunter2pass" not in shown and "AZdfr0uLXSf6pq" not in shown and "client-secret-value" not in shown
    assert transfer.url.startswith("http://merchant:hunter2pass@")  # what is sent stays whole


def test_an_auth_made_once_shows_its_header_nowhere_but_in_what_it_sends() -> None:
    """The Authorization header is written once per credential; the value kept is a `Secret`,
    so a hook or a log that dumps the auth (or a transfer holding it) with attrs shows no token."""
    import base64

    import attrs

    from paywire import BasicAuth, BearerAuth, TransferFactory

    bearer, basic = BearerAuth(Secret("sk_test_headertoken123")), BasicAuth("client-id-77", Secret("pw-secret-991"))
    encoded = base64.b64encode(b"client-id-77:pw-secret-991").decode()
    for auth, sent in ((bearer, "Bearer sk_test_headertoken123"), (basic, f"Basic {encoded}")):
        assert auth.headers() == {"Authorization": sent}
        transfer = TransferFactory("https://api.example.com", "POST", "/v1/pay", auth=auth).create(
            {"a": 1}, Subject(idempotency_key="k"))
        for shown in (str(attrs.asdict(auth)), str(attrs.asdict(transfer)), repr(auth), repr(transfer)):
            assert "headertoken123" not in shown and "pw-secret-991" not in shown and encoded not in shown


@pytest.mark.parametrize("url", ["https://shop:Pw9xSecret@api.example.com:abc/v1", "https://api.example.com:99999",
                                 "https://api.example.com:-1", "https://api.example.com:\uff14\uff14\uff13",
                                 "https://shop:Pw9xSecret@api.exa mple.com/v1", "https://api.example.com\x00.evil/v1",
                                 "http://127.0.0.1:abc", "https://api.example.com/v1/\r\n", "https://api.example.com/v 1",
                                 "https://api.example.com\n"])
def test_an_endpoint_no_request_can_be_sent_to_is_refused_when_configured(url: str) -> None:
    """A port that is no port, a host no request can name, or a space or a line break anywhere
    (a URL read from a file or a variable keeps its newline) is refused with the method's
    configuration: found only as the request was sent, the operation was left unknown, or sent to
    another path (`/%0D%0A/v1/payments`) and recorded failed."""
    with pytest.raises(ConfigurationError) as refused:
        check_endpoint(url, environment="sandbox")
    message = str(refused.value)
    assert "Pw9x" not in message and any(word in message for word in ("port", "host", "space")), message
