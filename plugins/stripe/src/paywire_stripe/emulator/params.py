"""The parameters each endpoint knows, and their validation, as Stripe applies it.

One table per endpoint (the names of Stripe's API reference, 2023-08-16, plus the few later ones
the current SDK may send). Anything else is refused with `Received unknown parameter: X`, wrong
types and enum values with Stripe's messages. Parameters Stripe knows but the emulator does not
act on (Connect, mandates, radar, ...) are `Opaque`: accepted and kept, never interpreted.

Validation errors are not stored under an idempotency key (Stripe stores a result only once the
endpoint began executing), so they all carry `saved=False`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from paywire_stripe.emulator.errors import StripeError, empty_string, missing_param, unknown_param

__all__ = ["ENDPOINTS", "UNSET", "Params", "address", "plain", "shipping", "validate"]


class _Unset:
    """The value of a parameter sent as an empty string to unset it (`description=`)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def address(value: Any) -> dict[str, Any] | None:
    """An address as Stripe answers it: all six fields, null when not given."""
    value = plain(value)
    if not isinstance(value, dict):
        return None
    return {field: value.get(field) for field in _ADDRESS_FIELDS}


def shipping(value: Any) -> dict[str, Any] | None:
    value = plain(value)
    if not isinstance(value, dict):
        return None
    fields = ("carrier", "name", "phone", "tracking_number")
    return {"address": address(value.get("address") or {}), **{field: value.get(field) for field in fields}}


def plain(value: Any) -> Any:
    """`value` as stored on an object: unset fields (`UNSET`) become null, at any depth."""
    if value is UNSET:
        return None
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _invalid(message: str, name: str, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=name, saved=False)


def _one_of(values: tuple[str, ...]) -> str:
    return (
        values[0] if len(values) == 1 else ", ".join(values[:-1]) + f"{',' if len(values) > 2 else ''} or {values[-1]}"
    )


class Spec:
    """One parameter's type; `unsettable` says whether an empty string means "unset"."""

    unsettable = False

    def coerce(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def check(self, value: Any, name: str) -> Any:
        if value == "":
            if self.unsettable:
                return UNSET
            raise empty_string(name)
        return self.coerce(value, name)


@attrs.frozen
class Str(Spec):
    max_length: int = 5000
    unsettable: bool = True

    def coerce(self, value: Any, name: str) -> Any:
        if not isinstance(value, str):
            raise _invalid(f"Invalid string: {_show(value)}", name)
        if len(value) > self.max_length:
            raise _invalid(f"Invalid string: {value[:30]}...; must be at most {self.max_length} characters", name)
        return value


_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits, as Stripe reads them (`\d` and `int()` take any script's)


@attrs.frozen
class Int(Spec):
    minimum: int | None = None
    maximum: int | None = None

    def coerce(self, value: Any, name: str) -> Any:
        if not isinstance(value, str) or not _INTEGER.fullmatch(value):
            raise _invalid(f"Invalid integer: {_show(value)}", name, "parameter_invalid_integer")
        number = int(value)
        if self.minimum is not None and number < self.minimum:
            raise _invalid(
                f"This value must be greater than or equal to {self.minimum}.", name, "parameter_invalid_integer"
            )
        if self.maximum is not None and number > self.maximum:
            raise _invalid(
                f"This value must be less than or equal to {self.maximum}.", name, "parameter_invalid_integer"
            )
        return number


@attrs.frozen
class Bool(Spec):
    def coerce(self, value: Any, name: str) -> Any:
        if value in ("true", "false"):
            return value == "true"
        raise _invalid(f"Invalid boolean: {_show(value)}", name)


@attrs.frozen
class Enum(Spec):
    values: tuple[str, ...]
    unsettable: bool = False

    def coerce(self, value: Any, name: str) -> Any:
        if value not in self.values:
            raise _invalid(f"Invalid {name}: must be one of {_one_of(self.values)}", name)
        return value


@attrs.frozen
class AnyOf(Spec):
    """`off_session`: a boolean or one of `one_off`/`recurring`."""

    options: tuple[Spec, ...]

    def coerce(self, value: Any, name: str) -> Any:
        for option in self.options:
            try:
                return option.coerce(value, name)
            except StripeError:
                continue
        raise _invalid(f"Invalid {name}: {_show(value)}", name)


@attrs.frozen
class Hash(Spec):
    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    unsettable: bool = True

    def coerce(self, value: Any, name: str) -> Any:
        if not isinstance(value, dict):
            raise _invalid(f"Invalid object: {name} must be a hash of parameters", name)
        return _fields(value, self.fields, self.required, name)


@attrs.frozen
class ListOf(Spec):
    item: Spec

    def coerce(self, value: Any, name: str) -> Any:
        if isinstance(value, dict) and all(key.isdigit() for key in value):
            value = [value[key] for key in sorted(value, key=int)]
        if not isinstance(value, list):
            raise _invalid(f"Invalid array: {name} must be a list", name)
        return [self.item.check(item, f"{name}[{index}]") for index, item in enumerate(value)]


_METADATA_KEYS, _METADATA_KEY_LENGTH, _METADATA_VALUE_LENGTH = 50, 40, 500


@attrs.frozen
class Metadata(Spec):
    """Free-form string pairs; `metadata[k]=` unsets one key, `metadata=` all of them."""

    unsettable: bool = True

    def coerce(self, value: Any, name: str) -> Any:
        if not isinstance(value, dict):
            raise _invalid(f"Invalid object: {name} must be a hash of key-value pairs", name)
        if len(value) > _METADATA_KEYS:
            raise _invalid(f"Invalid {name}: you can specify up to {_METADATA_KEYS} keys", name)
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(item, str):
                raise _invalid(f"Invalid value for {name}[{key}]: metadata values must be strings", f"{name}[{key}]")
            if len(key) > _METADATA_KEY_LENGTH:
                raise _invalid(f"Invalid {name}: keys can be at most {_METADATA_KEY_LENGTH} characters long", name)
            if len(item) > _METADATA_VALUE_LENGTH:
                raise _invalid(
                    f"Invalid {name}[{key}]: values can be at most {_METADATA_VALUE_LENGTH} characters long",
                    f"{name}[{key}]",
                )
            result[key] = UNSET if item == "" else item
        return result


@attrs.frozen
class Opaque(Spec):
    """Known to Stripe, not interpreted here: accepted as sent."""

    unsettable: bool = True

    def coerce(self, value: Any, name: str) -> Any:
        return value


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _fields(
    value: Mapping[str, Any], fields: Mapping[str, Spec], required: tuple[str, ...], prefix: str
) -> dict[str, Any]:
    def path(key: str) -> str:
        return f"{prefix}[{key}]" if prefix else key

    for key in value:
        if key not in fields:
            raise unknown_param(path(key))
    for key in required:
        if key not in value:
            raise missing_param(path(key))
    return {key: fields[key].check(item, path(key)) for key, item in value.items()}


@attrs.frozen
class Params:
    """The known parameters of one endpoint."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()

    def validate(self, tree: Mapping[str, Any]) -> dict[str, Any]:
        return _fields(tree, self.fields, self.required, "")


def validate(endpoint: str, tree: Mapping[str, Any]) -> dict[str, Any]:
    """Validate decoded parameters against `ENDPOINTS[endpoint]`."""
    return ENDPOINTS[endpoint].validate(tree)


# -- shared shapes ---------------------------------------------------------------------------------
EXPAND = ListOf(Str())
LIMIT = Int(minimum=1, maximum=100)
RANGE = AnyOf((Int(), Hash({"gt": Int(), "gte": Int(), "lt": Int(), "lte": Int()})))
ADDRESS = Hash({k: Str() for k in ("city", "country", "line1", "line2", "postal_code", "state")})
SHIPPING = Hash(
    {"address": ADDRESS, "carrier": Str(), "name": Str(), "phone": Str(), "tracking_number": Str()},
    required=("address", "name"),
)
BILLING_DETAILS = Hash({"address": ADDRESS, "email": Str(), "name": Str(), "phone": Str()})
AUTOMATIC_PAYMENT_METHODS = Hash(
    {"allow_redirects": Enum(("always", "never")), "enabled": Bool()}, required=("enabled",)
)
OFF_SESSION = AnyOf((Bool(), Enum(("one_off", "recurring"))))
SETUP_FUTURE_USAGE = Enum(("off_session", "on_session"), unsettable=True)
CAPTURE_METHOD = Enum(("automatic", "automatic_async", "manual"))
PAGINATION: dict[str, Spec] = {"ending_before": Str(), "expand": EXPAND, "limit": LIMIT, "starting_after": Str()}

# Every payment method type Stripe's PaymentMethod create knows; the emulator implements `card`.
_PM_TYPE_FIELDS = (
    "acss_debit affirm afterpay_clearpay alipay au_becs_debit bacs_debit bancontact blik boleto cashapp "
    "customer_balance eps fpx giropay grabpay ideal interac_present klarna konbini link oxxo p24 paynow "
    "paypal pix promptpay sepa_debit sofort us_bank_account wechat_pay zip"
).split()
CARD_DETAILS = Hash(
    {"cvc": Str(), "exp_month": Int(), "exp_year": Int(), "networks": Opaque(), "number": Str(), "token": Str()}
)
PAYMENT_METHOD_DATA: dict[str, Spec] = {
    "allow_redisplay": Enum(("always", "limited", "unspecified")),
    "billing_details": BILLING_DETAILS,
    "card": CARD_DETAILS,
    "metadata": Metadata(),
    "radar_options": Opaque(),
    "type": Str(),
    **{name: Opaque() for name in _PM_TYPE_FIELDS},
}

_PI_COMMON: dict[str, Spec] = {
    "application_fee_amount": Int(),
    "capture_method": CAPTURE_METHOD,
    "expand": EXPAND,
    "payment_method": Str(),
    "payment_method_configuration": Str(),
    "payment_method_data": Hash(PAYMENT_METHOD_DATA, required=("type",)),
    "payment_method_options": Opaque(),
    "payment_method_types": ListOf(Str()),
    "receipt_email": Str(),
    "setup_future_usage": SETUP_FUTURE_USAGE,
    "shipping": SHIPPING,
}
# What creating and updating a Customer both take.
_CUSTOMER_COMMON: dict[str, Spec] = {
    "address": ADDRESS,
    "balance": Int(),
    "cash_balance": Opaque(),
    "coupon": Str(),
    "description": Str(),
    "email": Str(512),
    "expand": EXPAND,
    "invoice_prefix": Str(),
    "invoice_settings": Hash(
        {
            "custom_fields": Opaque(),
            "default_payment_method": Str(),
            "footer": Str(),
            "rendering_options": Opaque(),
        }
    ),
    "metadata": Metadata(),
    "name": Str(256),
    "next_invoice_sequence": Int(),
    "phone": Str(20),
    "preferred_locales": ListOf(Str()),
    "promotion_code": Str(),
    "shipping": Opaque(),
    "source": Str(),
    "tax": Opaque(),
    "tax_exempt": Enum(("exempt", "none", "reverse"), unsettable=True),
}

ENDPOINTS: Final[dict[str, Params]] = {
    # PaymentIntents
    "payment_intents.create": Params(
        {
            **_PI_COMMON,
            "amount": Int(minimum=1),
            "automatic_payment_methods": AUTOMATIC_PAYMENT_METHODS,
            "confirm": Bool(),
            "confirmation_method": Enum(("automatic", "manual")),
            "currency": Str(),
            "customer": Str(),
            "description": Str(1000),
            "error_on_requires_action": Bool(),
            "mandate": Str(),
            "mandate_data": Opaque(),
            "metadata": Metadata(),
            "off_session": OFF_SESSION,
            "on_behalf_of": Str(),
            "radar_options": Opaque(),
            "return_url": Str(),
            "statement_descriptor": Str(22),
            "statement_descriptor_suffix": Str(22),
            "transfer_data": Opaque(),
            "transfer_group": Str(),
            "use_stripe_sdk": Bool(),
        },
        required=("amount", "currency"),
    ),
    "payment_intents.retrieve": Params({"client_secret": Str(), "expand": EXPAND}),
    "payment_intents.update": Params(
        {
            **_PI_COMMON,
            "amount": Int(minimum=1),
            "currency": Str(),
            "customer": Str(),
            "description": Str(1000),
            "metadata": Metadata(),
            "statement_descriptor": Str(22),
            "statement_descriptor_suffix": Str(22),
            "transfer_data": Opaque(),
            "transfer_group": Str(),
        }
    ),
    "payment_intents.confirm": Params(
        {
            "capture_method": CAPTURE_METHOD,
            "client_secret": Str(),
            "error_on_requires_action": Bool(),
            "expand": EXPAND,
            "mandate": Str(),
            "mandate_data": Opaque(),
            "off_session": OFF_SESSION,
            "payment_method": Str(),
            "payment_method_data": Hash(PAYMENT_METHOD_DATA, required=("type",)),
            "payment_method_options": Opaque(),
            "payment_method_types": ListOf(Str()),
            "radar_options": Opaque(),
            "receipt_email": Str(),
            "return_url": Str(),
            "setup_future_usage": SETUP_FUTURE_USAGE,
            "shipping": SHIPPING,
            "use_stripe_sdk": Bool(),
        }
    ),
    "payment_intents.capture": Params(
        {
            "amount_to_capture": Int(minimum=1),
            "application_fee_amount": Int(),
            "expand": EXPAND,
            "metadata": Metadata(),
            "statement_descriptor": Str(22),
            "statement_descriptor_suffix": Str(22),
            "transfer_data": Opaque(),
        }
    ),
    "payment_intents.cancel": Params(
        {
            "cancellation_reason": Enum(("duplicate", "fraudulent", "requested_by_customer", "abandoned")),
            "expand": EXPAND,
        }
    ),
    "payment_intents.list": Params({**PAGINATION, "created": RANGE, "customer": Str()}),
    "payment_intents.search": Params(
        {"expand": EXPAND, "limit": LIMIT, "page": Str(), "query": Str()}, required=("query",)
    ),
    # Refunds and charges
    "refunds.create": Params(
        {
            "amount": Int(minimum=1),
            "charge": Str(),
            "currency": Str(),
            "customer": Str(),
            "expand": EXPAND,
            "instructions_email": Str(),
            "metadata": Metadata(),
            "origin": Enum(("customer_balance",)),
            "payment_intent": Str(),
            "reason": Enum(("duplicate", "fraudulent", "requested_by_customer")),
            "refund_application_fee": Bool(),
            "reverse_transfer": Bool(),
        }
    ),
    "refunds.retrieve": Params({"expand": EXPAND}),
    "refunds.update": Params({"expand": EXPAND, "metadata": Metadata()}),
    "refunds.list": Params({**PAGINATION, "charge": Str(), "created": RANGE, "payment_intent": Str()}),
    "charges.retrieve": Params({"expand": EXPAND}),
    "charges.list": Params(
        {**PAGINATION, "created": RANGE, "customer": Str(), "payment_intent": Str(), "transfer_group": Str()}
    ),
    # Customers
    "customers.create": Params(
        {**_CUSTOMER_COMMON, "payment_method": Str(), "tax_id_data": Opaque(), "test_clock": Str()}
    ),
    "customers.retrieve": Params({"expand": EXPAND}),
    "customers.update": Params(
        {
            **_CUSTOMER_COMMON,
            "bank_account": Opaque(),
            "card": Opaque(),
            "default_alipay_account": Str(),
            "default_bank_account": Str(),
            "default_card": Str(),
            "default_source": Str(),
        }
    ),
    "customers.delete": Params({}),
    "customers.list": Params({**PAGINATION, "created": RANGE, "email": Str(512), "test_clock": Str()}),
    "customers.payment_methods": Params(
        {**PAGINATION, "allow_redisplay": Enum(("always", "limited", "unspecified")), "type": Str()}
    ),
    # PaymentMethods
    "payment_methods.create": Params(
        {**PAYMENT_METHOD_DATA, "customer": Str(), "expand": EXPAND, "payment_method": Str()}
    ),
    "payment_methods.retrieve": Params({"expand": EXPAND}),
    "payment_methods.update": Params(
        {
            "allow_redisplay": Enum(("always", "limited", "unspecified")),
            "billing_details": BILLING_DETAILS,
            "card": Hash({"exp_month": Int(), "exp_year": Int(), "networks": Opaque()}),
            "expand": EXPAND,
            "link": Opaque(),
            "metadata": Metadata(),
            "us_bank_account": Opaque(),
        }
    ),
    "payment_methods.attach": Params({"customer": Str(), "expand": EXPAND}, required=("customer",)),
    "payment_methods.detach": Params({"expand": EXPAND}),
    "payment_methods.list": Params({**PAGINATION, "customer": Str(), "type": Str()}),
    # SetupIntents
    "setup_intents.create": Params(
        {
            "attach_to_self": Bool(),
            "automatic_payment_methods": AUTOMATIC_PAYMENT_METHODS,
            "confirm": Bool(),
            "customer": Str(),
            "description": Str(1000),
            "expand": EXPAND,
            "flow_directions": ListOf(Enum(("inbound", "outbound"))),
            "mandate_data": Opaque(),
            "metadata": Metadata(),
            "on_behalf_of": Str(),
            "payment_method": Str(),
            "payment_method_configuration": Str(),
            "payment_method_data": Hash(PAYMENT_METHOD_DATA, required=("type",)),
            "payment_method_options": Opaque(),
            "payment_method_types": ListOf(Str()),
            "return_url": Str(),
            "single_use": Opaque(),
            "usage": Enum(("off_session", "on_session")),
            "use_stripe_sdk": Bool(),
        }
    ),
    "setup_intents.retrieve": Params({"client_secret": Str(), "expand": EXPAND}),
    "setup_intents.update": Params(
        {
            "attach_to_self": Bool(),
            "customer": Str(),
            "description": Str(1000),
            "expand": EXPAND,
            "flow_directions": ListOf(Enum(("inbound", "outbound"))),
            "metadata": Metadata(),
            "payment_method": Str(),
            "payment_method_configuration": Str(),
            "payment_method_data": Hash(PAYMENT_METHOD_DATA, required=("type",)),
            "payment_method_options": Opaque(),
            "payment_method_types": ListOf(Str()),
        }
    ),
    "setup_intents.confirm": Params(
        {
            "client_secret": Str(),
            "expand": EXPAND,
            "mandate_data": Opaque(),
            "payment_method": Str(),
            "payment_method_data": Hash(PAYMENT_METHOD_DATA, required=("type",)),
            "payment_method_options": Opaque(),
            "return_url": Str(),
            "use_stripe_sdk": Bool(),
        }
    ),
    "setup_intents.cancel": Params(
        {"cancellation_reason": Enum(("abandoned", "duplicate", "requested_by_customer")), "expand": EXPAND}
    ),
    "setup_intents.list": Params(
        {**PAGINATION, "attach_to_self": Bool(), "created": RANGE, "customer": Str(), "payment_method": Str()}
    ),
    # Events
    "events.retrieve": Params({"expand": EXPAND}),
    "events.list": Params(
        {**PAGINATION, "created": RANGE, "delivery_success": Bool(), "type": Str(), "types": ListOf(Str())}
    ),
}
