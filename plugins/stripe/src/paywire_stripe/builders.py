"""Request builders: each a pure function of the subject returning Stripe's form parameters.

Values Stripe would refuse for their length or shape are refused here, naming the subject's field,
so that nothing half-valid is sent. Two metadata keys are reserved on every PaymentIntent:
`paywire_order` (the order id) and `paywire_idempotency_key` (the key it was created with), which
is how `fetch` finds an intent whose first answer was lost. A refund carries its own key in
`paywire_idempotency_key` and a capture sets `paywire_capture_key` on the intent, so that `fetch`
can name the key of each capture and refund it lists.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from paywire import InvalidRequest, Money, Subject, UnsupportedOperation
from paywire_stripe.amounts import to_stripe

__all__ = [
    "CAPTURE_KEY_FIELD",
    "CLOCK_SKEW",
    "IDEMPOTENCY_KEY_FIELD",
    "MAX_KEY",
    "ORDER_FIELD",
    "attach_request",
    "capture_request",
    "confirm_request",
    "customer_request",
    "keyed",
    "listed_query",
    "no_request",
    "payment_request",
    "refund_request",
    "refunds_query",
    "retrieve_query",
    "search_query",
    "void_request",
]

Builder = Callable[[Subject], Mapping[str, Any]]

ORDER_FIELD = "paywire_order"
IDEMPOTENCY_KEY_FIELD = "paywire_idempotency_key"
CAPTURE_KEY_FIELD = "paywire_capture_key"
REASON_FIELD = "paywire_reason"
EXPAND_CHARGE = ["latest_charge"]

MAX_KEY = 255  # the longest idempotency key Stripe keeps
# Seconds Stripe's clock (an intent's `created`) may be behind the clock that recorded a request's
# `Subject.sent_at`: twice the 300 s the webhook signature tolerance already asks the two to agree.
CLOCK_SKEW = 600
_MAX_DIGITS = {"IDR": 12}  # of an amount in Stripe's unit: eight, twelve for IDR (Stripe's API reference)
_MAX_METADATA_KEYS, _MAX_METADATA_KEY, _MAX_METADATA_VALUE = 50, 40, 500
_MAX_SHIPPING = 5000  # each string of a PaymentIntent's shipping details (Stripe's API reference)
_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_CANCELLATION_REASONS = _REFUND_REASONS | {"abandoned"}
_REASON_SYNONYMS = {"fraud": "fraudulent", "customer_request": "requested_by_customer",
                    "requested_by_buyer": "requested_by_customer", "expired": "abandoned"}


def _refuse(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{message}; nothing was sent", param=param, provider="stripe")


def _limited(value: str | None, limit: int, param: str) -> str | None:
    if value is not None and len(value) > limit:
        raise _refuse(f"{param} has {len(value)} characters, Stripe takes at most {limit}", param)
    return value


def _amount(subject: Subject) -> Money:
    if subject.amount is None:
        raise _refuse("this command needs subject.amount", "amount")
    if subject.amount.minor <= 0:
        raise _refuse(f"the amount must be positive, got {subject.amount}", "amount")
    return subject.amount


def _chargeable(amount: Money) -> int:
    """`amount` in Stripe's unit; refused above the most Stripe charges, which it would refuse
    once the payment was recorded."""
    wire = to_stripe(amount)
    digits = _MAX_DIGITS.get(amount.currency, 8)
    if wire >= 10**digits:
        raise InvalidRequest(f"{amount} is more than Stripe charges (at most {digits} digits in its unit of "
                             f"{amount.currency}); nothing was sent", param="amount", provider="stripe",
                             code="amount_too_large")
    return wire


def _reference(subject: Subject) -> str:
    if not subject.reference:
        raise _refuse("this command needs subject.reference (the PaymentIntent it acts on)", "reference")
    return subject.reference


def _quoted(text: str) -> str:
    """A string literal of Stripe's search query language."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def keyed(build: Builder) -> Builder:
    """`build`, refusing first an idempotency key longer than the 255 characters Stripe keeps."""

    @functools.wraps(build)
    def checked(subject: Subject) -> Mapping[str, Any]:
        key = subject.idempotency_key
        if key is not None and len(key) > MAX_KEY:
            _limited(key, MAX_KEY, "idempotency_key")  # raises, naming the limit
        return build(subject)

    return checked


def no_request(subject: Subject) -> Mapping[str, Any]:
    return {}


def metadata(subject: Subject) -> dict[str, str]:
    """The caller's metadata plus paywire's reserved keys, within Stripe's metadata limits."""
    order_id = subject.order.id if subject.order else None
    key = subject.idempotency_key
    if not subject.metadata:  # paywire's keys alone (most requests): their names are within the limits
        fields: dict[str, str] = {}
        if order_id is not None:
            if len(order_id) > _MAX_METADATA_VALUE:
                _limited(order_id, _MAX_METADATA_VALUE, f"metadata.{ORDER_FIELD}")  # raises, naming the limit
            fields[ORDER_FIELD] = order_id
        if key is not None:
            if len(key) > _MAX_METADATA_VALUE:
                _limited(key, _MAX_METADATA_VALUE, f"metadata.{IDEMPOTENCY_KEY_FIELD}")
            fields[IDEMPOTENCY_KEY_FIELD] = key
        return fields
    fields = dict(subject.metadata)
    reserved = {ORDER_FIELD: order_id, IDEMPOTENCY_KEY_FIELD: key}
    for key, value in reserved.items():
        if key in fields and fields[key] != value:
            raise _refuse(f"metadata key {key!r} is reserved for paywire", f"metadata.{key}")
        if value is not None:
            fields[key] = value
    if len(fields) > _MAX_METADATA_KEYS:
        raise _refuse(f"{len(fields)} metadata keys with paywire's own, Stripe keeps {_MAX_METADATA_KEYS}", "metadata")
    for key, value in fields.items():
        if not key or len(key) > _MAX_METADATA_KEY or "[" in key or "]" in key:
            raise _refuse(f"metadata key {key!r} must be 1-{_MAX_METADATA_KEY} characters without brackets",
                          "metadata")
        if value is not None and len(value) > _MAX_METADATA_VALUE:  # the field's name made only to refuse it
            _limited(value, _MAX_METADATA_VALUE, f"metadata.{key}")
    return fields


def _shipping(subject: Subject) -> dict[str, Any] | None:
    """Shipping details for Stripe's fraud checks, when the order has an address and a name for it."""
    address = subject.order.shipping if subject.order else None
    if address is None:
        return None
    buyer = subject.buyer
    name = address.name or (buyer.name if buyer else None)
    lines = {"line1": address.line1, "line2": address.line2, "city": address.city, "state": address.state,
             "postal_code": address.postal_code, "country": address.country}
    if not name or all(value is None for value in lines.values()):
        return None  # Stripe requires both; without them the order simply ships no details
    # Stripe takes 5000 characters in each (20 is a Customer's phone limit, not a shipping phone's).
    for field, value in lines.items():
        _limited(value, _MAX_SHIPPING, f"order.shipping.{field}")
    phone = buyer.phone if buyer else None
    return {"name": _limited(name, _MAX_SHIPPING, "order.shipping.name" if address.name else "customer.name"),
            "address": lines, "phone": _limited(phone, _MAX_SHIPPING, "customer.phone")}


def payment_request(capture_method: str, options: Mapping[str, Any]) -> Builder:
    """A PaymentIntent confirmed at once with the subject's payment method.

    `capture_method` is "manual" for authorize and "automatic" for sale. A vaulted charge runs
    off-session for the Stripe customer the method is attached to; any other may need 3-D Secure,
    for which the buyer comes back to `return_url` (the subject's, or the `return_url` option).
    """
    methods = list(options.get("payment_method_types") or ["card"])
    default_return_url = options.get("return_url")

    def build(subject: Subject) -> Mapping[str, Any]:
        amount = _amount(subject)
        if not subject.source:
            raise _refuse("authorize and sale need subject.source (a Stripe PaymentMethod id)", "source")
        request: dict[str, Any] = {
            "amount": _chargeable(amount),
            "currency": amount.currency.lower(),
            "payment_method": subject.source,
            "payment_method_types": methods,
            "capture_method": capture_method,
            "confirm": True,
            "metadata": metadata(subject),
            "expand": EXPAND_CHARGE,
        }
        buyer = subject.buyer
        if buyer is not None and buyer.reference:
            request["customer"] = buyer.reference
        if subject.order is not None:
            if subject.order.description is not None:
                request["description"] = _limited(subject.order.description, 1000, "order.description")
            if subject.order.shipping is not None:
                request["shipping"] = _shipping(subject)
        if subject.vaulted:
            if "customer" not in request:
                raise _refuse("a vaulted charge needs customer.reference, the Stripe customer holding the method",
                              "customer.reference")
            request["off_session"] = True
        elif subject.return_url or default_return_url:
            request["return_url"] = subject.return_url or default_return_url
        return request

    return build


def confirm_request(options: Mapping[str, Any]) -> Builder:
    """Confirms an intent that waits for it (manual confirmation, after 3-D Secure)."""
    default_return_url = options.get("return_url")

    def build(subject: Subject) -> Mapping[str, Any]:
        return {"return_url": subject.return_url or default_return_url, "expand": EXPAND_CHARGE}

    return build


def capture_request(subject: Subject) -> Mapping[str, Any]:
    """All that is capturable, or `amount_to_capture`; Stripe releases the rest either way."""
    if not subject.final:
        raise UnsupportedOperation(
            "Stripe captures a PaymentIntent once and releases what is left, so a non-final capture "
            "(final=False) is not possible; nothing was sent", param="final", provider="stripe",
        )
    amount = to_stripe(_amount(subject), "amount") if subject.amount is not None else None
    key = subject.idempotency_key
    return {"amount_to_capture": amount, "metadata": {CAPTURE_KEY_FIELD: key} if key else None,
            "expand": EXPAND_CHARGE}


def _reason(reason: str | None, known: frozenset[str]) -> str | None:
    if reason is None:
        return None
    word = reason.strip().lower().replace(" ", "_").replace("-", "_")
    word = _REASON_SYNONYMS.get(word, word)
    return word if word in known else None


def void_request(subject: Subject) -> Mapping[str, Any]:
    """Cancel with Stripe's `cancellation_reason` when the subject's reason is one of Stripe's."""
    return {"cancellation_reason": _reason(subject.reason, _CANCELLATION_REASONS), "expand": EXPAND_CHARGE}


def refund_request(subject: Subject) -> Mapping[str, Any]:
    """A refund of a PaymentIntent (or of a `ch_` charge); all that is left when there is no amount.

    A reason outside Stripe's three is kept in the refund's metadata instead, next to the
    idempotency key the refund is created with (which `fetch` reports for each refund).
    """
    reference = _reference(subject)
    target = "charge" if reference.startswith("ch_") else "payment_intent"
    reason = _reason(subject.reason, _REFUND_REASONS)
    note = subject.reason if subject.reason and reason is None else None
    fields = {REASON_FIELD: _limited(note, _MAX_METADATA_VALUE, "reason"), IDEMPOTENCY_KEY_FIELD: subject.idempotency_key}
    return {
        target: reference,
        "amount": to_stripe(_amount(subject)) if subject.amount is not None else None,
        "reason": reason,
        "metadata": {name: value for name, value in fields.items() if value} or None,
        "expand": ["charge"],
    }


def refunds_query(subject: Subject) -> Mapping[str, Any]:
    """One page of the refunds of the PaymentIntent `reference`, after `options["starting_after"]`."""
    return {"payment_intent": _reference(subject), "limit": 100,
            "starting_after": subject.options.get("starting_after")}


def retrieve_query(subject: Subject) -> Mapping[str, Any]:
    """The intent with its latest charge, whose amounts give the running totals."""
    return {"expand": EXPAND_CHARGE}


def search_query(subject: Subject) -> Mapping[str, Any]:
    """Finds an intent by the idempotency key it was created with (and its order, when known)."""
    if not subject.idempotency_key:
        raise _refuse("fetch needs subject.reference, or the idempotency key the payment was created with",
                      "reference")
    clauses = [f"metadata['{IDEMPOTENCY_KEY_FIELD}']:{_quoted(subject.idempotency_key)}"]
    if subject.order is not None:
        clauses.append(f"metadata['{ORDER_FIELD}']:{_quoted(subject.order.id)}")
    return {"query": " AND ".join(clauses), "expand": ["data.latest_charge"], "limit": 10}


def listed_query(subject: Subject) -> Mapping[str, Any]:
    """One page of the intents `fetch` looks through when the search index has not caught up (the
    list is current): those created since `sent_at` (less `CLOCK_SKEW`), after
    `options["starting_after"]`; without `sent_at`, the latest 100."""
    since = None if subject.sent_at is None else {"gte": int(subject.sent_at.timestamp()) - CLOCK_SKEW}
    return {"limit": 100, "created": since, "starting_after": subject.options.get("starting_after"),
            "expand": ["data.latest_charge"]}


def customer_request(subject: Subject) -> Mapping[str, Any]:
    """A Stripe customer for the buyer, to vault payment methods on."""
    buyer = subject.buyer
    if buyer is None:
        return {}
    return {
        "email": _limited(buyer.email, 512, "customer.email"),
        "name": _limited(buyer.name, 256, "customer.name"),
        "phone": _limited(buyer.phone, 20, "customer.phone"),
        "metadata": {"paywire_customer": _limited(buyer.id, _MAX_METADATA_VALUE, "customer.id")} if buyer.id else None,
    }


def attach_request(subject: Subject) -> Mapping[str, Any]:
    buyer = subject.buyer
    if buyer is None or not buyer.reference:
        raise _refuse("attaching a payment method needs customer.reference", "customer.reference")
    return {"customer": buyer.reference}
