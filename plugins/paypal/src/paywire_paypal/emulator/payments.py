"""Payments v2: authorizations (get, capture, void, reauthorize), captures (get, refund), refunds (get).

PayPal's rules enforced here:
- captures of an authorization may not add up to more than the overage limit (115% of the
  authorized amount by default, and no more than USD 75 above it; see `overage_limit`):
  MAX_CAPTURE_AMOUNT_EXCEEDED. The authorization keeps its amount, and is CAPTURED once its
  captures reach it; several partial captures are
  allowed until `final_capture` or the full amount closes the authorization (CAPTURED), up to the
  account's number of captures per authorization (`max_captures`; PayPal sets it per account and
  publishes no default, so none unless given): MAX_CAPTURE_COUNT_EXCEEDED, the authorization
  staying as it is (its rest can still be voided);
- a capture without an amount takes the full authorized amount (again, after partial captures,
  within the overage limit), as PayPal documents; a reauthorization holds at most the overage
  limit (AUTHORIZATION_AMOUNT_EXCEEDED); capturing a closed authorization is
  AUTHORIZATION_ALREADY_CAPTURED, a voided one AUTHORIZATION_VOIDED, an expired one
  AUTHORIZATION_EXPIRED, a denied one AUTHORIZATION_DENIED;
- a reauthorization is refused within the authorization's 3-day honor period
  (REAUTHORIZATION_TOO_SOON: "only allowed ... from Day 4 to Day 29 since the date of the
  original authorization"), the authorization staying as it is; after its 29 days it is EXPIRED,
  and so is a reauthorization of it: that restarts the honor period, not the 29 days ("if you do
  a re-authorization on the 27th day of the authorization, you get only two days");
- void cancels what is not captured: refused once fully captured (PREVIOUSLY_CAPTURED) or voided
  (PREVIOUSLY_VOIDED); a partially captured authorization can still be voided, as PayPal allows
  (after a capture that was not `final_capture`): it becomes VOIDED, its captures stand (and can
  be refunded), and a later capture of it is AUTHORIZATION_VOIDED; a reauthorization cannot be
  voided (CANNOT_BE_VOIDED: "Please void the original parent authorization"), and voiding its
  original voids it too while it is open or PayPal still reviews it (PENDING);
- a reauthorization PayPal reviews (PENDING, `review_reauthorizations`) takes no capture until
  PayPal creates it (`decide_authorization`), and the authorization it renews takes none from the
  moment it was asked for, nor after PayPal denied it, until another reauthorization is created.
  PayPal documents neither ("any subsequent capture should be performed on the new Authorization
  ID"); this is the reading that takes least. A new reauthorization voids the one before it that
  was created or still reviewed;
- refunds never exceed what is left of the capture (REFUND_AMOUNT_EXCEEDED); a refund without an
  amount refunds the rest; a fully refunded capture is CAPTURE_FULLY_REFUNDED, a pending one
  PENDING_CAPTURE, a declined one REFUND_NOT_ALLOWED;
- a PENDING refund holds its amount (it counts against what is left) until it settles; a FAILED
  or CANCELLED one gives it back, and the capture's status follows;
- PayPal reversing a capture (`reverse_capture`: a chargeback) refunds what is left of it;
  a completed capture PayPal denies later (`deny_capture`: its money taken back) no longer
  counts as captured and cannot be refunded (REFUND_NOT_ALLOWED), but still counts against its
  authorization, which it does not reopen.
The money-moving operations are shared with orders.py, which captures and authorizes orders.
"""

from __future__ import annotations

import json
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_paypal.emulator import ids, render
from paywire_paypal.emulator.amounts import exponent, format_minor, parse_money
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.errors import PayPalError, not_found
from paywire_paypal.emulator.model import (
    CAPTURED_STATUSES,
    CONSUMED_STATUSES,
    Authorization,
    Capture,
    Order,
    PurchaseUnit,
    Refund,
)
from paywire_paypal.emulator.oauth import PAYMENTS, REFUNDS

__all__ = ["PaymentsAPI", "authorize_unit", "capture_unit", "overage_limit", "summary_amount"]

AUTHORIZATION_DAYS = 29
# PayPal's honor period: a reauthorization is allowed from day 4 of the authorization on.
HONOR_DAYS = 3
_DAY = 86400.0
# Processor response codes of PayPal's card rejection triggers (card name CCREJECT-*).
DECLINE_CODES = {
    "CCREJECT-REFUSED": "0500",
    "CCREJECT-SF": "9500",
    "CCREJECT-EC": "5400",
    "CCREJECT-IRC": "5180",
    "CCREJECT-IF": "5120",
    "CCREJECT-LS": "9520",
    "CCREJECT-IA": "1330",
    "CCREJECT-BANK_ERROR": "5100",
    "CCREJECT-CVV_F": "00N7",
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "$", "CAD": "$"}


def summary_amount(minor: int, currency: str) -> str:
    """An amount as PayPal's event summaries write it ("$ 5.00 USD")."""
    return f"{_SYMBOLS.get(currency, currency)} {format_minor(minor, currency)} {currency}"


def paypal_fee(minor: int, currency: str) -> int:
    """An illustrative PayPal fee (3.49% plus a fixed part), never more than the amount."""
    fixed = {"JPY": 40, "HUF": 90, "TWD": 10}.get(currency, 49 if exponent(currency) == 2 else 0)
    return min(minor, (minor * 349 + 5000) // 10000 + fixed)


def captured_minor(app: PayPalApp, auth: Authorization) -> int:
    """What the captures of `auth` took of it, those PayPal took back since included (`CONSUMED_STATUSES`)."""
    return sum(app.captures[c].amount_minor for c in auth.capture_ids if app.captures[c].status in CONSUMED_STATUSES)


def overage_limit(app: PayPalApp, auth: Authorization) -> int:
    """The most the captures of `auth` may add up to, and a reauthorization of it may hold:
    `capture_overage_percent` of its amount, and no more above it than `capture_overage_max` gives
    for its currency (PayPal: "up to 115% of or $75 USD more than the original authorized amount,
    whichever is less")."""
    limit = auth.amount_minor * app.capture_overage_percent // 100
    most = app.capture_overage_max.get(auth.currency)
    return limit if most is None else min(limit, auth.amount_minor + most)


def refunded_minor(app: PayPalApp, cap: Capture) -> int:
    return sum(app.refunds[r].amount_minor for r in cap.refund_ids if app.refunds[r].status not in _UNDONE)


_UNDONE = frozenset({"FAILED", "CANCELLED"})  # refund statuses that gave the money back to the capture


def settle_capture_status(app: PayPalApp, cap: Capture) -> None:
    """A refunded capture's status from its live refunds (PENDING ones included: their money is held)."""
    refunded = refunded_minor(app, cap)
    if cap.status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
        cap.status = "COMPLETED" if refunded == 0 else "REFUNDED" if refunded >= cap.amount_minor \
            else "PARTIALLY_REFUNDED"


def processor_response(outcome: str) -> dict[str, str] | None:
    code = DECLINE_CODES.get(outcome)
    return {"avs_code": "G", "cvv_code": "P", "response_code": code} if code else None


def capture_unit(
    app: PayPalApp,
    order: Order,
    unit: PurchaseUnit,
    amount_minor: int,
    *,
    outcome: str,
    authorization: Authorization | None = None,
    final_capture: bool = True,
    invoice_id: str | None = None,
    custom_id: str | None = None,
    note_to_payer: str | None = None,
) -> Capture:
    """Record a capture of `unit` (of an order, or of one of its authorizations) and announce it.

    `outcome` is the paying instrument's test behaviour: "deny" and the card rejection triggers
    give a DECLINED capture, "pending" a PENDING one; anything else completes.
    """
    now = app.now()
    declined = outcome == "deny" or outcome in DECLINE_CODES
    status, reason = "COMPLETED", None
    if declined:
        status = "DECLINED"
    elif outcome in ("pending", "echeck"):
        status, reason = "PENDING", "ECHECK" if outcome == "echeck" else "PENDING_REVIEW"
    cap = Capture(
        id=ids.resource_id(),
        order_id=order.id,
        reference_id=unit.reference_id,
        authorization_id=authorization.id if authorization else None,
        amount_minor=amount_minor,
        currency=unit.currency,
        status=status,
        final_capture=final_capture,
        fee_minor=0 if declined else paypal_fee(amount_minor, unit.currency),
        create_time=now,
        update_time=now,
        status_reason=reason,
        processor_response=processor_response(outcome) if declined else None,
        invoice_id=invoice_id,
        custom_id=custom_id,
        note_to_payer=note_to_payer,
    )
    app.captures[cap.id] = cap
    unit.capture_ids.append(cap.id)
    if authorization is not None:
        authorization.capture_ids.append(cap.id)
        authorization.update_time = now
        settle_authorization(app, authorization)
    announce_capture(app, cap)
    return cap


def settle_authorization(app: PayPalApp, auth: Authorization) -> None:
    """Derive an open authorization's status from its captures (a DECLINED one moved nothing; one
    DENIED after it completed still took its part, `CONSUMED_STATUSES`)."""
    if auth.status not in ("CREATED", "PARTIALLY_CAPTURED", "CAPTURED"):
        return
    live = [app.captures[c] for c in auth.capture_ids if app.captures[c].status in CONSUMED_STATUSES]
    captured = sum(c.amount_minor for c in live)
    if any(c.final_capture for c in live) or captured >= auth.amount_minor:
        auth.status = "CAPTURED"
    else:
        auth.status = "PARTIALLY_CAPTURED" if live else "CREATED"


def announce_capture(app: PayPalApp, cap: Capture) -> None:
    amount = summary_amount(cap.amount_minor, cap.currency)
    event_type, summary = {
        "COMPLETED": ("PAYMENT.CAPTURE.COMPLETED", f"Payment completed for {amount}"),
        "PENDING": ("PAYMENT.CAPTURE.PENDING", f"Payment pending for {amount}"),
        "DECLINED": ("PAYMENT.CAPTURE.DENIED", f"Payment denied for {amount}"),
    }[cap.status]
    app.emit(event_type, "capture", summary, render.capture(app, cap))


def authorize_unit(
    app: PayPalApp,
    order: Order,
    unit: PurchaseUnit,
    *,
    outcome: str,
    amount_minor: int | None = None,
    parent: Authorization | None = None,
) -> Authorization:
    """Record an authorization of `unit` (DENIED for a declining instrument, PENDING while PayPal
    reviews it: outcome "review") and announce it once it is CREATED."""
    now = app.now()
    denied = outcome == "deny" or outcome in DECLINE_CODES
    status = "DENIED" if denied else "PENDING" if outcome == "review" else "CREATED"
    auth = Authorization(
        id=ids.resource_id(),
        order_id=order.id,
        reference_id=unit.reference_id,
        amount_minor=unit.amount_minor if amount_minor is None else amount_minor,
        currency=unit.currency,
        status=status,
        create_time=now,
        update_time=now,
        # A reauthorization restarts the honor period, not the 29 days of the original.
        expiration_time=parent.expiration_time if parent else now + AUTHORIZATION_DAYS * _DAY,
        outcome=outcome,
        invoice_id=unit.request.get("invoice_id"),
        custom_id=unit.request.get("custom_id"),
        parent_id=parent.id if parent else None,
    )
    app.authorizations[auth.id] = auth
    unit.authorization_ids.append(auth.id)
    if status == "CREATED":
        announce_authorization(app, auth)
    return auth


def announce_authorization(app: PayPalApp, auth: Authorization) -> None:
    app.emit(
        "PAYMENT.AUTHORIZATION.CREATED",
        "authorization",
        f"A payment authorization was created for {summary_amount(auth.amount_minor, auth.currency)}",
        render.authorization(app, auth),
    )


def check_invoice_id(app: PayPalApp, invoice_id: str | None, order_id: str) -> None:
    """PayPal's default account setting blocks a second payment for the same invoice id."""
    if invoice_id is None:
        return
    for cap in app.captures.values():
        if cap.invoice_id == invoice_id and cap.order_id != order_id and cap.status in CAPTURED_STATUSES:
            raise PayPalError(422, "DUPLICATE_INVOICE_ID", field="/invoice_id", value=invoice_id)


class PaymentsAPI(PayPalApp):
    # Test control: PayPal holds the reauthorizations asked for from now on PENDING for review
    # (`status_details.reason` PENDING_REVIEW), decided by `decide_authorization`.
    review_reauthorizations: bool = False

    # -- lookups -------------------------------------------------------------------------------
    def _authorization(self, auth_id: str) -> Authorization:
        auth = self.authorizations.get(auth_id)
        if auth is None:
            raise not_found("authorization_id", auth_id)
        if auth.status in ("CREATED", "PARTIALLY_CAPTURED") and self.now() >= auth.expiration_time:
            auth.status = "EXPIRED"
            auth.update_time = auth.expiration_time
        return auth

    def _capture(self, capture_id: str) -> Capture:
        cap = self.captures.get(capture_id)
        if cap is None:
            raise not_found("capture_id", capture_id)
        return cap

    def _unit_of(self, order_id: str, reference_id: str) -> tuple[Order, PurchaseUnit]:
        order = self.orders[order_id]
        return order, next(u for u in order.purchase_units if u.reference_id == reference_id)

    def _view(self, request: EmulatorRequest, status: int, view: dict[str, Any]) -> Reply:
        return Reply.json(status, view if self.wants_representation(request) else render.minimal(view))

    # -- authorizations ------------------------------------------------------------------------
    @route("GET", r"/v2/payments/authorizations/(?P<id>[^/]+)")
    def get_authorization(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, PAYMENTS)
        self.mock_response(request)
        with self.lock:
            return Reply.json(200, render.authorization(self, self._authorization(request.params["id"])))

    @route("POST", r"/v2/payments/authorizations/(?P<id>[^/]+)/capture")
    def capture_authorization(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, PAYMENTS)
        self.mock_response(request)
        body = self.json_body(request)

        def run() -> Reply:
            with self.lock:
                return self._view(request, 201, render.capture(self, self._capture_authorization(request, body)))

        def replay(first: Reply) -> Reply:
            with self.lock:
                return self._view(request, 200, render.capture(self, self.captures[_id_of(first)]))

        return self.once(request, run, replay)

    def _capture_authorization(self, request: EmulatorRequest, body: dict[str, Any]) -> Capture:
        auth = self._authorization(request.params["id"])
        refusal = {
            "VOIDED": "AUTHORIZATION_VOIDED",
            "EXPIRED": "AUTHORIZATION_EXPIRED",
            "DENIED": "AUTHORIZATION_DENIED",
            "CAPTURED": "AUTHORIZATION_ALREADY_CAPTURED",
        }.get(auth.status)
        if refusal:
            raise PayPalError(422, refusal)
        if auth.status == "PENDING":
            raise PayPalError(422, "TRANSACTION_REFUSED",
                              description="This authorization is pending review; capture it once it is created.")
        if auth.reauthorized_by is not None:
            raise PayPalError(
                422,
                "TRANSACTION_REFUSED",
                description=f"This authorization was reauthorized; capture {auth.reauthorized_by} instead.",
            )
        already = captured_minor(self, auth)
        made = sum(1 for c in auth.capture_ids if self.captures[c].status in CONSUMED_STATUSES)
        if self.max_captures is not None and made >= self.max_captures:
            raise PayPalError(422, "MAX_CAPTURE_COUNT_EXCEEDED")
        if "amount" in body:
            amount, currency = parse_money(body["amount"], "/amount", no_decimals_issue="DECIMALS_NOT_SUPPORTED")
            if currency != auth.currency:
                raise PayPalError(422, "AUTH_CAPTURE_CURRENCY_MISMATCH", field="/amount/currency_code", value=currency)
        else:
            # "If amount is not specified, the full authorized amount is captured" (Payments v2),
            # whatever earlier captures took: not what is left.
            amount = auth.amount_minor
        if amount <= 0 or already + amount > overage_limit(self, auth):
            raise PayPalError(422, "MAX_CAPTURE_AMOUNT_EXCEEDED", field="/amount/value")
        final = body.get("final_capture", False)
        if not isinstance(final, bool):
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="/final_capture", value=str(final))
        invoice_id = _optional_string(body, "invoice_id", 127)
        order, unit = self._unit_of(auth.order_id, auth.reference_id)
        check_invoice_id(self, invoice_id, order.id)
        return capture_unit(
            self,
            order,
            unit,
            amount,
            outcome=auth.outcome,
            authorization=auth,
            final_capture=final,
            invoice_id=invoice_id if invoice_id is not None else auth.invoice_id,
            custom_id=auth.custom_id,
            note_to_payer=_optional_string(body, "note_to_payer", 255),
        )

    @route("POST", r"/v2/payments/authorizations/(?P<id>[^/]+)/void")
    def void_authorization(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, PAYMENTS)
        self.mock_response(request)

        def answer(auth: Authorization) -> Reply:
            if self.wants_representation(request):
                return Reply.json(200, render.authorization(self, auth))
            return Reply(204)

        def run() -> Reply:
            with self.lock:
                return answer(self._void(request))

        def replay(first: Reply) -> Reply:
            with self.lock:
                return answer(self.authorizations[request.params["id"]])

        return self.once(request, run, replay)

    def _void(self, request: EmulatorRequest) -> Authorization:
        auth = self._authorization(request.params["id"])
        if auth.parent_id is not None:
            raise PayPalError(422, "CANNOT_BE_VOIDED")
        refusal = {
            "CAPTURED": "PREVIOUSLY_CAPTURED",
            "VOIDED": "PREVIOUSLY_VOIDED",
            "EXPIRED": "AUTHORIZATION_EXPIRED",
            "DENIED": "AUTHORIZATION_DENIED",
        }.get(auth.status)
        if refusal:
            raise PayPalError(422, refusal)
        voided = [auth]
        child = self.authorizations.get(auth.reauthorized_by or "")
        if child is not None and child.status in ("CREATED", "PARTIALLY_CAPTURED", "PENDING"):
            voided.append(child)
        now = self.now()
        for each in voided:
            each.status = "VOIDED"
            each.update_time = now
        order = self.orders[auth.order_id]
        units_auths = [self.authorizations[a] for u in order.purchase_units for a in u.authorization_ids]
        if all(a.status in ("VOIDED", "DENIED", "EXPIRED") and not a.capture_ids for a in units_auths):
            order.status = "VOIDED"
            order.update_time = now
        for each in voided:
            self.emit(
                "PAYMENT.AUTHORIZATION.VOIDED",
                "authorization",
                "A payment authorization was voided",
                render.authorization(self, each),
            )
        return auth

    @route("POST", r"/v2/payments/authorizations/(?P<id>[^/]+)/reauthorize")
    def reauthorize_authorization(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, PAYMENTS)
        self.mock_response(request)
        body = self.json_body(request)

        def run() -> Reply:
            with self.lock:
                return self._view(request, 201, render.authorization(self, self._reauthorize(request, body)))

        def replay(first: Reply) -> Reply:
            with self.lock:
                return self._view(request, 200, render.authorization(self, self.authorizations[_id_of(first)]))

        return self.once(request, run, replay)

    def _reauthorize(self, request: EmulatorRequest, body: dict[str, Any]) -> Authorization:
        auth = self._authorization(request.params["id"])
        if auth.parent_id is not None:
            raise PayPalError(422, "REAUTHORIZATION_NOT_SUPPORTED")
        refusal = {
            "VOIDED": "AUTHORIZATION_VOIDED",
            "EXPIRED": "AUTHORIZATION_EXPIRED",
            "DENIED": "AUTHORIZATION_DENIED",
            "CAPTURED": "AUTHORIZATION_ALREADY_CAPTURED",
            "PARTIALLY_CAPTURED": "AUTHORIZATION_ALREADY_CAPTURED",
        }.get(auth.status)
        if refusal:
            raise PayPalError(422, refusal)
        if self.now() < auth.create_time + HONOR_DAYS * _DAY:
            raise PayPalError(422, "REAUTHORIZATION_TOO_SOON")
        amount = auth.amount_minor
        if "amount" in body:
            amount, currency = parse_money(body["amount"], "/amount", no_decimals_issue="DECIMALS_NOT_SUPPORTED")
            if currency != auth.currency:
                raise PayPalError(422, "AUTH_CURRENCY_MISMATCH", field="/amount/currency_code", value=currency)
        if amount > overage_limit(self, auth):
            raise PayPalError(422, "AUTHORIZATION_AMOUNT_EXCEEDED", field="/amount/value")
        previous = self.authorizations.get(auth.reauthorized_by or "")
        if previous is not None and previous.status in ("CREATED", "PENDING"):
            previous.status = "VOIDED"
            previous.update_time = self.now()
        order, unit = self._unit_of(auth.order_id, auth.reference_id)
        outcome = "review" if self.review_reauthorizations else auth.outcome
        child = authorize_unit(self, order, unit, outcome=outcome, amount_minor=amount, parent=auth)
        auth.reauthorized_by = child.id
        return child

    def expire_authorization(self, auth_id: str) -> None:
        """Test control: let an authorization reach its expiry now (capture then fails AUTHORIZATION_EXPIRED)."""
        with self.lock:
            auth = self.authorizations[auth_id]
            auth.expiration_time = min(auth.expiration_time, self.now())
            self._authorization(auth_id)

    # -- captures and refunds ------------------------------------------------------------------
    @route("GET", r"/v2/payments/captures/(?P<id>[^/]+)")
    def get_capture(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, PAYMENTS)
        self.mock_response(request)
        with self.lock:
            return Reply.json(200, render.capture(self, self._capture(request.params["id"])))

    @route("POST", r"/v2/payments/captures/(?P<id>[^/]+)/refund")
    def refund_capture(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, REFUNDS)
        self.mock_response(request)
        body = self.json_body(request)

        def run() -> Reply:
            with self.lock:
                return self._view(request, 201, render.refund(self, self._refund(request, body)))

        def replay(first: Reply) -> Reply:
            with self.lock:
                return self._view(request, 200, render.refund(self, self.refunds[_id_of(first)]))

        return self.once(request, run, replay)

    def _refund(self, request: EmulatorRequest, body: dict[str, Any]) -> Refund:
        cap = self._capture(request.params["id"])
        refusal = {
            "REFUNDED": "CAPTURE_FULLY_REFUNDED",
            "PENDING": "PENDING_CAPTURE",
            "DECLINED": "REFUND_NOT_ALLOWED",
            "DENIED": "REFUND_NOT_ALLOWED",
            "FAILED": "REFUND_NOT_ALLOWED",
        }.get(cap.status)
        if cap.status == "DENIED" and cap.status_reason == "CHARGEBACK":
            refusal = "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK"  # PayPal's word for a capture charged back
        if refusal:
            raise PayPalError(422, refusal)
        already = refunded_minor(self, cap)
        remaining = cap.amount_minor - already
        if "amount" in body:
            amount, currency = parse_money(body["amount"], "/amount", no_decimals_issue="DECIMALS_NOT_SUPPORTED")
            if currency != cap.currency:
                raise PayPalError(
                    422, "REFUND_CAPTURE_CURRENCY_MISMATCH", field="/amount/currency_code", value=currency
                )
            if amount > remaining:
                raise PayPalError(422, "REFUND_AMOUNT_EXCEEDED", field="/amount/value", value=body["amount"]["value"])
        else:
            amount = remaining
        refunded_fee = sum(self.refunds[r].fee_minor for r in cap.refund_ids)
        fee = cap.fee_minor - refunded_fee if amount == remaining else cap.fee_minor * amount // cap.amount_minor
        now = self.now()
        order = self.orders.get(cap.order_id)
        pending = order is not None and order.outcome == "refund_pending"
        ref = Refund(
            id=ids.resource_id(),
            capture_id=cap.id,
            order_id=cap.order_id,
            amount_minor=amount,
            currency=cap.currency,
            fee_minor=fee,
            total_refunded_minor=already + amount,
            status="PENDING" if pending else "COMPLETED",
            status_reason="ECHECK" if pending else None,
            create_time=now,
            update_time=now,
            invoice_id=_optional_string(body, "invoice_id", 127),
            custom_id=_optional_string(body, "custom_id", 127),
            note_to_payer=_optional_string(body, "note_to_payer", 255),
        )
        self.refunds[ref.id] = ref
        cap.refund_ids.append(ref.id)
        settle_capture_status(self, cap)
        cap.update_time = now
        announce_refund(self, ref)
        return ref

    @route("GET", r"/v2/payments/refunds/(?P<id>[^/]+)")
    def get_refund(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, REFUNDS)
        self.mock_response(request)
        with self.lock:
            ref = self.refunds.get(request.params["id"])
            if ref is None:
                raise not_found("refund_id", request.params["id"])
            return Reply.json(200, render.refund(self, ref))

    def settle_capture(self, capture_id: str, status: str = "COMPLETED") -> None:
        """Test control: finish a PENDING capture as COMPLETED or DECLINED, sending its webhook."""
        if status not in ("COMPLETED", "DECLINED"):
            raise ValueError("a pending capture settles as COMPLETED or DECLINED")
        with self.lock:
            cap = self.captures[capture_id]
            if cap.status != "PENDING":
                raise ValueError(f"capture {capture_id} is {cap.status}, not PENDING")
            cap.status, cap.status_reason, cap.update_time = status, None, self.now()
            if status == "DECLINED":
                cap.fee_minor = 0
            if cap.authorization_id is not None:
                settle_authorization(self, self.authorizations[cap.authorization_id])
            announce_capture(self, cap)

    def decide_authorization(self, auth_id: str, status: str = "CREATED") -> None:
        """Test control: PayPal's review of a PENDING authorization ends: CREATED (announced by
        PAYMENT.AUTHORIZATION.CREATED) or DENIED (PayPal documents no event for that)."""
        if status not in ("CREATED", "DENIED"):
            raise ValueError("a pending authorization is decided CREATED or DENIED")
        with self.lock:
            auth = self.authorizations[auth_id]
            if auth.status != "PENDING":
                raise ValueError(f"authorization {auth_id} is {auth.status}, not PENDING")
            auth.status, auth.update_time = status, self.now()
            if status == "CREATED":
                announce_authorization(self, auth)

    def settle_refund(self, refund_id: str, status: str = "COMPLETED") -> None:
        """Test control: finish a PENDING refund as COMPLETED, FAILED or CANCELLED, sending its webhook."""
        if status not in ("COMPLETED", "FAILED", "CANCELLED"):
            raise ValueError("a pending refund settles as COMPLETED, FAILED or CANCELLED")
        with self.lock:
            ref = self.refunds[refund_id]
            if ref.status != "PENDING":
                raise ValueError(f"refund {refund_id} is {ref.status}, not PENDING")
            ref.status, ref.update_time = status, self.now()
            ref.status_reason = None if status == "COMPLETED" else ref.status_reason
            if status != "COMPLETED":
                ref.fee_minor = 0
            settle_capture_status(self, self.captures[ref.capture_id])
            announce_refund(self, ref)

    def deny_capture(self, capture_id: str, reason: str = "CHARGEBACK") -> None:
        """Test control: PayPal takes back the money of a completed capture (the payer disputed it
        with the card's issuer, or with PayPal): the capture becomes DENIED with that reason (as
        PayPal's `capture_status_details` documents: CHARGEBACK, BUYER_COMPLAINT, ...) and
        PAYMENT.CAPTURE.DENIED is sent with it. Its authorization stays as it was: the capture
        took its part of it, which PayPal does not offer to capture again (`CONSUMED_STATUSES`)."""
        with self.lock:
            cap = self.captures[capture_id]
            if cap.status != "COMPLETED":
                raise ValueError(f"capture {capture_id} is {cap.status}, not COMPLETED")
            cap.status, cap.status_reason, cap.update_time = "DENIED", reason, self.now()
            self.emit(
                "PAYMENT.CAPTURE.DENIED",
                "capture",
                f"Payment denied for {summary_amount(cap.amount_minor, cap.currency)}",
                render.capture(self, cap),
            )

    def reverse_capture(self, capture_id: str) -> str:
        """Test control: PayPal reverses what is left of a completed capture (a chargeback or dispute
        decided for the buyer). As PayPal documents it, the reversal is a refund of the capture
        (listed with its refunds, the capture then REFUNDED) announced as PAYMENT.CAPTURE.REVERSED
        with that refund as its resource. Returns the refund's id."""
        with self.lock:
            cap = self.captures[capture_id]
            if cap.status not in ("COMPLETED", "PARTIALLY_REFUNDED"):
                raise ValueError(f"capture {capture_id} is {cap.status}: nothing of it can be reversed")
            already = refunded_minor(self, cap)
            now = self.now()
            ref = Refund(
                id=ids.resource_id(),
                capture_id=cap.id,
                order_id=cap.order_id,
                amount_minor=cap.amount_minor - already,
                currency=cap.currency,
                fee_minor=cap.fee_minor - sum(self.refunds[r].fee_minor for r in cap.refund_ids),
                total_refunded_minor=cap.amount_minor,
                status="COMPLETED",
                create_time=now,
                update_time=now,
                note_to_payer="Payment reversed",
            )
            self.refunds[ref.id] = ref
            cap.refund_ids.append(ref.id)
            settle_capture_status(self, cap)
            cap.update_time = now
            amount = summary_amount(ref.amount_minor, ref.currency)
            self.emit(
                "PAYMENT.CAPTURE.REVERSED",
                "refund",
                f"A {amount} capture payment was reversed",
                render.refund(self, ref),
            )
            return ref.id


def announce_refund(app: PayPalApp, ref: Refund) -> None:
    amount = summary_amount(ref.amount_minor, ref.currency)
    event_type, summary = {
        "COMPLETED": ("PAYMENT.CAPTURE.REFUNDED", f"A {amount} capture payment was refunded"),
        "PENDING": ("PAYMENT.REFUND.PENDING", f"A {amount} refund is pending"),
        "FAILED": ("PAYMENT.REFUND.FAILED", f"A {amount} refund failed"),
        "CANCELLED": ("PAYMENT.REFUND.CANCELLED", f"A {amount} refund was cancelled"),
    }[ref.status]
    app.emit(event_type, "refund", summary, render.refund(app, ref))


def _id_of(reply: Reply) -> str:
    return str(json.loads(reply.body)["id"])


def _optional_string(body: dict[str, Any], key: str, max_length: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"/{key}", value=str(value))
    if not 1 <= len(value) <= max_length:
        raise PayPalError.of("INVALID_STRING_LENGTH", field=f"/{key}", value=value)
    return value
