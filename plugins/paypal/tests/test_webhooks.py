"""Webhooks: events delivered to a real receiver, signed as PayPal signs, verifiable offline and by API."""

from __future__ import annotations

import datetime
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from paywire_paypal import signature

WEBHOOK_ID = "1JE4291016473214C"


class Receiver:
    """A local HTTP endpoint that records every webhook POSTed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.upper(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/paypal/webhooks"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        """The deliveries received once there are `count` (the deadline only guards against a hang)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.received) >= count, f"got {len(self.received)} webhooks, wanted {count}"
        return self.received


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def event_types(deliveries):
    return sorted(json.loads(body)["event_type"] for _, body in deliveries)


def verify_request(headers, body, **overrides):
    fields = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": WEBHOOK_ID,
        "webhook_event": json.loads(body),
    }
    return {**fields, **overrides}


def test_events_reach_a_receiver_signed_with_the_served_certificate(api, receiver):
    api.app.webhook_url = receiver.url
    order_id = api.approved_order("12.34")
    api.post(f"/v2/checkout/orders/{order_id}/capture")
    deliveries = receiver.wait_for(2)
    assert event_types(deliveries) == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED"]
    for headers, body in deliveries:
        assert headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"
        assert headers["CONTENT-TYPE"] == "application/json"
        cert = api.get(headers["PAYPAL-CERT-URL"], auth=False)  # fetched like a receiver does
        assert cert.status == 200 and cert.body.startswith(b"-----BEGIN CERTIFICATE-----")
        args = (
            headers["PAYPAL-TRANSMISSION-SIG"],
            headers["PAYPAL-TRANSMISSION-ID"],
            headers["PAYPAL-TRANSMISSION-TIME"],
            WEBHOOK_ID,
        )
        assert signature.verify_transmission(cert.body, *args, body)
        assert not signature.verify_transmission(cert.body, *args, body.replace(b"12.34", b"99.99"))
        assert not signature.verify_transmission(cert.body, *args[:3], "OTHERWEBHOOK", body)
    capture_event = next(json.loads(b) for _, b in deliveries if b"PAYMENT.CAPTURE.COMPLETED" in b)
    assert capture_event["resource"]["amount"] == {"currency_code": "USD", "value": "12.34"}
    assert capture_event["summary"] == "Payment completed for $ 12.34 USD"
    assert api.app.wait_for_webhooks(30)  # the receiver's answers are back with PayPal, not only sent
    assert [d for d in api.app.webhook_deliveries if d[0] == 200]


def test_event_envelope_has_paypals_fields(api):
    api.capture("5.00")
    event = api.app.events[-1]
    assert event["id"].startswith("WH-")
    assert (event["event_version"], event["resource_version"], event["resource_type"]) == ("1.0", "2.0", "capture")
    assert event["create_time"].endswith("Z")
    assert {link["rel"] for link in event["links"]} == {"self", "resend"}
    assert event["resource"]["supplementary_data"]["related_ids"]["order_id"]


def test_authorization_and_void_events(api, receiver):
    api.app.webhook_url = receiver.url
    auth = api.authorization()
    api.post(f"/v2/payments/authorizations/{auth['id']}/void")
    types = event_types(receiver.wait_for(3))
    assert types == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.AUTHORIZATION.CREATED", "PAYMENT.AUTHORIZATION.VOIDED"]


def test_verify_webhook_signature_api_success_and_failures(api, receiver):
    api.app.webhook_url = receiver.url
    api.capture("7.00")
    headers, body = next((h, b) for h, b in receiver.wait_for(2) if b"PAYMENT.CAPTURE.COMPLETED" in b)

    def verify(**overrides):
        response = api.post("/v1/notifications/verify-webhook-signature", verify_request(headers, body, **overrides))
        assert response.status == 200, response
        return response.json()["verification_status"]

    assert verify() == "SUCCESS"
    tampered = json.loads(body)
    tampered["resource"]["amount"]["value"] = "700.00"
    assert verify(webhook_event=tampered) == "FAILURE"
    assert verify(webhook_id="9XL90610J3647323C") == "FAILURE"
    assert verify(transmission_time="2030-01-01T00:00:00Z") == "FAILURE"
    assert verify(cert_url="https://api.paypal.com/v1/notifications/certs/CERT-someone-else") == "FAILURE"
    assert verify(auth_algo="SHA1withRSA") == "FAILURE"
    assert verify(transmission_sig="bm90IGEgc2lnbmF0dXJl") == "FAILURE"


def test_verify_webhook_signature_api_needs_every_field_and_a_token(api):
    response = api.post("/v1/notifications/verify-webhook-signature", {"auth_algo": "SHA256withRSA"})
    assert (response.status, response.issue) == (400, "MISSING_REQUIRED_PARAMETER")
    assert api.post("/v1/notifications/verify-webhook-signature", {}, auth=False).status == 401


def test_signed_event_gives_exact_bytes_and_headers_without_a_receiver(app):
    event = {"id": "WH-TEST", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "CAP1"}}
    body, headers = app.signed_event(event)
    assert json.loads(body) == event
    assert headers[signature.HEADER_CERT_URL].endswith(app.signer.cert_path)
    assert signature.verify_transmission(
        app.certificate_pem,
        headers[signature.HEADER_TRANSMISSION_SIG],
        headers[signature.HEADER_TRANSMISSION_ID],
        headers[signature.HEADER_TRANSMISSION_TIME],
        app.webhook_id,
        body,
        headers[signature.HEADER_AUTH_ALGO],
    )
    assert app.verify({**verify_request(headers, body), "webhook_id": app.webhook_id}, json.loads(body))


def test_certificate_url_is_https_when_served_over_tls(tls_api, receiver):
    tls_api.app.webhook_url = receiver.url
    tls_api.capture()
    headers, _ = receiver.wait_for(1)[0]
    assert headers["PAYPAL-CERT-URL"].startswith(tls_api.url + "/v1/notifications/certs/CERT-")
    assert tls_api.get(headers["PAYPAL-CERT-URL"], auth=False).body == tls_api.app.certificate_pem


def test_a_given_signing_key_and_certificate_are_used(new_app, serve):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    api = serve(new_app(signing_key_pem=key_pem, certificate_pem=cert_pem))
    assert api.get(api.app.cert_url(), auth=False).body == cert_pem
    body, headers = api.app.signed_event({"id": "WH-1"})
    assert signature.verify_transmission(
        cert_pem,
        headers["PAYPAL-TRANSMISSION-SIG"],
        headers["PAYPAL-TRANSMISSION-ID"],
        headers["PAYPAL-TRANSMISSION-TIME"],
        WEBHOOK_ID,
        body,
    )
    with pytest.raises(ValueError, match="both"):
        new_app(signing_key_pem=key_pem)


def test_unknown_certificate_path_is_not_found(api):
    assert api.get("/v1/notifications/certs/CERT-00000000-00000000-00000000", auth=False).status == 404


# -- the shared signature helpers -----------------------------------------------------------------
def test_crc_is_the_unsigned_crc32_in_decimal():
    assert signature.body_crc32(b"") == 0
    assert signature.body_crc32(b"hello") == 907060870
    assert signature.body_crc32(b"\xff" * 4) == 0xFFFFFFFF  # unsigned, unlike some languages' crc32


def test_signing_string_is_pipe_joined():
    assert signature.signing_string("tid", "2024-01-01T00:00:00Z", "WH1", b"hello") == (
        "tid|2024-01-01T00:00:00Z|WH1|907060870"
    )


def test_verify_transmission_rejects_garbage_without_raising(app):
    assert not signature.verify_transmission(app.certificate_pem, "%%%not base64", "t", "time", "w", b"{}")
    assert not signature.verify_transmission(b"not a certificate", "AAAA", "t", "time", "w", b"{}")
    assert not signature.verify_transmission(app.certificate_pem, "AAAA", "t", "time", "w", b"{}", "MD5withRSA")
