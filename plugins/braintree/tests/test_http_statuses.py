"""HTTP statuses with no GraphQL error class, from a proxy in front of Braintree: a 408 (the
official SDK's RequestTimeoutError) or a proxy's 4xx may come after Braintree made the mutation,
so the operation is unknown, never failed; the statuses the SDK reads as refusals stay refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from paywire import AuthenticationError, Money, OutcomeUnknown, PaymentService
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


class _StatusProxy:
    """Forwards every POST to the emulator (which applies it) and, once armed, answers the next
    mutation naming `field` with `status` and a plain-text body instead of Braintree's answer: a
    load balancer's or proxy's answer after the request reached Braintree."""

    def __init__(self, upstream: str) -> None:
        self.field: str | None = None
        self.status = 408
        self.forward = True  # False: answer without passing the request on (Braintree never saw it)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = json.loads(body)["query"]
                armed = proxy.field is not None and query.lstrip().startswith("mutation") \
                    and f"{proxy.field}(" in query
                status, reply, kind = proxy.status, b"upstream request timed out", "text/plain"
                if not armed or proxy.forward:
                    headers = {name: self.headers[name] for name in ("Authorization", "Braintree-Version",
                                                                     "Content-Type") if name in self.headers}
                    answer = urllib3.request("POST", upstream + self.path, body=body, headers=headers, timeout=10)
                    if not armed:
                        status, reply, kind = answer.status, answer.data, "application/json"
                if armed:
                    proxy.field = None
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxied(behind: Callable[[Callable[[str], _StatusProxy]], tuple[PaymentService, _StatusProxy]]) -> tuple[PaymentService, _StatusProxy]:
    return behind(_StatusProxy)


@pytest.mark.parametrize("status", [408, 409, 413, 499])
def test_a_sale_answered_with_a_bare_4xx_after_braintree_made_it_is_unknown_then_reconciled(
        proxied: tuple[PaymentService, _StatusProxy], emulator: BraintreeEmulator, status: int) -> None:
    service, proxy = proxied
    proxy.field, proxy.status = "chargePaymentMethod", status
    with pytest.raises(OutcomeUnknown):
        service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id=f"T-{status}",
                     idempotency_key=f"bare-{status}-sale")
    (txn,) = service.list_transactions()
    assert txn.status == "unknown", "Braintree made the sale: never recorded failed"
    service.reconcile(payment_id=txn.payment_id)
    assert service.get_transaction(txn.id).status == "succeeded"
    assert service.get_payment(txn.payment_id or "").captured == Money.of("12.00", EUR)


def test_a_capture_answered_408_after_braintree_made_it_is_unknown_then_reconciled(
        proxied: tuple[PaymentService, _StatusProxy]) -> None:
    service, proxy = proxied
    payment = service.authorize("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="T-C",
                                idempotency_key="bare-408-auth")
    proxy.field = "partialCaptureTransaction"
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, Money.of("5.00", EUR), final=False)
    txn = service.list_transactions(payment.id)[-1]
    assert (txn.kind, txn.status) == ("capture", "unknown")
    service.reconcile(payment_id=payment.id)
    assert service.get_transaction(txn.id).status == "succeeded"
    assert service.get_payment(payment.id).captured == Money.of("5.00", EUR)


def test_a_bare_401_is_still_a_refusal(proxied: tuple[PaymentService, _StatusProxy],
                                      emulator: BraintreeEmulator) -> None:
    """The statuses the SDK reads as refusals (a credential refused) are recorded failed, as before."""
    service, proxy = proxied
    proxy.field, proxy.status, proxy.forward = "chargePaymentMethod", 401, False
    with pytest.raises(AuthenticationError):
        service.sale("braintree", Money.of("12.00", EUR), source="fake-valid-nonce", order_id="T-401",
                     idempotency_key="bare-401-sale")
    (txn,) = service.list_transactions()
    assert txn.status == "failed"
    assert not emulator.transactions
