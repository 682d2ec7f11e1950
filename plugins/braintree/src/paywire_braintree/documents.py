"""The GraphQL documents the plugin sends. Values always travel as variables, never in the text.

Every document is checked against Braintree's published schema by the test suite, over
hypothesis-drawn variables.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTHORIZE", "CAPTURE", "CHARGE", "CREATE_CUSTOMER", "DELETE_PAYMENT_METHOD", "DOCUMENTS", "NODE",
    "PARTIAL_CAPTURE", "PAYMENT_METHOD", "REFUND", "REVERSE", "SEARCH", "TAG", "VAULT",
]

_AMOUNT = "{ value currencyCode }"
_OPERATION = f"id legacyId orderId status createdAt amount {_AMOUNT}"
# statusHistory: whether one declined at settlement had been submitted for it (`states.operation_status`)
_REFUNDS = f"refunds {{ {_OPERATION} source statusHistory {{ status }} }}"  # source: API, or CONTROL_PANEL (`states.reversal_refund`)
_EVENTS = f"""statusHistory {{
    __typename status timestamp amount {_AMOUNT}
    ... on AuthorizedEvent {{ processorResponse {{ legacyCode message }} }}
    ... on ProcessorDeclinedEvent {{ declineType processorResponse {{ legacyCode message }} }}
    ... on GatewayRejectedEvent {{ gatewayRejectionReason duplicateOf {{ id }} }}
    ... on FailedEvent {{ processorResponse {{ legacyCode message }} }}
    ... on SettlementDeclinedEvent {{ processorResponse {{ legacyCode message }} }}
  }}"""

TRANSACTION_FIELDS: Final = f"""fragment TransactionFields on Transaction {{
  {_OPERATION}
  merchantAccountId
  customFields {{ name value }}
  paymentMethod {{ id }}
  customer {{ id }}
  {_EVENTS}
  {_REFUNDS}
  partialCaptureDetails {{
    __typename
    ... on ParentAuthorization {{ totalAmountAuthorized {_AMOUNT} childCaptures {{ {_OPERATION} customFields {{ name value }} statusHistory {{ status }} {_REFUNDS} }} }}
    ... on ChildCapture {{ parentAuthorization {{ id }} }}
  }}
}}"""


def _transaction_mutation(name: str, field: str, input_type: str, payload: str = "transaction") -> str:
    return (f"mutation {name}($input: {input_type}!) {{\n"
            f"  {field}(input: $input) {{ {payload} {{ ...TransactionFields }} }}\n}}\n{TRANSACTION_FIELDS}")


AUTHORIZE: Final = _transaction_mutation("Authorize", "authorizePaymentMethod", "AuthorizePaymentMethodInput")
CHARGE: Final = _transaction_mutation("Charge", "chargePaymentMethod", "ChargePaymentMethodInput")
CAPTURE: Final = _transaction_mutation("Capture", "captureTransaction", "CaptureTransactionInput")
PARTIAL_CAPTURE: Final = _transaction_mutation(
    "PartialCapture", "partialCaptureTransaction", "PartialCaptureTransactionInput", "capture")
TAG: Final = """mutation Tag($input: UpdateCustomFieldsInput!) {
  updateCustomFields(input: $input) { customFields { name value } }
}"""

REFUND: Final = f"""mutation Refund($input: RefundTransactionInput!) {{
  refundTransaction(input: $input) {{ refund {{ {_OPERATION} {_EVENTS} refundedTransaction {{ id }} }} }}
}}"""

REVERSE: Final = f"""mutation Reverse($input: ReverseTransactionInput!) {{
  reverseTransaction(input: $input) {{
    reversal {{ __typename ... on Transaction {{ {_OPERATION} }} ... on Refund {{ {_OPERATION} }} }}
  }}
}}"""

NODE: Final = f"""query Transaction($id: ID!) {{
  node(id: $id) {{ __typename ... on Transaction {{ ...TransactionFields }} }}
}}
{TRANSACTION_FIELDS}"""

SEARCH: Final = f"""query FindTransactions($input: TransactionSearchInput!, $first: Int, $after: String) {{
  search {{ transactions(input: $input, first: $first, after: $after) {{
    edges {{ node {{ ...TransactionFields }} }} pageInfo {{ hasNextPage endCursor }}
  }} }}
}}
{TRANSACTION_FIELDS}"""

VAULT: Final = """mutation Vault($input: VaultPaymentMethodInput!) {
  vaultPaymentMethod(input: $input) {
    paymentMethod { id legacyId usage customer { id } }
    verification { id status processorResponse { legacyCode message } gatewayRejectionReason }
  }
}"""

CREATE_CUSTOMER: Final = """mutation CreateCustomer($input: CreateCustomerInput) {
  createCustomer(input: $input) { customer { id } }
}"""

PAYMENT_METHOD: Final = """query VaultedPaymentMethod($id: ID!) {
  node(id: $id) { __typename ... on PaymentMethod { id customer { id legacyId } } }
}"""

DELETE_PAYMENT_METHOD: Final = """mutation DeletePaymentMethod($input: DeletePaymentMethodFromVaultInput!) {
  deletePaymentMethodFromVault(input: $input) { clientMutationId }
}"""

DOCUMENTS: Final = {
    "authorize": AUTHORIZE, "charge": CHARGE, "capture": CAPTURE, "partial_capture": PARTIAL_CAPTURE,
    "tag": TAG, "refund": REFUND, "reverse": REVERSE, "node": NODE, "search": SEARCH,
    "vault": VAULT, "create_customer": CREATE_CUSTOMER, "delete_payment_method": DELETE_PAYMENT_METHOD,
    "payment_method": PAYMENT_METHOD,
}
