"""paywire: a payment-gateway framework.

Everything public is importable from here, except what has a package of its own: the server
(`paywire.serve`: the Janitor, its `PassReport` and `Backoff`), the contract kit and emulators
(`paywire.testing`), and the ledger's internals. Names are resolved on first access, so
`import paywire` stays cheap: pluggy, urllib3 and the ledger load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # values
    "Money": "paywire.money",
    "Subject": "paywire.subject",
    "Order": "paywire.subject",
    "Address": "paywire.subject",
    "Customer": "paywire.subject",
    "LineItem": "paywire.subject",
    "BuyerAction": "paywire.subject",
    "Secret": "paywire.security",
    # errors
    "PaywireError": "paywire.errors",
    "ConfigurationError": "paywire.errors",
    "InvalidRequest": "paywire.errors",
    "StateError": "paywire.errors",
    "UnsupportedOperation": "paywire.errors",
    "Declined": "paywire.errors",
    "BuyerActionRequired": "paywire.errors",
    "AuthenticationError": "paywire.errors",
    "RateLimited": "paywire.errors",
    "ProviderUnavailable": "paywire.errors",
    "TransportError": "paywire.errors",
    "OutcomeUnknown": "paywire.errors",
    "LedgerBusy": "paywire.errors",
    "LedgerUnavailable": "paywire.errors",
    "IdempotencyConflict": "paywire.errors",
    "WebhookVerificationError": "paywire.errors",
    "PluginError": "paywire.errors",
    # the pipeline
    "BuilderComposite": "paywire.request.builder",
    "TransferFactory": "paywire.http.transfer",
    "Transfer": "paywire.http.transfer",
    "Timeout": "paywire.http.transfer",
    "Response": "paywire.http.response",
    "Retry": "paywire.http.retry",
    "Client": "paywire.http.client",
    "Urllib3Client": "paywire.http.client",
    "Auth": "paywire.http.auth",
    "BearerAuth": "paywire.http.auth",
    "BasicAuth": "paywire.http.auth",
    "JSON": "paywire.converter",
    "FORM": "paywire.converter",
    "GraphQLConverter": "paywire.converter",
    "Result": "paywire.validator.result",
    "ValidatorComposite": "paywire.validator.composite",
    "ErrorMapper": "paywire.error_mapper",
    "ErrorRule": "paywire.error_mapper",
    "HandlerChain": "paywire.handler",
    "GatewayCommand": "paywire.command.gateway_command",
    "CommandPool": "paywire.command.pool",
    "CommandContext": "paywire.command.context",
    "CommandResult": "paywire.command.result",
    "ProviderOperation": "paywire.command.result",
    "ProviderState": "paywire.command.result",
    "VOID_TARGET": "paywire.command.result",
    "REAUTHORIZATION_UNDECIDED": "paywire.command.result",
    "REAUTHORIZED": "paywire.command.result",
    "step_key": "paywire.step_keys",
    # gateways, plugins, configuration
    "Gateway": "paywire.gateway",
    "Method": "paywire.gateway",
    "GatewayDefinition": "paywire.gateway_definition",
    "GatewaySettings": "paywire.settings",
    "WebhookVerifier": "paywire.webhook",
    "OwnCommands": "paywire.own_commands",
    "Capabilities": "paywire.gateway_definition",
    "MethodConfig": "paywire.config",
    "PaymentMethodList": "paywire.config",
    "Plugins": "paywire.plugins",
    "hookimpl": "paywire.hookspecs",
    "WebhookBatch": "paywire.webhook",
    "WebhookEvent": "paywire.webhook",
    "EventKind": "paywire.webhook",
    # the payment service and its ledger
    "PaymentService": "paywire.service",
    "Notification": "paywire.service",
    "WebhookReceipt": "paywire.service",
    "ReconcileReport": "paywire.service",
    "MatchReport": "paywire.service",
    "Settlement": "paywire.service",
    "Mismatch": "paywire.service",
    "Ledger": "paywire.ledger",
    "SQLiteLedger": "paywire.ledger",
    "PostgresLedger": "paywire.ledger",
    "open_ledger": "paywire.ledger",
    "Payment": "paywire.ledger",
    "PaymentState": "paywire.ledger",
    "Transaction": "paywire.ledger",
    "TransactionStatus": "paywire.ledger",
    "WebhookApp": "paywire.web",
    "webhook_asgi": "paywire.web",
    "webhook_wsgi": "paywire.web",
}

# Spelled out so that type checkers see the re-exports.
__all__ = [
    "FORM",
    "JSON",
    "REAUTHORIZATION_UNDECIDED",
    "REAUTHORIZED",
    "VOID_TARGET",
    "Address",
    "Auth",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "BuilderComposite",
    "BuyerAction",
    "BuyerActionRequired",
    "Capabilities",
    "Client",
    "CommandContext",
    "CommandPool",
    "CommandResult",
    "ConfigurationError",
    "Customer",
    "Declined",
    "ErrorMapper",
    "ErrorRule",
    "EventKind",
    "Gateway",
    "GatewayCommand",
    "GatewayDefinition",
    "GatewaySettings",
    "GraphQLConverter",
    "HandlerChain",
    "IdempotencyConflict",
    "InvalidRequest",
    "Ledger",
    "LedgerBusy",
    "LedgerUnavailable",
    "LineItem",
    "MatchReport",
    "Method",
    "MethodConfig",
    "Mismatch",
    "Money",
    "Notification",
    "Order",
    "OutcomeUnknown",
    "OwnCommands",
    "Payment",
    "PaymentMethodList",
    "PaymentService",
    "PaymentState",
    "PaywireError",
    "PluginError",
    "Plugins",
    "PostgresLedger",
    "ProviderOperation",
    "ProviderState",
    "ProviderUnavailable",
    "RateLimited",
    "ReconcileReport",
    "Response",
    "Result",
    "Retry",
    "SQLiteLedger",
    "Secret",
    "Settlement",
    "StateError",
    "Subject",
    "Timeout",
    "Transaction",
    "TransactionStatus",
    "Transfer",
    "TransferFactory",
    "TransportError",
    "UnsupportedOperation",
    "Urllib3Client",
    "ValidatorComposite",
    "WebhookApp",
    "WebhookBatch",
    "WebhookEvent",
    "WebhookReceipt",
    "WebhookVerificationError",
    "WebhookVerifier",
    "hookimpl",
    "open_ledger",
    "step_key",
    "webhook_asgi",
    "webhook_wsgi",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'paywire' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from paywire.command.context import CommandContext
    from paywire.command.gateway_command import GatewayCommand
    from paywire.command.pool import CommandPool
    from paywire.command.result import (
        REAUTHORIZATION_UNDECIDED,
        REAUTHORIZED,
        VOID_TARGET,
        CommandResult,
        ProviderOperation,
        ProviderState,
    )
    from paywire.config import MethodConfig, PaymentMethodList
    from paywire.converter import FORM, JSON, GraphQLConverter
    from paywire.error_mapper import ErrorMapper, ErrorRule
    from paywire.errors import (
        AuthenticationError,
        BuyerActionRequired,
        ConfigurationError,
        Declined,
        IdempotencyConflict,
        InvalidRequest,
        LedgerBusy,
        LedgerUnavailable,
        OutcomeUnknown,
        PaywireError,
        PluginError,
        ProviderUnavailable,
        RateLimited,
        StateError,
        TransportError,
        UnsupportedOperation,
        WebhookVerificationError,
    )
    from paywire.gateway import Gateway, Method
    from paywire.gateway_definition import Capabilities, GatewayDefinition
    from paywire.handler import HandlerChain
    from paywire.hookspecs import hookimpl
    from paywire.http.auth import Auth, BasicAuth, BearerAuth
    from paywire.http.client import Client, Urllib3Client
    from paywire.http.response import Response
    from paywire.http.retry import Retry
    from paywire.http.transfer import Timeout, Transfer, TransferFactory
    from paywire.ledger import (
        Ledger,
        Payment,
        PaymentState,
        PostgresLedger,
        SQLiteLedger,
        Transaction,
        TransactionStatus,
        open_ledger,
    )
    from paywire.money import Money
    from paywire.own_commands import OwnCommands
    from paywire.plugins import Plugins
    from paywire.request.builder import BuilderComposite
    from paywire.security import Secret
    from paywire.service import (
        MatchReport,
        Mismatch,
        Notification,
        PaymentService,
        ReconcileReport,
        Settlement,
        WebhookReceipt,
    )
    from paywire.settings import GatewaySettings
    from paywire.step_keys import step_key
    from paywire.subject import Address, BuyerAction, Customer, LineItem, Order, Subject
    from paywire.validator.composite import ValidatorComposite
    from paywire.validator.result import Result
    from paywire.web import WebhookApp, webhook_asgi, webhook_wsgi
    from paywire.webhook import EventKind, WebhookBatch, WebhookEvent, WebhookVerifier
