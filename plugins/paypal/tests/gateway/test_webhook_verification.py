"""Webhooks: verified offline or by PayPal's API, from trusted certificates only, then parsed."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from paywire import (
    ConfigurationError,
    EventKind,
    Money,
    PaywireError,
    Timeout,
    Urllib3Client,
    WebhookVerificationError,
)
from paywire.testing.emulator import Fault
from paywire_paypal import signature
from paywire_paypal.webhook.certificates import FAILED_FOR, FAILING, CertificateStore, CertificateTrust

WEBHOOK_ID = "8PT597110X687430L"
CERTS = "/v1/notifications/certs/"


def sign(app, body, *, webhook_id=WEBHOOK_ID, at=None, key=None, cert_url=None):
    """Headers for `body` signed as PayPal signs (with the emulator's key unless another is given)."""
    transmission_id = str(uuid.uuid4())
    moment = datetime.datetime.now(datetime.UTC) if at is None else at
    transmission_time = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    message = signature.signing_string(transmission_id, transmission_time, webhook_id, body).encode()
    sig = (key or app.signer.key).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(),
        "PAYPAL-CERT-URL": cert_url or app.cert_url(),
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }


def parse(paypal, headers, body, gateway=None):
    return (gateway or paypal.gateway).parse_webhook("paypal", headers, body)


def delivered(paypal, event_type):
    """The bytes and headers PayPal sends for the emulator's last event of `event_type`."""
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == event_type)
    body, headers = paypal.app.signed_event(event)
    return headers, body


def refused(paypal, headers, body, gateway=None) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as raised:
        parse(paypal, headers, body, gateway)
    return raised.value


def self_signed(days_valid=(-1, 30)):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_valid[0]))
        .not_valid_after(now + datetime.timedelta(days=days_valid[1]))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# -- genuine events, parsed -------------------------------------------------------------------------
def test_a_capture_event_verifies_offline_and_names_every_id(paypal):
    authorization = paypal.authorized("25.00")
    capture = paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    event = parse(paypal, headers, body)
    assert (event.provider, event.kind, event.reference, event.amount) == (
        "paypal", EventKind.CAPTURED, capture.reference, Money.of("25.00", "EUR"))
    assert event.references == {"capture": capture.reference, "authorization": authorization.reference,
                                "order": authorization.references["payment"],
                                "payment": authorization.references["payment"]}
    assert event.id == json.loads(body)["id"] and event.type == "PAYMENT.CAPTURE.COMPLETED"
    assert event.occurred_at is not None
    assert not [t for t in paypal.sent if "verify-webhook-signature" in t.url]


def test_every_event_kind_paypal_sends_for_a_payment(paypal):
    authorization = paypal.checkout(Money.of("30.00", "EUR"))
    payment = authorization.references["payment"]
    capture = paypal.run("capture", reference=authorization.reference, amount=Money.of("10.00", "EUR"),
                         final=False, idempotency_key=paypal.key())
    refund = paypal.run("refund", reference=capture.reference, amount=Money.of("4.00", "EUR"),
                        idempotency_key=paypal.key())
    approved = parse(paypal, *delivered(paypal, "CHECKOUT.ORDER.APPROVED"))
    assert (approved.kind, approved.reference, approved.references["payment"], approved.amount) == (
        EventKind.APPROVED, payment, payment, Money.of("30.00", "EUR"))
    created = parse(paypal, *delivered(paypal, "PAYMENT.AUTHORIZATION.CREATED"))
    assert (created.kind, created.reference, created.references["payment"]) == (
        EventKind.AUTHORIZED, authorization.reference, payment)
    refunded = parse(paypal, *delivered(paypal, "PAYMENT.CAPTURE.REFUNDED"))
    assert (refunded.kind, refunded.reference, refunded.amount) == (
        EventKind.REFUNDED, refund.reference, Money.of("4.00", "EUR"))
    assert refunded.references == {"refund": refund.reference, "capture": capture.reference}
    other = paypal.authorized()
    paypal.run("void", reference=other.reference, idempotency_key=paypal.key())
    voided = parse(paypal, *delivered(paypal, "PAYMENT.AUTHORIZATION.VOIDED"))
    assert (voided.kind, voided.reference) == (EventKind.VOIDED, other.reference)
    paypal.attempt("sale", amount=Money.of("5.00", "EUR"), source=paypal.app.vault_card(name="CCREJECT-SF"),
                   idempotency_key=paypal.key())
    assert parse(paypal, *delivered(paypal, "PAYMENT.CAPTURE.DENIED")).kind == EventKind.FAILED
    assert parse(paypal, *delivered(paypal, "VAULT.PAYMENT-TOKEN.CREATED")).kind == EventKind.OTHER


@pytest.mark.parametrize("reason", ["CHARGEBACK", "BUYER_COMPLAINT", "REFUNDED"])
def test_a_capture_denied_after_it_completed_is_a_reversal(paypal, reason):
    """PayPal holds it DENIED for a reason saying its money was taken back: the capture is undone,
    whether the event says denied or reversed, or is its completion arriving late (genuine, and
    refused PayPal would redeliver it for days); a pending capture denied stays a failure."""
    capture = paypal.run("fetch", reference=paypal.captured().reference).references["capture"]
    paypal.app.deny_capture(capture, reason)
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.DENIED")
    assert (parse(paypal, headers, body).kind, parse(paypal, headers, body).reference) == (EventKind.REVERSED, capture)
    event = {**json.loads(body), "id": "WH-REVERSED-1", "event_type": "PAYMENT.CAPTURE.REVERSED"}
    body, headers = paypal.app.signed_event(event)
    assert parse(paypal, headers, body).kind == EventKind.REVERSED
    event = {**event, "id": "WH-COMPLETED-1", "event_type": "PAYMENT.CAPTURE.COMPLETED"}
    body, headers = paypal.app.signed_event(event)
    assert (parse(paypal, headers, body).kind, parse(paypal, headers, body).reference) == (EventKind.REVERSED, capture)
    pending = paypal.run(
        "sale",
        amount=Money.of("5.00", "EUR"),
        source=paypal.app.vault_paypal(payer="echeck"),
        idempotency_key=paypal.key(),
    )
    paypal.app.settle_capture(paypal.run("fetch", reference=pending.reference).references["capture"], "DECLINED")
    assert parse(paypal, *delivered(paypal, "PAYMENT.CAPTURE.DENIED")).kind == EventKind.FAILED


def test_header_names_are_matched_in_any_case(paypal):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    verifier = paypal.gateway.method("paypal").webhook_verifier()
    assert verifier({name.lower(): value for name, value in headers.items()}, body).kind == EventKind.CAPTURED
    assert verifier(headers, body).kind == EventKind.CAPTURED


def test_the_certificate_is_fetched_once_and_cached(paypal):
    for _ in range(3):
        paypal.captured()
        parse(paypal, *delivered(paypal, "PAYMENT.CAPTURE.COMPLETED"))
    assert paypal.calls(CERTS) == 1


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting(Urllib3Client):
    """The core's client, counting what it sends (an answer the emulator faulted included)."""

    sends = 0

    def send(self, transfer):
        self.sends += 1
        return super().send(transfer)


def store_at(paypal, clock):
    """A certificate store trusting the emulator's host, on `clock`, and its client."""
    host, port = paypal.url.split("//")[1].rsplit(":", 1)
    client = Counting()
    return CertificateStore(CertificateTrust("sandbox", [(host, int(port))]), client, Timeout(5.0, 5.0),
                            clock=clock), client


def test_a_certificate_url_that_failed_is_not_fetched_again_for_a_while(paypal):
    """Anyone may send unsigned deliveries naming a made-up certificate at the trusted host: each
    cost a GET there. A failed fetch is remembered briefly and its refusal repeated."""
    body = b'{"id": "WH-1"}'
    forged = sign(paypal.app, body, cert_url=paypal.url + CERTS + "CERT-made-up")
    errors = [refused(paypal, forged, body) for _ in range(5)]
    assert {(e.code, e.retryable) for e in errors} == {("certificate_unavailable", False)}
    assert paypal.calls(CERTS) == 1


def test_a_certificate_that_failed_is_fetched_again_after_a_while_and_then_trusted(paypal):
    clock = Clock()
    store, client = store_at(paypal, clock)
    url = paypal.app.cert_url()
    paypal.app.inject(Fault(kind="status", status=503, path=CERTS))
    for _ in range(3):
        with pytest.raises(WebhookVerificationError) as raised:
            store.public_key(url)
        assert (raised.value.code, raised.value.retryable) == ("certificate_unavailable", True)
    assert client.sends == 1
    clock.now += FAILED_FOR - 1
    with pytest.raises(WebhookVerificationError):
        store.public_key(url)
    assert client.sends == 1
    clock.now += 1
    assert store.public_key(url).key_size >= 2048  # PayPal serves it now: fetched, and kept
    store.public_key(url)
    assert client.sends == 2
    store.close()


def test_made_up_certificate_urls_cost_paypal_a_bounded_number_of_fetches_a_minute(paypal):
    """Made-up certificate ids are free to vary, so remembering each failed URL does not bound
    what deliveries naming them cost: past `FAILING` failed fetches in the last minute no new URL
    is fetched, and a delivery naming one is refused as retryable (a genuine one comes again).
    A certificate fetched before is still trusted meanwhile, and a minute later PayPal is asked again."""
    clock = Clock()
    store, client = store_at(paypal, clock)
    genuine = paypal.app.cert_url()
    store.public_key(genuine)
    made_up = [paypal.url + CERTS + f"CERT-made-up-{n}" for n in range(FAILING * 4)]
    errors = []
    for url in made_up:
        with pytest.raises(WebhookVerificationError) as raised:
            store.public_key(url)
        errors.append(raised.value)
    assert client.sends == 1 + FAILING
    assert {(e.code, e.retryable) for e in errors[FAILING:]} == {("certificate_unavailable", True)}
    assert "deliver again later" in errors[-1].message
    assert store.public_key(genuine).key_size >= 2048 and client.sends == 1 + FAILING  # from the cache
    clock.now += FAILED_FOR
    with pytest.raises(WebhookVerificationError):
        store.public_key(made_up[-1])  # a minute later: asked again
    assert client.sends == 2 + FAILING
    store.close()


# -- refused, and nothing parsed ------------------------------------------------------------------
def test_a_tampered_body_is_refused(paypal):
    paypal.captured("25.00")
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    for tampered in (body.replace(b"25.00", b"99.00"), body + b" ", body[:-1], b" " + body):
        assert refused(paypal, headers, tampered).code in ("bad_signature", "malformed_event")


def test_an_event_signed_for_another_webhook_id_is_refused(paypal):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    gateway = paypal.gateway_with(credentials={"client_id": "gateway-test-client-id",
                                               "client_secret": "gateway-test-client-secret-5c1e9a",
                                               "webhook_id": "9XL90610J3647323C"})
    assert refused(paypal, headers, body, gateway).code == "bad_signature"


def test_a_signature_by_another_key_is_refused(paypal):
    body = json.dumps({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "C1"}}).encode()
    other, _, _ = self_signed()
    assert refused(paypal, sign(paypal.app, body, key=other), body).code == "bad_signature"


def test_certificates_from_foreign_hosts_are_refused_without_fetching(paypal):
    body = b'{"id": "WH-1"}'
    for url in ("https://evil.example/v1/notifications/certs/CERT-1",
                "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
                "https://user@api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
                "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
                "https://api.sandbox.paypal.com:8443/v1/notifications/certs/CERT-1",
                "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1?x=1",
                "https://api.sandbox.paypal.com/v1/other/CERT-1",
                "file:///etc/passwd",
                paypal.app.cert_url().replace("127.0.0.1", "127.0.0.2")):
        assert refused(paypal, sign(paypal.app, body, cert_url=url), body).code == "untrusted_certificate", url
    assert paypal.calls(CERTS) == 0


@pytest.mark.parametrize("mode", ["offline", "api"])
def test_a_certificate_url_that_does_not_parse_is_refused_not_an_error(paypal, mode):
    """An unclosed IPv6 bracket makes urlsplit raise ValueError: anyone could send one, unsigned,
    and the endpoint answered 500. It is an untrusted certificate URL like any other."""
    gateway = paypal.gateway_with(options={"webhook_verification": mode})
    body = b'{"id": "WH-1"}'
    for url in ("https://[api.paypal.com/v1/notifications/certs/CERT-1",
                "https://api.paypal.com]/v1/notifications/certs/CERT-1"):
        assert refused(paypal, sign(paypal.app, body, cert_url=url), body, gateway).code == "untrusted_certificate"
    assert paypal.calls(CERTS) == 0 and paypal.calls("verify-webhook-signature") == 0


@pytest.mark.parametrize("header", ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG",
                                    "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO"])
def test_missing_or_malformed_headers_are_refused(paypal, header):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    without = {name: value for name, value in headers.items() if name != header}
    assert refused(paypal, without, body).code == "missing_header"
    for bad in ("", "x" * 2000, f"{headers[header]},{headers[header]}", f" {headers[header]}", "sïg"):
        assert refused(paypal, {**headers, header: bad}, body)


def test_a_signature_in_non_canonical_base64_is_refused(paypal):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    sig = headers["PAYPAL-TRANSMISSION-SIG"]
    assert sig.endswith("==")  # 256 bytes: the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    same_bytes = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    assert base64.b64decode(same_bytes) == base64.b64decode(sig)
    assert refused(paypal, {**headers, "PAYPAL-TRANSMISSION-SIG": same_bytes}, body).code == "malformed_headers"
    assert refused(paypal, {**headers, "PAYPAL-AUTH-ALGO": "SHA1withRSA"}, body).code == "malformed_headers"


def test_stale_and_future_transmissions_are_refused(paypal):
    body = json.dumps({"id": "WH-2", "event_type": "X", "resource": {"id": "R"}}).encode()
    now = datetime.datetime.now(datetime.UTC)
    assert parse(paypal, sign(paypal.app, body, at=now - datetime.timedelta(minutes=10)), body).id == "WH-2"
    for at in (now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1)):
        assert refused(paypal, sign(paypal.app, body, at=at), body).code == "stale_transmission"
    strict = paypal.gateway_with(options={"webhook_tolerance": 60})
    assert refused(paypal, sign(paypal.app, body, at=now - datetime.timedelta(minutes=10)), body, strict)


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), 0, -900, "900"])
def test_a_tolerance_that_is_no_positive_finite_number_of_seconds_is_a_configuration_error(paypal, tolerance):
    """nan or inf would verify a transmission signed a year ago: the replay window gone without a word."""
    body = json.dumps({"id": "WH-2", "event_type": "X", "resource": {"id": "R"}}).encode()
    ancient = sign(paypal.app, body, at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365))
    with pytest.raises(ConfigurationError, match="webhook_tolerance"):
        parse(paypal, ancient, body, paypal.gateway_with(options={"webhook_tolerance": tolerance}))


def test_a_verified_body_that_is_no_paypal_event_is_refused(paypal):
    for body in (b"[]", b"not json", b'{"id": "WH-3"}', b'{"id": "WH-3", "event_type": "X", "resource": {}}'):
        assert refused(paypal, sign(paypal.app, body), body).code == "malformed_event"


def test_an_expired_signing_certificate_is_refused(serve_paypal, emulator):
    _, certificate, key = self_signed(days_valid=(-30, -1))
    paypal = serve_paypal(emulator(signing_key_pem=key, certificate_pem=certificate))
    paypal.captured()
    assert refused(paypal, *delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")).code == "expired_certificate"


def test_an_unreachable_certificate_is_a_retryable_refusal(paypal):
    paypal.captured()
    paypal.app.inject(Fault(kind="status", status=503, path=CERTS))
    error = refused(paypal, *delivered(paypal, "PAYMENT.CAPTURE.COMPLETED"))
    assert (error.code, error.retryable) == ("certificate_unavailable", True)


# -- who is trusted ----------------------------------------------------------------------------------
def test_the_sandbox_trusts_extra_certificate_hosts_only_when_listed(serve_paypal):
    paypal, elsewhere = serve_paypal(), serve_paypal()
    body = json.dumps({"id": "WH-4", "event_type": "X", "resource": {"id": "R"}}).encode()
    headers = sign(elsewhere.app, body, cert_url=elsewhere.app.cert_url())
    assert refused(paypal, headers, body).code == "untrusted_certificate"
    host = elsewhere.url.split("//")[1]
    assert parse(paypal, headers, body, paypal.gateway_with(options={"webhook_cert_hosts": [host]})).id == "WH-4"
    assert parse(paypal, headers, body, paypal.gateway_with(options={"webhook_cert_hosts": "127.0.0.1"})).id == "WH-4"
    other_port = f"127.0.0.1:{int(host.rsplit(':', 1)[1]) + 1}"
    assert refused(paypal, headers, body, paypal.gateway_with(options={"webhook_cert_hosts": [other_port]}))


def test_live_trusts_paypals_live_hosts_over_https_only():
    live = CertificateTrust("live")
    assert live.check("https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")
    assert live.check("https://api-m.paypal.com:443/v1/notifications/certs/CERT-1")
    for url in ("https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
                "http://api.paypal.com/v1/notifications/certs/CERT-1",
                "https://127.0.0.1/v1/notifications/certs/CERT-1"):
        with pytest.raises(WebhookVerificationError):
            live.check(url)
    with pytest.raises(WebhookVerificationError):  # extra hosts are a sandbox-only notion
        CertificateTrust("live", [("127.0.0.1", None)]).check("http://127.0.0.1/v1/notifications/certs/CERT-1")


def test_options_widening_trust_are_refused_in_live(paypal):
    from paywire import GatewaySettings
    from paywire_paypal.webhook import build_verifier

    for options in ({"webhook_cert_hosts": ["127.0.0.1"]}, {"webhook_ca_certs": "/tmp/ca.pem"}):
        settings = GatewaySettings(gateway="paypal", provider="paypal", environment="live",
                                   base_url="https://api-m.paypal.com", options=options,
                                   credentials={"webhook_id": paypal.app.webhook_id})
        with pytest.raises(ConfigurationError, match="sandbox"):
            build_verifier(settings)


def test_an_unknown_verification_mode_is_a_configuration_error(paypal):
    gateway = paypal.gateway_with(options={"webhook_verification": "trust-me"})
    with pytest.raises(ConfigurationError):
        parse(paypal, {}, b"{}", gateway)


# -- PayPal's verify-webhook-signature API -----------------------------------------------------------
def test_the_api_mode_asks_paypal_and_parses_what_it_verified(paypal):
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    paypal.captured("12.00")
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    event = parse(paypal, headers, body, gateway)
    assert (event.kind, event.amount) == (EventKind.CAPTURED, Money.of("12.00", "EUR"))
    assert paypal.calls("/v1/notifications/verify-webhook-signature") == 1
    assert paypal.calls(CERTS) == 0  # PayPal checked the certificate


def test_the_verification_command_sends_the_transmission_the_webhook_id_and_the_event(paypal):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    fields = {"auth_algo": "SHA256withRSA", "cert_url": headers["PAYPAL-CERT-URL"],
              "transmission_id": headers["PAYPAL-TRANSMISSION-ID"], "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
              "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"], "webhook_id": WEBHOOK_ID,
              "webhook_event": json.loads(body)}
    assert paypal.run("verify_webhook_signature", options=fields).state == "SUCCESS"
    asked = paypal.api_sent[-1]
    assert asked.url == paypal.url + "/v1/notifications/verify-webhook-signature"
    assert json.loads(asked.body) == fields and asked.all_headers()["Authorization"].startswith("Bearer ")
    assert paypal.run("verify_webhook_signature", options={**fields, "webhook_id": "OTHER"}).state == "FAILURE"


def test_the_api_mode_refuses_what_paypal_does_not_verify(paypal):
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    paypal.captured("12.00")
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    assert refused(paypal, headers, body.replace(b"12.00", b"99.00"), gateway).code == "bad_signature"
    wrong_id = paypal.gateway_with(options={"webhook_verification": "api"}, credentials={
        "client_id": "gateway-test-client-id", "client_secret": "gateway-test-client-secret-5c1e9a",
        "webhook_id": "9XL90610J3647323C"})
    assert refused(paypal, headers, body, wrong_id).code == "bad_signature"


def test_the_api_mode_checks_headers_time_and_certificate_host_before_asking(paypal):
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    body = b'{"id": "WH-5"}'
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    refused(paypal, {"PAYPAL-AUTH-ALGO": "SHA256withRSA"}, body, gateway)
    refused(paypal, sign(paypal.app, body, at=old), body, gateway)
    refused(paypal, sign(paypal.app, body, cert_url="https://evil.example/v1/notifications/certs/C"), body, gateway)
    assert paypal.calls("verify-webhook-signature") == 0


def test_the_api_mode_turns_paypal_being_down_into_a_retryable_refusal(paypal):
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    paypal.app.inject(Fault(kind="status", status=503, path="verify-webhook-signature", times=5))
    error = refused(paypal, headers, body, gateway)
    assert (error.code, error.retryable) == ("verification_unavailable", True)
    assert isinstance(error.__cause__, PaywireError)


@pytest.mark.parametrize("fault", ["status", "drop_after"])
def test_the_api_mode_asks_again_after_a_lost_answer_as_a_verification_changes_nothing(paypal, fault):
    """verify-webhook-signature takes no key; its factory declares it repeatable, so a 503 or a
    dropped answer is asked again rather than refusing a genuine webhook."""
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    paypal.captured("12.00")
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    paypal.app.inject(Fault(kind=fault, status=503, path="verify-webhook-signature"))
    assert parse(paypal, headers, body, gateway).kind == EventKind.CAPTURED
    assert paypal.calls("/v1/notifications/verify-webhook-signature") == (2 if fault == "drop_after" else 1)


def test_webhook_errors_never_show_the_webhook_id(paypal):
    paypal.captured()
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    errors = [refused(paypal, headers, body + b" "), refused(paypal, {}, body)]
    for error in errors:
        assert WEBHOOK_ID not in str(error) and WEBHOOK_ID not in repr(vars(error))
    assert WEBHOOK_ID not in repr(paypal.gateway.method("paypal").webhook_verifier())


def test_a_slow_certificate_host_does_not_hang_verification(paypal):
    paypal.captured()
    paypal.app.inject(Fault(kind="latency", seconds=30.0, path=CERTS))
    started = time.monotonic()
    hurried = paypal.gateway_with(read_timeout=1.0)
    assert refused(paypal, *delivered(paypal, "PAYMENT.CAPTURE.COMPLETED"), gateway=hurried).retryable
    assert time.monotonic() - started < 30.0, "verification waited for the certificate host"
