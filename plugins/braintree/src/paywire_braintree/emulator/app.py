"""The Braintree emulator: POST /graphql, every document parsed and validated against Braintree's
published schema, then executed against the emulator's state with graphql-core.

Queries may come as GET (`query` and JSON `variables` in the URL), mutations only as POST. It
answers as Braintree does: HTTP 200 with `errors` (errorClass, legacyCode) for validation and
not-found errors and for invalid documents, 401 with AUTHENTICATION for a wrong key pair, and a
refused transaction as data with its status (PROCESSOR_DECLINED, GATEWAY_REJECTED, FAILED). Faults
can target one operation: a fault's `path` is matched against "/graphql" and against
"/graphql/<field>", the operation's first field as spelled and in lower case
("/graphql/chargePaymentMethod", "/graphql/chargepaymentmethod"). The faults that act after the
operation took effect (`status_after`, `drop_after`) hit mutations only, unless their path names
a query's field: a read has no effect to lose.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode, OperationType, execute

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, Fault, Reply, route
from paywire_braintree.currencies import CURRENCIES
from paywire_braintree.emulator.model import Customer, PaymentMethod, Transaction
from paywire_braintree.emulator.operations import Operations
from paywire_braintree.emulator.schema import parsed, schema
from paywire_braintree.emulator.views import customer_view, payment_method_view, transaction_view
from paywire_braintree.emulator.webhooks import notification_body

__all__ = ["BraintreeEmulator", "merchant_account"]

_FIELD = re.compile(r"\{\s*(\w+)")
_FAULT_ERRORS = {429: "RESOURCE_LIMIT", 503: "SERVICE_AVAILABILITY"}


def merchant_account(currency: str) -> str:
    """The id of the emulator's merchant account for `currency`."""
    return f"paywire_{currency.lower()}"


class BraintreeEmulator(EmulatorApp):
    """A stateful Braintree GraphQL API.

    :param public_key: / :param private_key: the API key pair it accepts (HTTP Basic).
    :param merchant_id: the merchant, named in webhooks.
    :param settlement: "instant", "batch" or "pending" (see `operations`).
    :param custom_fields: the custom field names configured in the Control Panel.
    :param duplicate_window: seconds of Braintree's duplicate transaction checking (None: off).
    :param search_lag: seconds before a new transaction shows in search.transactions.
    """

    def __init__(self, public_key: str = "paywire_public", private_key: str = "paywire_private",
                 merchant_id: str = "paywire_merchant", *, settlement: str = "instant",
                 custom_fields: tuple[str, ...] = ("paywire_key", "paywire_void_key", "order_note"),
                 duplicate_window: float | None = None, search_lag: float = 0.0) -> None:
        super().__init__()
        if settlement not in ("instant", "batch", "pending"):
            raise ValueError("settlement is 'instant', 'batch' or 'pending'")
        self.public_key = public_key
        self.private_key = private_key
        self.merchant_id = merchant_id
        self.settlement = settlement
        self.custom_fields = frozenset(custom_fields)
        self.duplicate_window = duplicate_window
        self.search_lag = search_lag
        self.merchant_accounts = {merchant_account(code): code for code in sorted(CURRENCIES)}
        self.default_merchant_account = merchant_account("USD")
        self.transactions: dict[str, Transaction] = {}
        self.payment_methods: dict[str, PaymentMethod] = {}
        self.customers: dict[str, Customer] = {}
        self.operations = Operations(self)
        self._field = threading.local()
        schema()  # loaded once per process, before the first request

    # -- test controls -------------------------------------------------------------------------
    def settle(self, transaction_id: str, outcome: str = "SETTLED") -> None:
        """Decide a submitted capture or refund (Braintree's batch), sending its webhook; or an
        AUTHORIZING authorization: SETTLED authorizes it, PROCESSOR_DECLINED (any other outcome),
        FAILED or GATEWAY_REJECTED ends it so."""
        with self.lock:
            self.operations.settle(self.operations.transaction(transaction_id), outcome)

    def bank_return(self, transaction_id: str) -> None:
        """The customer's bank returns a settled ACH or SEPA sale, capture or refund: Braintree
        declines its settlement after it settled, sending transaction_settlement_declined after
        transaction_settled (its Transaction webhooks reference)."""
        with self.lock:
            self.operations.bank_return(self.operations.transaction(transaction_id))

    def expire(self, transaction_id: str) -> None:
        """Expire an authorization, as Braintree does once its brand's time frame has passed."""
        with self.lock:
            self.operations.expire(self.operations.transaction(transaction_id))

    def notify(self, kind: str, transaction: Transaction) -> None:
        """Send Braintree's signed notification about `transaction` to `webhook_url`."""
        if self.webhook_url:
            body = notification_body(self.public_key, self.private_key, kind, transaction)
            self.deliver_webhook(body, {"Content-Type": "application/x-www-form-urlencoded"})

    def fault_reply(self, status: int, headers: Mapping[str, str]) -> Reply:
        error_class = _FAULT_ERRORS.get(status, "INTERNAL" if status >= 500 else "VALIDATION")
        return self._reply(status, {"errors": [{"message": "injected fault", "extensions": {"errorClass": error_class}}]},
                           headers)

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...] = ("latency", "status", "status_after",
                                                                              "drop_after", "hold"),
                    *, request: EmulatorRequest | None = None) -> Fault | None:
        field = getattr(self._field, "name", None)
        mutation = getattr(self._field, "mutation", False)
        names = (field, field.lower()) if field else ()
        with self._fault_lock:
            for entry in self._faults:
                fault, remaining = entry
                named = any(fault.matches(method, f"{path}/{name}", request) for name in names)
                # "after the operation took effect" is about writes: a query is hit only when named
                if fault.kind in ("status_after", "drop_after", "hold") and not mutation and not (fault.path and named):
                    continue
                if remaining > 0 and fault.kind in kinds and (fault.matches(method, path, request) or named):
                    entry[1] = remaining - 1
                    return fault  # type: ignore[no-any-return]
        return None

    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        try:
            query = (dict(request.query) if request.method == "GET" else json.loads(request.body or b"{}")).get("query")
            match = _FIELD.search(str(query or ""))
        except (ValueError, AttributeError):
            query, match = None, None
        self._field.name = match.group(1) if match else None
        self._field.mutation = str(query or "").lstrip().startswith("mutation")
        try:
            return super().answer(request)
        finally:
            self._field.name, self._field.mutation = None, False

    # -- the API --------------------------------------------------------------------------------
    def _reply(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
        body.setdefault("extensions", {"requestId": str(uuid.uuid4())})
        return Reply.json(status, body, headers)

    def _authenticated(self, request: EmulatorRequest) -> bool:
        expected = base64.b64encode(f"{self.public_key}:{self.private_key}".encode()).decode()
        given = request.header("authorization") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), f"Basic {expected}".encode())

    @route("GET", "/graphql")
    def graphql_get(self, request: EmulatorRequest) -> Reply:
        """A query in the URL (`query`, `variables` as JSON); mutations only as POSTs."""
        fields = dict(request.query)
        try:
            variables = json.loads(fields.get("variables") or "{}")
        except ValueError:
            variables = None
        body = json.dumps({"query": fields.get("query"), "variables": variables,
                           "operationName": fields.get("operationName")}).encode()
        return self._graphql(attrs.evolve(request, body=body), get=True)

    @route("POST", "/graphql")
    def graphql(self, request: EmulatorRequest) -> Reply:
        return self._graphql(request, get=False)

    def _graphql(self, request: EmulatorRequest, *, get: bool) -> Reply:
        if not self._authenticated(request):
            return self._reply(401, {"errors": [{"message": "Authentication credentials are invalid.",
                                                 "extensions": {"errorClass": "AUTHENTICATION"}}]})
        if not request.header("braintree-version"):
            return self._reply(400, {"errors": [{"message": "Braintree-Version header is required.",
                                                 "extensions": {"errorClass": "UNSUPPORTED_CLIENT"}}]})
        try:
            body = request.json()
            query, variables = body["query"], body.get("variables") or {}
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return self._reply(400, {"errors": [{"message": "The request body must be JSON with a query.",
                                                 "extensions": {"errorClass": "VALIDATION"}}]})
        document, errors = parsed(query)
        if document is None or errors:
            return self._reply(200, {"errors": [{**e.formatted, "extensions": {"errorClass": "VALIDATION"}}
                                                for e in errors]})
        if get and any(isinstance(d, OperationDefinitionNode) and d.operation != OperationType.QUERY
                       for d in document.definitions):
            return self._reply(405, {"errors": [{"message": "Mutations must be sent with POST.",
                                                 "extensions": {"errorClass": "VALIDATION"}}]}, {"Allow": "POST"})
        with self.lock:
            result = execute(schema(), document, root_value=_Root(self), variable_values=variables,
                             operation_name=body.get("operationName"))
        if not isinstance(result, ExecutionResult):
            raise TypeError("the emulator resolves synchronously")
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_formatted(error) for error in result.errors]
        return self._reply(200, answer)

    @route("POST", "/_paywire/braintree/expire")
    def expire_control(self, request: EmulatorRequest) -> Reply:
        data = request.json() or {}
        try:
            self.expire(str(data["id"]))
        except (KeyError, GraphQLError) as error:
            return Reply.json(400, {"error": str(error)})
        return Reply.json(200, {"ok": True})

    @route("POST", "/_paywire/braintree/settle")
    def settle_control(self, request: EmulatorRequest) -> Reply:
        data = request.json() or {}
        try:
            self.settle(str(data["id"]), str(data.get("outcome", "SETTLED")))
        except (KeyError, GraphQLError) as error:
            return Reply.json(400, {"error": str(error)})
        return Reply.json(200, {"ok": True})


def _formatted(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions: dict[str, Any] = dict(formatted.get("extensions") or {})
    if "errorClass" not in extensions:
        # Variables the operation's types refuse (a field its input does not have, such as an
        # amount for reverseTransaction) come wrapped in a GraphQLError: refused before anything
        # ran, as Braintree does. Anything else raised inside a resolver is the emulator's own failure.
        internal = error.original_error is not None and not isinstance(error.original_error, GraphQLError)
        extensions["errorClass"] = "INTERNAL" if internal else "VALIDATION"
    formatted["extensions"] = extensions
    return formatted


class _Root:
    """The Query and Mutation fields the emulator implements (graphql-core calls them by name)."""

    def __init__(self, emulator: BraintreeEmulator) -> None:
        self.emulator = emulator
        self.ops = emulator.operations

    def _transaction(self, transaction: Transaction) -> dict[str, Any]:
        return transaction_view(self.emulator, transaction)

    # queries
    def ping(self, info: Any) -> str:
        return "pong"

    def node(self, info: Any, id: str) -> dict[str, Any] | None:
        emulator = self.emulator
        if id in emulator.transactions:
            return self._transaction(emulator.transactions[id])
        if id in emulator.payment_methods:
            return payment_method_view(emulator, emulator.payment_methods[id])
        if id in emulator.customers:
            return customer_view(emulator, emulator.customers[id])
        raise GraphQLError("An object with this ID was not found.", extensions={"errorClass": "NOT_FOUND"})

    def search(self, info: Any) -> dict[str, Any]:
        def transactions(info: Any, input: dict[str, Any], first: int | None = None,
                         after: str | None = None) -> dict[str, Any]:
            found, more = self.ops.search(input, first, after)
            return {"edges": [{"cursor": t.id, "node": self._transaction(t)} for t in found],
                    "pageInfo": {"hasNextPage": more, "hasPreviousPage": False,  # never: Braintree pages forward only
                                 "startCursor": found[0].id if found else None,
                                 "endCursor": found[-1].id if found else None}}

        return {"transactions": transactions}

    # mutations
    def authorizePaymentMethod(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "transaction": self._transaction(self.ops.create(input, submit=False))}

    def chargePaymentMethod(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "transaction": self._transaction(self.ops.create(input, submit=True))}

    def captureTransaction(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "transaction": self._transaction(self.ops.capture(input))}

    def partialCaptureTransaction(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "capture": self._transaction(self.ops.partial_capture(input))}

    def refundTransaction(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "refund": self._transaction(self.ops.refund(input))}

    def reverseTransaction(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        return {"clientMutationId": input.get("clientMutationId"),
                "reversal": self._transaction(self.ops.reverse(input))}

    def updateCustomFields(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        transaction = self.ops.update_fields(input)
        return {"clientMutationId": input.get("clientMutationId"),
                "customFields": [{"name": k, "value": v} for k, v in sorted(transaction.custom.items())]}

    def sandboxSettleTransaction(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        outcome = input.get("settlementState") or "SETTLED"
        transaction = self.ops.settle(self.ops.transaction(input["transactionId"]), outcome)
        return {"clientMutationId": input.get("clientMutationId"), "transaction": self._transaction(transaction)}

    def createCustomer(self, info: Any, input: dict[str, Any] | None = None) -> dict[str, Any]:
        customer = self.ops.create_customer(input)
        return {"clientMutationId": (input or {}).get("clientMutationId"),
                "customer": customer_view(self.emulator, customer)}

    def vaultPaymentMethod(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        method = self.ops.vault(input)
        if isinstance(method, dict):  # the verification refused it
            return {"clientMutationId": input.get("clientMutationId"), "paymentMethod": None, "verification": method}
        return {"clientMutationId": input.get("clientMutationId"),
                "paymentMethod": payment_method_view(self.emulator, method), "verification": None}

    def deletePaymentMethodFromVault(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        self.ops.delete_payment_method(input)
        return {"clientMutationId": input.get("clientMutationId")}
