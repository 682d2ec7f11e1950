"""Braintree's command pool: every operation as GraphQL documents POSTed to /graphql.

| command | documents |
|---|---|
| authorize | search.transactions (a replay), authorizePaymentMethod |
| sale | search.transactions (a replay), chargePaymentMethod; captureTransaction when Braintree answers it AUTHORIZED |
| capture | node, partialCaptureTransaction (captureTransaction without an amount) |
| void | node, updateCustomFields, reverseTransaction |
| refund | node, refundTransaction; all of a capture or sale not yet settled: updateCustomFields, reverseTransaction |
| fetch | node, or search.transactions by orderId |
| vault | createCustomer (when the buyer has no Braintree customer), vaultPaymentMethod |
| unvault | node (the payment method, naming a customer), deletePaymentMethodFromVault |

Options: `merchant_accounts`, a mapping of currency to merchant account id (Braintree's currency
is the merchant account's; without the option every payment goes to the default merchant account,
and with it a currency it does not map is refused before sending), and
`custom_fields`, the metadata keys created as custom fields in the Control Panel (others stay
in paywire's ledger only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paywire import (
    CommandPool,
    CommandResult,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    Response,
    Subject,
    ValidatorComposite,
)
from paywire_braintree import builders, documents
from paywire_braintree.composites import Capture, Fetch, FirstOperation, Refund, Unvault, Vault, Void
from paywire_braintree.error_mapping import ERRORS
from paywire_braintree.handlers import (
    capture_fields,
    charged_fields,
    refund_fields,
    reversal_refund_fields,
    submitted_fields,
    vault_fields,
    void_fields,
)
from paywire_braintree.transfer import graphql_transfer
from paywire_braintree.validation import answered, deleted, transaction_accepted, vaulted

__all__ = ["build_commands"]


def no_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """Reads a composite command looks into (`raw`)."""
    return {}


def unvault_fields(subject: Subject, response: Response) -> dict[str, Any]:
    return {"reference": subject.source, "references": {"payment_method": str(subject.source)}}


def reversed_fields(subject: Subject, response: Response) -> dict[str, Any]:
    reversal = (response.data.get("data") or {}).get("reverseTransaction", {}).get("reversal") or {}
    return void_fields(reversal)


def _customer_id(result: CommandResult) -> str:
    return str(result.raw["data"]["createCustomer"]["customer"]["id"])


def build_commands(settings: GatewaySettings) -> CommandPool:
    accounts: Mapping[str, str] = dict(settings.option("merchant_accounts", {}) or {})
    custom_fields = frozenset(settings.option("custom_fields", ()) or ())

    def command(document: str, builder: Callable[[Subject], Mapping[str, Any]], handlers: list[Any],
                checks: tuple[Any, ...] = (), first: Any = None) -> GatewayCommand:
        first = first or answered
        return GatewayCommand(
            builder=[builder],
            transfer_factory=graphql_transfer(settings, document),
            validator=ValidatorComposite([(first, True), *checks]),
            error_mapper=ERRORS,
            handler=HandlerChain(handlers),
        )

    def charge(document: str) -> GatewayCommand:
        return command(document, lambda subject: builders.transaction_variables(subject, accounts, custom_fields),
                       [charged_fields], (transaction_accepted("transaction"),))

    read = command(documents.NODE, builders.node_variables, [no_fields])
    find = command(documents.SEARCH, builders.search_variables, [no_fields])
    tag = command(documents.TAG, builders.tag_void_variables, [no_fields])
    untag = command(documents.TAG, builders.untag_void_variables, [no_fields])
    return CommandPool(
        {
            "authorize": FirstOperation(find, charge(documents.AUTHORIZE), read, "authorize"),
            # a charge Braintree answers AUTHORIZED is submitted for settlement (captureTransaction)
            "sale": FirstOperation(find, charge(documents.CHARGE), read, "sale",
                                   command(documents.CAPTURE, builders.whole_capture_variables, [submitted_fields],
                                           (transaction_accepted("transaction"),))),
            "capture": Capture(
                read,
                partial=command(documents.PARTIAL_CAPTURE, builders.capture_variables, [capture_fields],
                                (transaction_accepted("capture"),)),
                whole=command(documents.CAPTURE, builders.whole_capture_variables, [capture_fields],
                              (transaction_accepted("transaction"),)),
            ),
            "void": Void(read, command(documents.TAG, builders.voiding_tag_variables, [no_fields]), untag,
                         command(documents.REVERSE, builders.reverse_variables, [reversed_fields])),
            # Braintree authorizes refunds: one the processor declines is a Refund in PROCESSOR_DECLINED.
            "refund": Refund(read, command(documents.REFUND, builders.refund_variables, [refund_fields],
                                           (transaction_accepted("refund"),)),
                             tag, untag, command(documents.REVERSE, builders.reverse_variables,
                                                 [reversal_refund_fields], (transaction_accepted("reversal"),))),
            "fetch": Fetch(read, find),
            "vault": Vault(command(documents.CREATE_CUSTOMER, builders.customer_variables, [no_fields]),
                           command(documents.VAULT, builders.vault_variables, [vault_fields], (vaulted,)),
                           _customer_id),
            "unvault": Unvault(command(documents.PAYMENT_METHOD, builders.node_variables, [no_fields]),
                               command(documents.DELETE_PAYMENT_METHOD, builders.delete_variables, [unvault_fields],
                                       first=deleted)),
        },
        gateway=settings.gateway,
    )
