"""A stateful local emulator of PayPal's REST API, for tests and offline development.

Covers OAuth client credentials (`/v1/oauth2/token`), Orders v2, Payments v2 (authorizations,
captures, refunds), Vault v3 (setup and payment tokens), webhook delivery signed as PayPal signs
(SHA256withRSA over `transmission id|time|webhook id|CRC32(body)`, certificate served at
`PAYPAL-CERT-URL`) and `/v1/notifications/verify-webhook-signature`. Every response carries a
`Paypal-Debug-Id` header; errors have PayPal's shape (`name, message, debug_id, details, links`).

Test inputs
-----------
- Buyer approval: visit an order's `approve`/`payer-action` link,
  `GET|POST {base}/checkoutnow?token=ORDER_ID[&payer=...]`, or call `app.approve(order_id, payer)`.
  `payer` is `approve` (default), `cancel`, `decline` (capture/authorize -> 422
  INSTRUMENT_DECLINED with a `redirect` link back to this page, where the buyer picks another
  source, the order still APPROVED; no link for an order paid from the vault), `payer_action`
  (-> 422 PAYER_ACTION_REQUIRED, order back to PAYER_ACTION_REQUIRED), `deny` (capture DECLINED +
  PAYMENT.CAPTURE.DENIED, authorization DENIED), `pending` / `echeck` (capture PENDING, reason PENDING_REVIEW / ECHECK, until
  `app.settle_capture(id, "COMPLETED"|"DECLINED")`) or `refund_pending` (refunds PENDING, reason
  ECHECK, until `app.settle_refund(id, "COMPLETED"|"FAILED"|"CANCELLED")`) or `review`
  (authorizations PENDING, reason PENDING_REVIEW, until
  `app.decide_authorization(id, "CREATED"|"DENIED")`). Settling sends the
  signed webhook PayPal sends when a webhook URL is set (see `outcomes`).
  With a `return_url` the page redirects there with `token` and `PayerID`, as PayPal does.
- PayPal-wallet setup tokens are approved the same way at
  `{base}/agreements/approve?approval_session_id=SETUP_TOKEN_ID[&payer=...]`; the choice sticks
  to the payment token and applies to every order it pays.
- Cards (Vault only): PayPal's sandbox rejection triggers as the card name (`CCREJECT-REFUSED`,
  `CCREJECT-SF`, `CCREJECT-EC`, `CCREJECT-IF`, `CCREJECT-LS`, `CCREJECT-IA`, `CCREJECT-BANK_ERROR`,
  `CCREJECT-CVV_F`, `CCREJECT-IRC`) make captures DECLINED with that processor response code.
- Account settings: `capture_overage_percent` (115) and `capture_overage_max` (minor units an
  overage may add, by currency: USD 75.00), which bound what an authorization's captures add up
  to (422 MAX_CAPTURE_AMOUNT_EXCEEDED past it) and what a reauthorization holds (422
  AUTHORIZATION_AMOUNT_EXCEEDED); `max_captures`, the number of captures
  an authorization allows (PayPal sets it per account; none unless given): past it a capture is
  422 MAX_CAPTURE_COUNT_EXCEEDED.
- Time is the emulator's `clock` (seconds since the epoch; `time.time` by default): an
  authorization expires after its 29 days (a reauthorization of it too: it restarts the honor
  period, not the 29 days), and a reauthorization within its 3-day honor period
  is 422 REAUTHORIZATION_TOO_SOON (give a clock the test moves to get past it).
- PayPal's negative-testing header works on Orders and Payments calls:
  `PayPal-Mock-Response: {"mock_application_codes": "INSTRUMENT_DECLINED"}` answers that error.

Test controls
-------------
`expire_tokens()` (also `POST /_paywire/paypal/expire-tokens`), `expire_authorization(id)`,
`reverse_approval(order_id)` (the capture window after approval passed: the order is VOIDED and
CHECKOUT.PAYMENT-APPROVAL.REVERSED sent, its resource naming the order as `order_id`),
`settle_capture(id, status)`, `settle_refund(id, status)` and `decide_authorization(id, status)` (the first two also `POST /_paywire/paypal/settle`
with `{"capture_id"|"refund_id": ID, "status": S}`), `reverse_capture(capture_id)` (also
`POST /_paywire/paypal/reverse` with `{"capture_id": ID}`: PayPal reverses what is left of a
completed capture, a chargeback, as a refund of it announced by PAYMENT.CAPTURE.REVERSED),
`deny_capture(capture_id, reason)` (PayPal takes a completed capture's money back: DENIED with
`status_details.reason` CHARGEBACK by default, announced by PAYMENT.CAPTURE.DENIED),
`approve(order_id, payer)` (also
`POST /_paywire/paypal/approve`), the base's fault injection (`inject(Fault(...))`,
`POST /_paywire/faults`: latency, 5xx, 429 with Retry-After, a status after the effect
(`status_after`, answered in PayPal's error shape; a retry with the same PayPal-Request-Id gets
the real result), dropped connection after the effect), `signed_event(event)` -> (bytes, headers),
`certificate_pem`, `cert_url()`, and the state itself (`orders`, `captures`, `events`, ...).
"""

from paywire_paypal.emulator.app import PayPalEmulator
from paywire_paypal.emulator.outcomes import APPROVAL_OUTCOMES

__all__ = ["APPROVAL_OUTCOMES", "PayPalEmulator"]
