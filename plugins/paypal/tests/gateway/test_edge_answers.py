"""2xx answers that are not successes, found in an audit: PayPal's Payments v2 lists FAILED among a
capture's statuses (capture_status: COMPLETED, DECLINED, PARTIALLY_REFUNDED, PENDING, REFUNDED,
FAILED). The emulator never answers one, so these tests serve PayPal's documented answer from a
small loopback server of their own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import paywire_paypal
from paywire import Declined, Gateway, MethodConfig, Money, OutcomeUnknown, PaywireError, Plugins, Retry, Subject

AUTHORIZATION = "0VF52814937998046"
ORDER = "5O190127TN364715T"


def _capture(status: str) -> dict[str, Any]:
    return {
        "id": "2GG279541U471931P", "status": status,
        "amount": {"currency_code": "EUR", "value": "30.00"}, "final_capture": False,
        "supplementary_data": {"related_ids": {"order_id": ORDER, "authorization_id": AUTHORIZATION}},
        "create_time": "2026-12-04T05:40:00Z", "update_time": "2026-12-04T05:40:01Z",
    }


def _order(status: str, order_status: str = "COMPLETED") -> dict[str, Any]:
    if order_status != "COMPLETED":  # nothing captured: the order's own status says where it stands
        return {"id": ORDER, "intent": "CAPTURE", "status": order_status,
                "purchase_units": [{"reference_id": "default", "amount": {"currency_code": "EUR", "value": "30.00"}}],
                "links": [{"rel": "payer-action", "method": "GET",
                           "href": f"https://www.sandbox.paypal.com/checkoutnow?token={ORDER}"}]}
    return {
        "id": ORDER, "intent": "CAPTURE", "status": "COMPLETED",
        "purchase_units": [{"reference_id": "default", "amount": {"currency_code": "EUR", "value": "30.00"},
                            "payments": {"captures": [_capture(status)]}}],
    }


@pytest.fixture
def paypal_answering() -> Iterator[Any]:
    """`paypal_answering(capture_status, order_status="COMPLETED") -> Gateway` on a loopback server
    that answers every capture (of an authorization or of an order, and a vaulted sale) with a
    capture in that status, in an order in `order_status`."""
    servers: list[ThreadingHTTPServer] = []
    gateways: list[Gateway] = []

    def start(status: str, order_status: str = "COMPLETED") -> Gateway:
        class PayPal(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/oauth2/token":
                    self._json(200, {"access_token": "A21AAtesttoken", "token_type": "Bearer",
                                     "expires_in": 32400, "app_id": "APP-80W284485P519543T"})
                elif self.path.startswith("/v2/payments/authorizations/"):
                    self._json(201, _capture(status))
                else:
                    self._json(201, _order(status, order_status))

            def do_GET(self) -> None:
                if self.path.startswith("/v3/vault/payment-tokens/"):
                    self._json(200, {"id": "8kk845", "payment_source": {"card": {"last_digits": "1111"}}})
                else:
                    self._json(200, {**_order(status), "status": "APPROVED",
                                     "purchase_units": [{"amount": {"currency_code": "EUR", "value": "30.00"}}]})

            def _json(self, code: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Paypal-Debug-Id", "f1e2d3c4b5a69")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), PayPal)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        plugins = Plugins()
        plugins.register(paywire_paypal, name="paypal")
        settings = {"base_url": f"http://127.0.0.1:{server.server_address[1]}", "environment": "sandbox",
                    "credentials": {"client_id": "answer-test-client", "client_secret": "answer-test-secret-1f"}}
        gateway = Gateway([MethodConfig.from_mapping("paypal", settings)], plugins=plugins, retry=Retry.never())
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        gateway.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def _run(gateway: Gateway, command: str, **fields: Any) -> Any:
    try:
        return gateway.execute("paypal", command, Subject(**fields))
    except PaywireError as error:
        return error


@pytest.mark.parametrize("command, fields", [
    ("capture", {"reference": AUTHORIZATION, "final": False}),
    ("complete", {"reference": ORDER}),
    ("sale", {"source": "8kk845", "vaulted": True}),
])
def test_a_capture_paypal_answers_failed_is_a_final_failure_not_money_captured(paypal_answering, command, fields):
    gateway = paypal_answering("FAILED")
    outcome = _run(gateway, command, amount=Money.of("30.00", "EUR"), idempotency_key="failed-capture-1", **fields)
    assert isinstance(outcome, Declined) and not outcome.retryable, outcome
    assert outcome.code == "CAPTURE_FAILED"


def test_a_completed_capture_from_the_same_server_succeeds(paypal_answering):
    gateway = paypal_answering("COMPLETED")
    outcome = _run(gateway, "capture", reference=AUTHORIZATION, final=False, amount=Money.of("30.00", "EUR"),
                   idempotency_key="completed-capture-1")
    assert outcome.succeeded and outcome.amount == Money.of("30.00", "EUR"), outcome


@pytest.mark.parametrize("order_status", ["APPROVED", "CREATED", "SAVED", "VOIDED"])
def test_a_completed_order_answer_not_completed_is_an_unknown_outcome_not_a_payment(paypal_answering, order_status):
    """Orders v2 lists CREATED, SAVED, APPROVED, VOIDED, COMPLETED and PAYER_ACTION_REQUIRED as an
    order's statuses: an answer to capture that is not COMPLETED shows no captured money."""
    gateway = paypal_answering("COMPLETED", order_status)
    outcome = _run(gateway, "complete", reference=ORDER, amount=Money.of("30.00", "EUR"),
                   idempotency_key=f"complete-{order_status}")
    assert isinstance(outcome, OutcomeUnknown) and outcome.may_have_been_sent, outcome


def test_a_completed_order_answer_waiting_for_the_payer_is_buyer_action_with_its_link(paypal_answering):
    gateway = paypal_answering("COMPLETED", "PAYER_ACTION_REQUIRED")
    outcome = _run(gateway, "complete", reference=ORDER, amount=Money.of("30.00", "EUR"),
                   idempotency_key="complete-payer-action")
    assert outcome.action_required and outcome.captured is None, outcome
    assert outcome.action.redirect_url.endswith(f"token={ORDER}")
