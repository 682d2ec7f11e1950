"""PayPal's error shape: `{name, message, debug_id, details: [...], links: [...]}` by HTTP status.

Handlers raise `PayPalError`; the app turns it into a reply carrying the request's debug id (the
same value as the `Paypal-Debug-Id` header). Names, messages and issue descriptions are PayPal's
own, taken from its Orders v2, Payments v2 and Vault v3 specifications.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["NAMES", "PayPalError", "issue_status", "not_found"]

# HTTP status -> (name, message) of PayPal's error envelope.
NAMES: Mapping[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema."),
    401: (
        "AUTHENTICATION_FAILURE",
        "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
    ),
    403: ("NOT_AUTHORIZED", "Authorization failed due to insufficient permissions."),
    404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
    409: ("RESOURCE_CONFLICT", "The server has detected a conflict while processing this request."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "The server does not support the request payload's media type."),
    422: (
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
    ),
    429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error occurred."),
    # 502 and 504 come from the gateways in front of PayPal's services; the names are the emulator's.
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout."),
}

# Issue -> description, as PayPal words them (descriptions may change; clients must use `issue`).
DESCRIPTIONS: Mapping[str, str] = {
    "ACTION_DOES_NOT_MATCH_INTENT": "The action does not match the intent the order was created with.",
    "AMOUNT_MISMATCH": "Should equal item_total + tax_total + shipping + handling + insurance - shipping_discount"
    " - discount.",
    "AUTH_CAPTURE_CURRENCY_MISMATCH": "Currency of capture must be the same as currency of authorization.",
    "AUTH_CURRENCY_MISMATCH": "The currency specified during reauthorization should be the same as the currency"
    " specified in the original authorization.",
    "AUTHORIZATION_ALREADY_CAPTURED": "Authorization has previously been captured.",
    "AUTHORIZATION_AMOUNT_EXCEEDED": "Authorization amount specified exceeded allowable limit. Specify a different"
    " amount and try the request again. Alternately, contact Customer Support to increase your limits. Local"
    " regulations (e.g. in PSD2 countries) prohibit overages above the amount authorized by the payer.",
    "AUTHORIZATION_DENIED": "An denied authorization cannot be captured.",
    "AUTHORIZATION_EXPIRED": "An expired authorization cannot be captured.",
    "AUTHORIZATION_VOIDED": "A voided authorization cannot be captured or reauthorized.",
    "CANNOT_BE_NEGATIVE": "Must be greater than or equal to 0. If the currency supports decimals, only two decimal"
    " place precision is supported.",
    "CANNOT_BE_VOIDED": "A reauthorization cannot be voided. Please void the original parent authorization.",
    "CANNOT_BE_ZERO_OR_NEGATIVE": "Must be greater than zero. If the currency supports decimals, only two decimal"
    " place precision is supported.",
    "CAPTURE_FULLY_REFUNDED": "The capture has already been fully refunded",
    "CARD_EXPIRED": "The card is expired",
    "CURRENCY_NOT_SUPPORTED": "Currency code is not currently supported. Please refer"
    " https://developer.paypal.com/api/rest/reference/currency-codes/ for list of supported currency codes.",
    "DECIMAL_PRECISION": "If the currency supports decimals, only two decimal place precision is supported.",
    "DECIMALS_NOT_SUPPORTED": "Currency does not support decimals.",
    "DUPLICATE_INVOICE_ID": "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account"
    " setting requires that Invoice Id be unique for each transaction.",
    "DUPLICATE_REFERENCE_ID": "`reference_id` must be unique if multiple `purchase_unit` are provided.",
    "FIELD_NOT_PATCHABLE": "Field cannot be patched.",
    "INSTRUMENT_DECLINED": "The instrument presented  was either declined by the processor or bank, or it can't be"
    " used for this payment.",
    "INVALID_CURRENCY_CODE": "Currency code is invalid or is not currently supported. Please refer"
    " https://developer.paypal.com/api/rest/reference/currency-codes/ for list of supported currency codes.",
    "INVALID_JSON_POINTER_FORMAT": "Path should be a valid JSON Pointer https://tools.ietf.org/html/rfc6901 that"
    " references a location within the request where the operation is performed.",
    "INVALID_PARAMETER_SYNTAX": "The value of a field does not conform to the expected format.",
    "INVALID_PARAMETER_VALUE": "The value of a field is invalid.",
    "INVALID_PATCH_OPERATION": "The operation cannot be honored. Cannot add a property that's already present, use"
    " replace. Cannot remove a property thats not present, use add. Cannot replace a property thats not present,"
    " use add.",
    "INVALID_RESOURCE_ID": "Specified resource ID does not exist. Please check the resource ID and try again.",
    "INVALID_STRING_LENGTH": "The value of a field is either too short or too long.",
    "ITEM_TOTAL_MISMATCH": "Should equal sum of (unit_amount * quantity) across all items for a given purchase_unit.",
    "ITEM_TOTAL_REQUIRED": "If item details are specified (items.unit_amount and items.quantity) corresponding"
    " amount.breakdown.item_total is required.",
    "MALFORMED_REQUEST_JSON": "The request JSON is not well formed.",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "Capture amount exceeds allowable limit. Please contact customer service or your"
    " account manager to request the change to your overage limit. The default overage limit is 115%, which allows"
    " the sum of all captures to be up to 115% of the order amount. The ability to over capture is subjected to"
    " regulatory approvals.",
    "MAX_CAPTURE_COUNT_EXCEEDED": "Maxmimum number of allowable captures has been reached. No additional captures are"
    " possible for this authorization. Contact Customer Service or your account manager to change the number of"
    " captures for a given authorization.",
    "MAX_VALUE_EXCEEDED": "Should be less than or equal to 999999999999999.99.",
    "MISMATCHED_VAULT_ID_TO_PAYMENT_SOURCE": "The vault_id does not match the payment_source provided.",
    "MISSING_REQUIRED_PARAMETER": "A required field / parameter is missing.",
    "MULTI_CURRENCY_ORDER": "Multiple differing values of currency_code are not supported. Entire Order request must"
    " have the same currency_code.",
    "NOT_ENABLED_FOR_CARD_PROCESSING": "The API Caller account is not setup to be able to process card payments.",
    "NOT_PATCHABLE": "Cannot be patched.",
    "ONLY_ONE_PAYMENT_SOURCE_ALLOWED": "More than one payment method within the payment source is not supported.",
    "ORDER_ALREADY_AUTHORIZED": "Order already authorized.If 'intent=AUTHORIZE' only one authorization per order is"
    " allowed.",
    "ORDER_ALREADY_CAPTURED": "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
    "ORDER_ALREADY_COMPLETED": "The order cannot be patched after it is completed.",
    "ORDER_COMPLETED_OR_VOIDED": "Order is voided or completed and hence cannot be authorized.",
    "ORDER_NOT_APPROVED": "Payer has not yet approved the Order for payment. Please redirect the payer to the"
    " 'rel':'approve' url returned as part of the HATEOAS links within the Create Order call or provide a valid"
    " `payment_source` in the request.",
    "PATCH_PATH_REQUIRED": "Please specify a 'path' for the field for which the operation needs to be performed.",
    "PATCH_VALUE_REQUIRED": "Please specify a 'value' to for the field that is being patched.",
    "PAYER_ACTION_REQUIRED": "Transaction cannot complete successfully, instruct the buyer to return to PayPal.",
    "PAYPAL_REQUEST_ID_REQUIRED": "A PayPal-Request-Id is required if you are trying to process payment for an Order."
    " Please specify a PayPal-Request-Id or Create the Order without a 'payment_source' specified.",
    "PENDING_CAPTURE": "Cannot initiate a refund as the capture is pending. Capture is typically pending when the"
    " payer has funded the transaction using e-check/bank funded.",
    "PERMISSION_DENIED": "You do not have permission to access or perform operations on this resource.",
    "PREVIOUS_REQUEST_IN_PROGRESS": "A previous request on this resource is currently in progress. Please wait for"
    " sometime and try again. It is best to space out the initial and the subsequent request(s) to avoid receiving"
    " this error.",
    "PREVIOUSLY_CAPTURED": "Authorization has been previously captured and hence cannot be voided.",
    "PREVIOUSLY_VOIDED": "Authorization has been previously voided and hence cannot be voided again.",
    "REAUTHORIZATION_NOT_SUPPORTED": "A reauthorize cannot be attempted on an authorization_id that is the result of"
    " a prior reauthorization.",
    "REAUTHORIZATION_TOO_SOON": "A reauthorization is only allowed once from Day 4 to Day 29 since the date of the"
    " original authorization.",
    "REFERENCE_ID_REQUIRED": "'reference_id' is required for each 'purchase_unit' if multiple 'purchase_unit' are"
    " provided.",
    "REFUND_AMOUNT_EXCEEDED": "The refund amount must be less than or equal to the capture amount that has not yet"
    " been refunded.",
    "REFUND_CAPTURE_CURRENCY_MISMATCH": "Refund must be in the same currency as the capture",
    "REFUND_NOT_ALLOWED": "Capture cannot be refunded.",
    "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK": "Refunds not allowed on this capture due to a chargeback on the card"
    " or bank. Please contact the payee to resolve the chargeback.",
    "SETUP_TOKEN_ALREADY_TOKENIZED": "The setup token has been used previously to generate a payment token.",
    "TAX_TOTAL_MISMATCH": "Should equal sum of (tax * quantity) across all items for a given purchase_unit.",
    "TAX_TOTAL_REQUIRED": "If item details are specified (items.tax_total and items.quantity) corresponding"
    " amount.breakdown.tax_total is required.",
    "TOKEN_ID_NOT_FOUND": "Specified token was not found. Verify the token and try the request again.",
    "TRANSACTION_REFUSED": "PayPal's internal controls prevent authorization from being captured.",
    "UNSUPPORTED_INTENT": "`intent=AUTHORIZE` is not supported for multiple purchase units. Only `intent=CAPTURE` is"
    " supported.",
}

# Issues that PayPal answers with a status other than 422 (used for PayPal-Mock-Response).
_ISSUE_STATUS: Mapping[str, int] = {
    **{
        issue: 400
        for issue in (
            "INVALID_ARRAY_MAX_ITEMS",
            "INVALID_ARRAY_MIN_ITEMS",
            "INVALID_COUNTRY_CODE",
            "INVALID_PARAMETER_SYNTAX",
            "INVALID_PARAMETER_VALUE",
            "INVALID_STRING_LENGTH",
            "INVALID_STRING_MAX_LENGTH",
            "MALFORMED_REQUEST_JSON",
            "MISSING_REQUIRED_PARAMETER",
            "NOT_SUPPORTED",
            "PAYPAL_REQUEST_ID_REQUIRED",
            "FIELD_NOT_PATCHABLE",
            "INVALID_PATCH_OPERATION",
            "AMOUNT_NOT_PATCHABLE",
        )
    },
    **{
        issue: 403
        for issue in (
            "PERMISSION_DENIED",
            "CONSENT_NEEDED",
            "NOT_ELIGIBLE_FOR_TOKEN_PROCESSING",
            "PAYEE_ACCOUNT_NOT_VERIFIED",
            "PERMISSION_DENIED_FOR_DONATION_ITEMS",
        )
    },
    "INVALID_RESOURCE_ID": 404,
    "PREVIOUS_REQUEST_IN_PROGRESS": 409,
    "INTERNAL_SERVER_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "RATE_LIMIT_REACHED": 429,
}


def issue_status(issue: str) -> int:
    """The HTTP status PayPal answers an issue with (422 for business rules, the default)."""
    return _ISSUE_STATUS.get(issue, 422)


class PayPalError(Exception):
    """An error answer in PayPal's shape; raise it from a handler to reply with it."""

    def __init__(
        self,
        status: int,
        issue: str | None = None,
        *,
        field: str | None = None,
        value: str | None = None,
        location: str = "body",
        description: str | None = None,
        links: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.issue = issue
        self.field = field
        self.value = value
        self.location = location
        self.description = description
        self.extra_links = list(links)
        self.headers = dict(headers or {})
        super().__init__(f"{status} {issue or NAMES.get(status, ('ERROR', ''))[0]}")

    @classmethod
    def of(cls, issue: str, **kwargs: Any) -> PayPalError:
        """The error PayPal answers `issue` with, at its usual HTTP status."""
        return cls(issue_status(issue), issue, **kwargs)

    def payload(self, debug_id: str, api: str = "orders/v2") -> dict[str, Any]:
        name, message = NAMES.get(self.status, ("UNKNOWN_ERROR", "An unknown error occurred."))
        body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug_id}
        anchor = self.issue or name
        if self.issue is not None:
            detail: dict[str, Any] = {}
            if self.field is not None:
                detail["field"] = self.field
                if self.value is not None:
                    detail["value"] = self.value
                detail["location"] = self.location
            detail["issue"] = self.issue
            detail["description"] = self.description or DESCRIPTIONS.get(self.issue, message)
            body["details"] = [detail]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/docs/api/{api}/#error-{anchor}",
                "rel": "information_link",
                "method": "GET",
            },
            *self.extra_links,
        ]
        return body


def not_found(field: str | None = None, value: str | None = None, location: str = "path") -> PayPalError:
    """404 RESOURCE_NOT_FOUND / INVALID_RESOURCE_ID, as for an unknown order, capture or token id."""
    return PayPalError(404, "INVALID_RESOURCE_ID", field=field, value=value, location=location)
