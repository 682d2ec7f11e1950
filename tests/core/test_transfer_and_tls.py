"""Transfers are immutable and hide credentials; the client verifies TLS for real."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import traceback
from collections.abc import Iterator

import attrs
import pytest
import trustme

from paywire import BasicAuth, BearerAuth, InvalidRequest, Money, Retry, Secret, Subject, Transfer, TransferFactory
from paywire.errors import OutcomeUnknown, TransportError
from paywire.http.client import Urllib3Client
from paywire.testing.emulator import EmulatorServer
from paywire.testing.ports import refusing_port
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


@pytest.mark.parametrize(("method", "header", "repeatable", "key", "idempotent"), [
    ("POST", "Idempotency-Key", False, "k", True),  # the provider deduplicates on the key it reads
    ("POST", "Idempotency-Key", False, None, False),
    ("POST", None, False, "k", False),  # the key goes nowhere: a resend is a second request
    ("POST", None, True, "k", True),
    ("POST", None, True, None, True),
    ("DELETE", None, False, "k", False),
    ("DELETE", None, True, None, True),
    ("GET", None, False, None, True),
    ("HEAD", "Idempotency-Key", False, "k", True),
])
def test_a_transfer_is_idempotent_only_when_sending_it_twice_cannot_do_anything_twice(
    method: str, header: str | None, repeatable: bool, key: str | None, idempotent: bool
) -> None:
    factory = TransferFactory("https://api.test", method, "/v1/pay", idempotency_header=header, repeatable=repeatable)
    transfer = factory.create({}, Subject(idempotency_key=key))
    on_the_wire = key if header and method not in ("GET", "HEAD") else None
    assert (transfer.idempotent, transfer.idempotency_key) == (idempotent, on_the_wire)
    assert (transfer.headers.get(header) if header else None) == on_the_wire


def test_a_transfer_built_by_hand_is_idempotent_for_a_safe_method_only() -> None:
    assert Transfer("GET", "https://api.test/").idempotent and Transfer("OPTIONS", "https://api.test/").idempotent
    assert not Transfer("POST", "https://api.test/", idempotency_key="k").idempotent
    assert Transfer("POST", "https://api.test/", idempotent=True).idempotent


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


class BrokenTLS:
    """A loopback TLS server that breaks TLS on purpose: during the handshake (`after_request`
    False: the client's hello is answered with bytes that are no TLS record), or once the whole
    request has arrived (`after_request` True: the handshake completes, the request is read and
    kept, then the answer is such bytes). Either way the client's TLS layer fails."""

    def __init__(self, context: ssl.SSLContext, *, after_request: bool) -> None:
        self.context, self.after_request = context, after_request
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.after_request:
                    raw = self.context.wrap_socket(raw, server_side=True)
                    self._read_request(raw)
                else:
                    raw.recv(4096)  # the client's hello
                # Written beside TLS, on the socket itself: bytes that are no TLS record.
                os.write(raw.fileno(), b"HTTP/1.1 502 Bad Gateway\r\n\r\n" + b"\x00" * 64)
            except (OSError, ValueError):
                pass
            finally:
                raw.close()

    def _read_request(self, tls: ssl.SSLSocket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += tls.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += tls.recv(4096)
        self.requests.append(head + b"\r\n\r\n" + body)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting on it (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def trusting(ca: trustme.CA, tmp_path) -> Urllib3Client:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return Urllib3Client(ca_certs=str(bundle))


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_tls_failing_after_the_request_was_written_is_an_unknown_outcome(trusting: Urllib3Client,
                                                                        server_context: ssl.SSLContext) -> None:
    """urllib3 raises the same SSLError for a broken answer as for a failed handshake; the request
    arrived whole, so the provider may have acted on it."""
    server = BrokenTLS(server_context, after_request=True)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            run(command(server.url), Subject(amount=Money.of("1.00", "EUR"), idempotency_key="k"),
                client=trusting, retry=Retry.never())
    finally:
        server.close()
    assert caught.value.may_have_been_sent and "TLS" in caught.value.message
    assert len(server.requests) == 1 and server.requests[0].endswith(b'{"amount":100}')


def test_tls_failing_in_the_handshake_sends_nothing(trusting: Urllib3Client, server_context: ssl.SSLContext) -> None:
    server = BrokenTLS(server_context, after_request=False)
    try:
        with pytest.raises(TransportError) as caught:
            run(command(server.url), Subject(amount=Money.of("1.00", "EUR"), idempotency_key="k"),
                client=trusting, retry=Retry.never())
    finally:
        server.close()
    assert not isinstance(caught.value, OutcomeUnknown) and not caught.value.may_have_been_sent
    assert "TLS" in caught.value.message and server.requests == []



def test_a_closed_broken_tls_server_listens_no_more(server_context: ssl.SSLContext) -> None:
    """Closing a listening socket does not wake the accept() waiting on it: the socket went on
    listening, held by that thread, until the process ended."""
    server = BrokenTLS(server_context, after_request=False)
    port = server.sock.getsockname()[1]
    server.close()
    assert not server.thread.is_alive()
    with refusing_port(port=port), pytest.raises(ConnectionRefusedError):  # held: no other process answers there
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_transport_error_names_the_host_without_the_password_of_its_url() -> None:
    """An endpoint may carry credentials (`https://user:password@host`): an error naming where
    the request went shows the host and port alone."""
    from paywire.testing.leaks import LeakWatch

    with refusing_port() as port, pytest.raises(TransportError) as caught:  # the connection is refused
        run(command(f"http://shop:pw-in-url-0451@127.0.0.1:{port}"),
            Subject(amount=Money.of("1.00", "EUR"), idempotency_key="k"), retry=Retry.never())
    assert f"could not connect to 127.0.0.1:{port} " in caught.value.message
    watch = LeakWatch()
    watch.note_error(caught.value)
    assert not watch.leaks(["pw-in-url-0451"])


@pytest.mark.parametrize("credential", ["sk_test_nl0451key\n", "sk_test_cr0451key\r", "sk_test_key0451\u2019s"])
def test_a_credential_no_header_can_carry_is_a_failure_that_sent_nothing_and_never_shows_it(
        echo: tuple[EchoApp, str], credential: str) -> None:
    """A secret read from a file keeps its newline; http.client refuses the Authorization header
    made of it, quoting the header whole. The error names the header, says nothing was sent (no
    bytes left: a failure, not an unknown outcome), and neither it nor its chain holds the secret."""
    from paywire.testing.leaks import LeakWatch

    app, url = echo
    with pytest.raises(TransportError) as caught:
        run(command(url, auth=BearerAuth(Secret(credential))), Subject(amount=Money.of("1.00", "EUR"),
                                                                   idempotency_key="k"), retry=Retry(total=2))
    error = caught.value
    assert not isinstance(error, OutcomeUnknown) and not error.may_have_been_sent and not error.retryable
    assert error.code == "unsendable_header" and "Authorization header" in error.message and app.seen == []
    assert error.__cause__ is None and error.__context__ is None
    watch = LeakWatch()
    watch.note_error(error)
    watch.note("the error's traceback", "".join(traceback.format_exception(error)))
    assert not watch.leaks([credential.strip(), credential])
