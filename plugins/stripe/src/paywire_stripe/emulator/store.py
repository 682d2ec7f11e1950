"""The emulator's state: Stripe objects as their JSON dicts, plus what Stripe keeps behind them.

Objects are stored exactly as the API returns them (unexpanded), so a response is a deep copy
plus expansion. What the wire does not show (which test card a PaymentMethod is, whether it was
already used, a pending 3-D Secure challenge) lives beside them in small typed records. All access
happens under the emulator's lock.
"""

from __future__ import annotations

import copy
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from paywire_stripe.emulator.cards import TestCard
from paywire_stripe.emulator.errors import invalid_request, no_such

__all__ = ["Challenge", "Context", "IntentNotes", "PaymentMethodNotes", "Store"]

StripeObject = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits


@attrs.define
class PaymentMethodNotes:
    """`consumed`: used once without a customer (Stripe then refuses it); `setup_authenticated`:
    3-D Secure completed while setting it up for off-session use."""

    card: TestCard
    consumed: bool = False
    setup_authenticated: bool = False


@attrs.define
class IntentNotes:
    """Confirmation context of a PaymentIntent or SetupIntent that the object does not show."""

    return_url: str | None = None
    off_session: bool = False
    challenge: str | None = None
    authenticated: bool = False  # a challenge passed; the next confirmation (manual confirmation) uses it


@attrs.define
class Challenge:
    """A pending 3-D Secure challenge, completed by visiting its URL."""

    id: str
    secret: str
    kind: str  # "payment_intent" or "setup_intent"
    intent: str
    return_url: str | None
    outcome: str | None = None  # "succeeded" or "failed" once completed


class Store:
    """Every object by id, in creation order, with Stripe-shaped ids."""

    def __init__(self, clock: Callable[[], float] = time.time, search_lag: float = 0.0) -> None:
        self.clock = clock
        self.search_lag = search_lag
        self.payment_intents: dict[str, StripeObject] = {}
        self.charges: dict[str, StripeObject] = {}
        self.refunds: dict[str, StripeObject] = {}
        self.disputes: dict[str, StripeObject] = {}
        self.customers: dict[str, StripeObject] = {}
        self.payment_methods: dict[str, StripeObject] = {}
        self.setup_intents: dict[str, StripeObject] = {}
        self.balance_transactions: dict[str, StripeObject] = {}
        self.events: dict[str, StripeObject] = {}
        self.payment_method_notes: dict[str, PaymentMethodNotes] = {}
        self.intent_notes: dict[str, IntentNotes] = {}
        self.challenges: dict[str, Challenge] = {}
        self.booked_releases: set[str] = set()  # charges whose partial capture booked its release as a refund
        self.release_refunds: set[str] = set()  # the Refunds that book a release: Stripe's, they never fail

    def now(self) -> int:
        return int(self.clock())

    def searchable(self, obj: Mapping[str, Any]) -> bool:
        """Whether search's index holds `obj` yet: `search_lag` seconds after it was created."""
        return bool(obj.get("created", 0) + self.search_lag <= self.clock())

    @staticmethod
    def new_id(prefix: str, length: int = 24) -> str:
        return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))

    def collection(self, kind: str) -> dict[str, StripeObject]:
        return {
            "payment_intent": self.payment_intents,
            "charge": self.charges,
            "refund": self.refunds,
            "dispute": self.disputes,
            "customer": self.customers,
            "payment_method": self.payment_methods,
            "setup_intent": self.setup_intents,
            "balance_transaction": self.balance_transactions,
            "event": self.events,
        }[kind]

    def get(self, kind: str, object_id: str, param: str, *, label: str | None = None) -> StripeObject:
        """The stored object, or Stripe's 404 `No such <kind>: '<id>'` naming `param`."""
        found = self.collection(kind).get(object_id)
        if found is None or found.get("deleted"):
            raise no_such(label or kind, object_id, param)
        return found

    # -- rendering -----------------------------------------------------------------------------------
    def render(self, obj: Mapping[str, Any], expand: Iterable[str] = ()) -> StripeObject:
        """A deep copy of `obj` with the `expand` paths replaced by the objects they name."""
        result = copy.deepcopy(dict(obj))
        for path in expand:
            self._expand(result, obj.get("object", ""), path.split("."), path)
        return result

    def render_list(
        self,
        items: list[StripeObject],
        url: str,
        has_more: bool,
        expand: Iterable[str] = (),
        *,
        search: bool = False,
        next_page: str | None = None,
    ) -> StripeObject:
        data = [copy.deepcopy(item) for item in items]
        page: StripeObject = {"object": "search_result" if search else "list", "data": data, "has_more": has_more}
        if search:
            page["next_page"] = next_page
        page["url"] = url
        for path in expand:
            parts = path.split(".")
            if parts[0] != "data" or len(parts) < 2:
                raise invalid_request(
                    f"This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead.",
                    param="expand",
                    saved=False,
                )
            for item in data:
                self._expand(item, item.get("object", ""), parts[1:], path)
        return page

    def _expand(self, target: StripeObject, kind: str, parts: list[str], path: str) -> None:
        if len(parts) > 4:
            raise invalid_request("You cannot expand more than 4 levels of a property.", param="expand", saved=False)
        name, rest = parts[0], parts[1:]
        fields = EXPANDABLE.get(kind, {})
        if name not in fields:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand", saved=False)
        value = target.get(name)
        target_kind = fields[name]
        if target_kind == "none":  # objects the emulator never creates: always null here
            return
        if target_kind == "nested":
            if isinstance(value, dict) and rest:
                self._expand(value, f"{kind}.{name}", rest, path)
            elif rest:
                raise invalid_request(f"This property cannot be expanded ({path}).", param="expand", saved=False)
            return
        if target_kind == "refunds":
            refunds = [r for r in reversed(self.refunds.values()) if r["charge"] == target["id"]]
            value = target[name] = {
                "object": "list",
                "data": copy.deepcopy(refunds),
                "has_more": False,
                "total_count": len(refunds),
                "url": f"/v1/charges/{target['id']}/refunds",
            }
            if rest:
                raise invalid_request(f"This property cannot be expanded ({path}).", param="expand", saved=False)
            return
        if isinstance(value, str):
            found = self.collection(target_kind).get(value)
            if found is not None:
                value = target[name] = copy.deepcopy(found)
        if rest and isinstance(value, dict):
            self._expand(value, value.get("object", target_kind), rest, path)

    # -- lists ---------------------------------------------------------------------------------------
    def page(self, kind: str, items: list[StripeObject], params: Mapping[str, Any]) -> tuple[list[StripeObject], bool]:
        """Newest first, Stripe's cursor pagination (`limit`, `starting_after`, `ending_before`)."""
        ordered = _stable_newest_first(items)
        limit = params.get("limit") or 10
        ids = [item["id"] for item in ordered]
        if params.get("starting_after"):
            cursor = params["starting_after"]
            if cursor not in ids:
                self.get(kind, cursor, "starting_after")
                raise invalid_request(
                    f"Invalid starting_after: {cursor} is not in this list", param="starting_after", saved=False
                )
            start = ids.index(cursor) + 1
            return ordered[start : start + limit], len(ordered) > start + limit
        if params.get("ending_before"):
            cursor = params["ending_before"]
            if cursor not in ids:
                self.get(kind, cursor, "ending_before")
                raise invalid_request(
                    f"Invalid ending_before: {cursor} is not in this list", param="ending_before", saved=False
                )
            end = ids.index(cursor)
            return ordered[max(0, end - limit) : end], end - limit > 0
        return ordered[:limit], len(ordered) > limit


def _stable_newest_first(items: list[StripeObject]) -> list[StripeObject]:
    # Creation order is insertion order; `created` has one-second resolution.
    return list(reversed(items))


def created_matches(obj: Mapping[str, Any], created: Any) -> bool:
    """The `created` filter of list endpoints: an exact timestamp or a gt/gte/lt/lte hash."""
    if created is None:
        return True
    value = obj.get("created", 0)
    if isinstance(created, int):
        return bool(value == created)
    checks = {"gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(checks[op](bound) for op, bound in created.items())


# Which fields of each object type `expand[]` can replace, and with what.
EXPANDABLE: Final[dict[str, dict[str, str]]] = {
    "payment_intent": {
        "customer": "customer",
        "latest_charge": "charge",
        "payment_method": "payment_method",
        "application": "none",
        "invoice": "none",
        "on_behalf_of": "none",
        "review": "none",
        "source": "none",
    },
    "charge": {
        "customer": "customer",
        "payment_intent": "payment_intent",
        "balance_transaction": "balance_transaction",
        "refunds": "refunds",
        "application": "none",
        "application_fee": "none",
        "invoice": "none",
        "on_behalf_of": "none",
        "review": "none",
        "source_transfer": "none",
        "transfer": "none",
        "failure_balance_transaction": "balance_transaction",
    },
    "refund": {
        "charge": "charge",
        "payment_intent": "payment_intent",
        "balance_transaction": "balance_transaction",
        "failure_balance_transaction": "balance_transaction",
        "source_transfer_reversal": "none",
        "transfer_reversal": "none",
    },
    "payment_method": {"customer": "customer"},
    "setup_intent": {
        "customer": "customer",
        "payment_method": "payment_method",
        "application": "none",
        "latest_attempt": "none",
        "mandate": "none",
        "on_behalf_of": "none",
        "single_use_mandate": "none",
    },
    "customer": {"default_source": "none", "invoice_settings": "nested", "test_clock": "none"},
    "customer.invoice_settings": {"default_payment_method": "payment_method"},
}


@attrs.define
class Context:
    """What an operation needs besides its parameters: the state, the event sink, where the
    emulator is reachable (for 3-D Secure URLs) and the API version of the request."""

    store: Store
    emit: Callable[[str, StripeObject], None]
    base_url: str
    api_version: str
