"""The test buyer's choices on the emulator's approval pages, and where the browser goes next.

PayPal's sandbox has real buyers; the emulator has a `payer` parameter on its approval pages
(`/checkoutnow?token=ORDER_ID` and `/agreements/approve?approval_session_id=SETUP_TOKEN_ID`):

- `approve` (default): the buyer approves; payments complete.
- `cancel`: the buyer cancels; nothing changes, the browser goes to `cancel_url`.
- `decline`: approved, but capturing or authorizing the order fails with 422
  INSTRUMENT_DECLINED (with a `redirect` link back to the approval page, as PayPal's has).
- `payer_action`: approved, but capturing or authorizing fails with 422 PAYER_ACTION_REQUIRED
  and the order goes back to PAYER_ACTION_REQUIRED until approved again.
- `deny`: approved; the capture is recorded as DECLINED (PAYMENT.CAPTURE.DENIED), an
  authorization as DENIED.
- `pending`: approved; captures are PENDING (reason PENDING_REVIEW) until the test control
  `settle_capture(capture_id, "COMPLETED" | "DECLINED")`.
- `echeck`: as `pending`, with reason ECHECK (the buyer paid by an eCheck that has not cleared).
- `refund_pending`: approved; captures complete, refunds are PENDING (reason ECHECK) until
  `settle_refund(refund_id, "COMPLETED" | "FAILED" | "CANCELLED")`.
- `review`: approved; authorizations (and reauthorizations) are PENDING (reason PENDING_REVIEW)
  until `decide_authorization(authorization_id, "CREATED" | "DENIED")`; a capture of one still
  pending is refused (422 TRANSACTION_REFUSED). Captures complete.

PayPal's sandbox documents no request input that makes a capture or refund PENDING (its negative
testing covers error answers only); these stand in for the sandbox's reviewed or eCheck-funded
buyers. Settling sends the webhook PayPal sends (PAYMENT.CAPTURE.COMPLETED / DENIED,
PAYMENT.CAPTURE.REFUNDED / PAYMENT.REFUND.FAILED / PAYMENT.REFUND.CANCELLED) to `webhook_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from paywire.testing.emulator import EmulatorRequest, Reply
from paywire_paypal.emulator.errors import PayPalError, not_found

__all__ = ["APPROVAL_OUTCOMES", "approval_choice", "buyer_visit", "redirect_or_json"]

T = TypeVar("T")

APPROVAL_OUTCOMES = ("approve", "cancel", "decline", "payer_action", "deny", "pending", "echeck", "refund_pending",
                     "review")


def approval_choice(params: Mapping[str, str]) -> str:
    payer = params.get("payer", "approve") or "approve"
    if payer not in APPROVAL_OUTCOMES:
        raise PayPalError.of(
            "INVALID_PARAMETER_VALUE",
            field="payer",
            value=payer,
            location="query",
            description=f"payer must be one of {', '.join(APPROVAL_OUTCOMES)}",
        )
    return payer


def buyer_visit(request: EmulatorRequest, waiting: Mapping[str, T], key: str) -> tuple[T, str]:
    """What a buyer's visit to an approval page names (`key`, in the query or a posted form) and the outcome picked."""
    params = dict(request.query) | dict(parse_qsl(request.body.decode(errors="replace")))
    payer = approval_choice(params)
    found = waiting.get(params.get(key, ""))
    if found is None:
        raise not_found(key, params.get(key), location="query")
    return found, payer


def redirect_or_json(url: str | None, params: Mapping[str, str], payload: dict[str, Any]) -> Reply:
    """Send the browser to `url` with `params` added (as PayPal does), or answer JSON without a URL."""
    if not url:
        return Reply.json(200, payload)
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return Reply(302, b"", {"Location": urlunsplit(parts._replace(query=query))})
