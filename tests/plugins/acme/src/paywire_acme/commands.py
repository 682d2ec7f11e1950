"""Acme's commands, each a `GatewayCommand` assembled from the core's parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import (
    JSON,
    BearerAuth,
    BuyerAction,
    CommandPool,
    ErrorMapper,
    ErrorRule,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    Money,
    Response,
    Result,
    Subject,
    TransferFactory,
    ValidatorComposite,
)
from paywire.errors import Declined, IdempotencyConflict, InvalidRequest

ERRORS = ErrorMapper(
    "acme",
    {
        "card_declined": ErrorRule(Declined),
        "idempotency_conflict": ErrorRule(IdempotencyConflict),
        # The first request with the key may have been applied: unknown, and its answer comes with a retry.
        "request_in_progress": ErrorRule(IdempotencyConflict, retryable=True),
        "invalid_state": ErrorRule(InvalidRequest),
    },
)


def answered_ok(subject: Subject, response: Response) -> Result:
    """Acme answers 2xx with a JSON object naming what it holds (its `id`), or an error status with
    an `{"error": {...}}` object. A 2xx without one (an empty, cut or HTML body, an error-shaped
    body from something in front of Acme) is no answer: its codes are not Acme's, so none is kept,
    and the core makes it an unknown outcome."""
    if response.ok:
        if isinstance(response.data, Mapping) and "id" in response.data:
            return Result.success()
        return Result(False, (f"Acme answered HTTP {response.status} with a body that is not one of its objects",), ())
    error = response.data.get("error") if isinstance(response.data, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    codes = [code for code in (error.get("code"), error.get("decline_code")) if code]
    if not 400 <= response.status < 500:
        # Acme answers a refusal with a 4xx only: a redirect or a 5xx carrying a refusal's code
        # comes from something else, so no code of it may make the outcome final.
        codes = [code for code in codes if 500 <= response.status < 600 and code not in ERRORS.rules]
    return Result(False, (error.get("message") or f"HTTP {response.status}",), codes)


def _money(data: Mapping[str, Any], field: str) -> Money:
    return Money.minor_units(int(data[field]), data["currency"])


_STATES = {
    "requires_action": "action_required",
    "processing": "processing",
    "authorized": "authorized",
    "partially_captured": "partially_captured",
    "captured": "captured",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
    "voided": "voided",
    "failed": "failed",
}


def _authorized(data: Mapping[str, Any]) -> Money:
    """Nothing is authorized for a refused payment, nor for one under review or a sale the bank
    has not decided yet."""
    nothing = data["status"] == "failed" or (data["status"] == "processing" and (data["capture"] or data["review"]))
    return Money.minor_units(0, data["currency"]) if nothing else _money(data, "amount")


def payment_fields(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    fields: dict[str, Any] = {
        "reference": data["id"],
        "references": {"payment": data["id"]},
        "state": _STATES[data["status"]],
        "authorized": _authorized(data),
        "captured": _money(data, "captured"),
        "refunded": _money(data, "refunded"),
    }
    if data["status"] == "requires_action":
        fields["status"] = "action_required"
        fields["action"] = BuyerAction(data["action"]["redirect_url"], subject.return_url)
    return fields


def decided_later(subject: Subject, response: Response) -> dict[str, Any]:
    """An authorization under review, or a bank debit's sale or capture, is `processing`:
    accepted, decided later (never succeeded)."""
    return {"status": "accepted"} if response.data["status"] == "processing" else {}


def _not_found(response: Response) -> bool:
    """Acme's own answer for a payment it does not have: 404 with its `not_found` error. Any other
    404 (a proxy's page, a wrong base URL) says nothing about the payment."""
    error = response.data.get("error") if isinstance(response.data, Mapping) else None
    return response.status == 404 and isinstance(error, Mapping) and error.get("code") == "not_found"


def found(subject: Subject, response: Response) -> Result:
    """fetch: Acme's "no such payment" is an answer, `not_found`, which reconciliation reads as
    "never arrived"; every other failure raises, leaving the payment open."""
    return Result.success() if _not_found(response) else answered_ok(subject, response)


def fetched_fields(subject: Subject, response: Response) -> dict[str, Any]:
    return {"state": "not_found"} if _not_found(response) else payment_fields(subject, response)


def operation_amount(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"amount": _money(data, "last_amount")} if "last_amount" in data else {}


def refund_fields(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"reference": data["id"], "amount": _money(data, "amount"), "references": {"payment": data["payment"]}}


def payment_request(capture: bool) -> Any:
    def build(subject: Subject) -> dict[str, Any]:
        if subject.amount is None or subject.source is None:
            raise InvalidRequest("authorize and sale need an amount and a source", param="amount")
        return {
            "amount": subject.amount.minor,
            "currency": subject.amount.currency,
            "source": subject.source,
            "capture": capture,
            "order": subject.order.id if subject.order else None,
            "return_url": subject.return_url,
        }

    return build


def amount_request(subject: Subject) -> dict[str, Any]:
    return {"amount": subject.amount.minor} if subject.amount is not None else {}


def metadata_request(subject: Subject) -> dict[str, Any]:
    return {"metadata": dict(subject.metadata)} if subject.metadata else {}


def no_request(subject: Subject) -> dict[str, Any]:
    return {}


def fetch_query(subject: Subject) -> dict[str, Any]:
    return {} if subject.reference else {"idempotency_key": subject.idempotency_key}


def build_commands(settings: GatewaySettings) -> CommandPool:
    auth = BearerAuth(settings.secret("api_key"))
    validator = ValidatorComposite([(answered_ok, True)])

    def command(method: str, path: str, builders: list[Any], handlers: list[Any],
                checks: ValidatorComposite = validator) -> GatewayCommand:
        return GatewayCommand(
            builder=builders,
            transfer_factory=TransferFactory(
                settings.base_url, method, path, auth=auth, converter=JSON,
                idempotency_header="Acme-Idempotency-Key", timeout=settings.timeout,
            ),
            validator=checks,
            error_mapper=ERRORS,
            handler=HandlerChain(handlers),
        )

    def fetch_path(subject: Subject) -> str:
        return f"/v1/payments/{subject.reference}" if subject.reference else "/v1/payments/lookup"

    return CommandPool(
        {
            "authorize": command("POST", "/v1/payments", [payment_request(False), metadata_request], [payment_fields, operation_amount, decided_later]),
            "sale": command("POST", "/v1/payments", [payment_request(True), metadata_request], [payment_fields, operation_amount, decided_later]),
            "complete": command("POST", "/v1/payments/{reference}/complete", [no_request], [payment_fields, operation_amount, decided_later]),
            "capture": command("POST", "/v1/payments/{reference}/capture", [amount_request, lambda s: {"final": s.final}], [payment_fields, operation_amount, decided_later]),
            "void": command("POST", "/v1/payments/{reference}/void", [no_request], [payment_fields]),
            "refund": command("POST", "/v1/payments/{reference}/refunds", [amount_request], [refund_fields]),
            "fetch": command("GET", fetch_path, [fetch_query], [fetched_fields], ValidatorComposite([(found, True)])),  # type: ignore[arg-type]
        },
        gateway=settings.gateway,
    )
