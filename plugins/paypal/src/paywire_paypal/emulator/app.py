"""`PayPalEmulator`: the PayPal REST API emulator, put together from its API modules."""

from __future__ import annotations

from paywire.testing.emulator import EmulatorRequest, Reply
from paywire_paypal.emulator.disputes import DisputesAPI
from paywire_paypal.emulator.errors import PayPalError
from paywire_paypal.emulator.oauth import OAuthAPI
from paywire_paypal.emulator.orders import OrdersAPI
from paywire_paypal.emulator.payments import PaymentsAPI
from paywire_paypal.emulator.vault import VaultAPI
from paywire_paypal.emulator.webhooks import WebhooksAPI

__all__ = ["PayPalEmulator"]


class PayPalEmulator(OAuthAPI, OrdersAPI, DisputesAPI, PaymentsAPI, VaultAPI, WebhooksAPI):
    """A stateful stand-in for PayPal's REST API (OAuth, Orders v2, Payments v2, Vault v3, webhooks).

    Construct with the credentials it accepts and the webhook id it signs for::

        app = PayPalEmulator(client_id="id", client_secret="secret", webhook_id="WH1", token_ttl=60)
        with app.serve() as server:          # EmulatorServer; server.url is the API base URL
            ...

    State is public for assertions (`orders`, `authorizations`, `captures`, `refunds`, `disputes`,
    `setup_tokens`, `payment_tokens`, `events`, `calls`). Test controls: `approve(order_id, payer)`,
    `expire_tokens()`, `expire_authorization(id)`, `reverse_approval(order_id)`,
    `settle_capture(id, status)`, `settle_refund(id, status)`, `open_dispute(capture_id)`,
    `resolve_dispute(id, buyer_wins)`, `inject(Fault)`,
    `signed_event(event)`, `certificate_pem`, `cert_url()`.
    """

    def _control(self, request: EmulatorRequest) -> Reply:
        # PayPal-specific controls next to the base's (/_paywire/faults, /calls, /webhook-url).
        try:
            return self._paypal_control(request)
        except PayPalError as error:
            return self.error_reply(error, request)

    def _paypal_control(self, request: EmulatorRequest) -> Reply:
        if request.method == "POST" and request.path == "/_paywire/paypal/expire-tokens":
            self.expire_tokens()
            return Reply.json(200, {"ok": True})
        if request.method == "POST" and request.path == "/_paywire/paypal/approve":
            params = request.json() or {}
            self.approve(str(params.get("order_id")), str(params.get("payer", "approve")))
            return Reply.json(200, {"ok": True})
        if request.method == "POST" and request.path == "/_paywire/paypal/settle":
            # {"capture_id": ID, "status": "COMPLETED"|"DECLINED"} or {"refund_id": ID, "status": ...}
            params = request.json() or {}
            try:
                if "refund_id" in params:
                    self.settle_refund(str(params["refund_id"]), str(params.get("status", "COMPLETED")))
                else:
                    self.settle_capture(str(params.get("capture_id")), str(params.get("status", "COMPLETED")))
            except (KeyError, ValueError) as error:
                return Reply.json(400, {"error": {"message": str(error)}})
            return Reply.json(200, {"ok": True})
        if request.method == "POST" and request.path == "/_paywire/paypal/reverse":
            # {"capture_id": ID}: PayPal reverses what is left of the capture (a chargeback)
            params = request.json() or {}
            try:
                refund_id = self.reverse_capture(str(params.get("capture_id")))
            except (KeyError, ValueError) as error:
                return Reply.json(400, {"error": {"message": str(error)}})
            return Reply.json(200, {"ok": True, "refund_id": refund_id})
        return super()._control(request)
