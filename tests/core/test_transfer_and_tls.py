"""Transfers are immutable and hide credentials; the client verifies TLS for real."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import attrs
import pytest
import trustme

from paywire import BasicAuth, BearerAuth, InvalidRequest, Money, Secret, Subject, TransferFactory
from paywire.errors import TransportError
from paywire.http.client import Urllib3Client
from paywire.testing.emulator import EmulatorServer
from tests.core.conftest import EchoApp
from tests.core.pipeline import command, run


def test_transfer_is_frozen_and_hides_auth() -> None:
    transfer = TransferFactory("https://api.test", "POST", "/v1/pay/{reference}", auth=BearerAuth(Secret("sk_test_hidden")),
                               idempotency_header="Idempotency-Key").create({"a": 1}, Subject(reference="p/1", idempotency_key="k"))
    assert transfer.url == "https://api.test/v1/pay/p%2F1"
    assert transfer.headers["Idempotency-Key"] == "k"
    assert "sk_test_hidden" not in repr(transfer)
    assert transfer.all_headers()["Authorization"] == "Bearer sk_test_hidden"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        transfer.url = "https://evil.test"  # type: ignore[misc]
    with pytest.raises(TypeError):
        transfer.headers["X"] = "1"  # type: ignore[index]


def test_get_requests_carry_the_request_as_query_and_no_key() -> None:
    factory = TransferFactory("https://api.test", "GET", "/v1/pay/{reference}")
    transfer = factory.create({"expand": ["charge"]}, Subject(reference="p1", idempotency_key="k"))
    assert transfer.url == "https://api.test/v1/pay/p1?expand%5B0%5D=charge"
    assert transfer.body is None and transfer.idempotency_key is None and transfer.idempotent


def test_a_missing_path_field_is_refused_before_sending() -> None:
    with pytest.raises(InvalidRequest, match=r"subject\.reference"):
        TransferFactory("https://api.test", "POST", "/v1/pay/{reference}/capture").create({}, Subject())


@pytest.mark.parametrize("key", ["order-1\n", "cap\r\n1", "a\x00b", "clé-1", "tab\there"])
def test_a_key_no_header_can_carry_is_refused_before_sending(echo: tuple[EchoApp, str], key: str) -> None:
    """Refused while the request is built (the service's rehearsal, before anything is recorded),
    not by the HTTP library once the request may be recorded as sent."""
    app, url = echo
    with pytest.raises(InvalidRequest, match="printable ASCII") as refused:
        run(command(url), Subject(amount=Money.of("1.00", "EUR"), idempotency_key=key))
    assert refused.value.param == "idempotency_key" and app.seen == []


def test_basic_auth_header_and_repr() -> None:
    auth = BasicAuth("client", Secret("s3cr3t-value"))
    assert auth.headers()["Authorization"] == "Basic Y2xpZW50OnMzY3IzdC12YWx1ZQ=="
    assert "s3cr3t" not in repr(auth)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_echo(ca: trustme.CA) -> Iterator[tuple[EchoApp, str]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    app = EchoApp()
    with EmulatorServer(app, ssl_context=context) as server:
        yield app, server.url


def test_https_with_a_trusted_certificate(https_echo: tuple[EchoApp, str], ca: trustme.CA, tmp_path) -> None:
    _, url = https_echo
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    result = run(command(url), Subject(amount=Money.of("1.00", "EUR")), client=Urllib3Client(ca_certs=str(bundle)))
    assert url.startswith("https://") and result.raw["body"] == '{"amount":100}'


def test_https_refuses_an_untrusted_certificate_and_sends_nothing(https_echo: tuple[EchoApp, str]) -> None:
    app, url = https_echo
    with pytest.raises(TransportError) as caught:
        run(command(url), Subject(amount=Money.of("1.00", "EUR"), idempotency_key="k"), client=Urllib3Client())
    assert not caught.value.retryable and not caught.value.may_have_been_sent
    assert "TLS" in caught.value.message
    assert app.seen == []
