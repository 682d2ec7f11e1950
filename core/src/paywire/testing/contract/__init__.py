"""The gateway contract kit: test classes a plugin's test suite subclasses.

    from paywire.testing.contract import ErrorCase, GatewayContract

    class TestAcmeContract(GatewayContract):
        ...  # override the fixtures documented on ContractFixtures

`GatewayContract` holds every property; the mixins (`AmountContract`, `WebhookContract`, ...)
can be combined instead to run a part of it.
"""

from paywire.testing.contract.accepted import AcceptedOutcomeContract
from paywire.testing.contract.after_effect import AfterEffectFaultContract
from paywire.testing.contract.amounts import AmountContract
from paywire.testing.contract.builders import BuilderContract
from paywire.testing.contract.buyer_action import BuyerActionContract
from paywire.testing.contract.capture import CaptureContract
from paywire.testing.contract.error_case import ErrorCase, retryable_meaning
from paywire.testing.contract.errors import ErrorMappingContract
from paywire.testing.contract.fetch import FetchContract
from paywire.testing.contract.fixtures import (
    ContractFixtures,
    SignedWebhook,
    WebhookSigner,
    header_idempotency_key,
    sign_webhook,
)
from paywire.testing.contract.follow_ups import FollowUpContract
from paywire.testing.contract.gateway_contract import GatewayContract
from paywire.testing.contract.idempotency import IdempotencyContract
from paywire.testing.contract.in_flight import InFlightDuplicateContract
from paywire.testing.contract.keys import IdempotencyKeyContract
from paywire.testing.contract.lifecycle import LifecycleContract
from paywire.testing.contract.lifecycle_machine import LifecycleSetup, PaymentLifecycle
from paywire.testing.contract.model import CaptureModel, ExpectedStates, PaymentModel, expected_states
from paywire.testing.contract.refund import RefundContract
from paywire.testing.contract.secrets import SecretContract
from paywire.testing.contract.sparse import SparseSubjectContract
from paywire.testing.contract.transport import TransportFaultContract
from paywire.testing.contract.vault import VaultContract
from paywire.testing.contract.void import VoidContract
from paywire.testing.contract.webhook_scheme import WebhookScheme, field_spans
from paywire.testing.contract.webhooks import WebhookContract
from paywire.testing.profiles import register_profiles

__all__ = [
    "AcceptedOutcomeContract",
    "AfterEffectFaultContract",
    "AmountContract",
    "BuilderContract",
    "BuyerActionContract",
    "CaptureContract",
    "CaptureModel",
    "ContractFixtures",
    "ErrorCase",
    "ErrorMappingContract",
    "ExpectedStates",
    "FetchContract",
    "FollowUpContract",
    "GatewayContract",
    "IdempotencyContract",
    "IdempotencyKeyContract",
    "InFlightDuplicateContract",
    "LifecycleContract",
    "LifecycleSetup",
    "PaymentLifecycle",
    "PaymentModel",
    "RefundContract",
    "SecretContract",
    "SignedWebhook",
    "SparseSubjectContract",
    "TransportFaultContract",
    "VaultContract",
    "VoidContract",
    "WebhookContract",
    "WebhookScheme",
    "WebhookSigner",
    "expected_states",
    "field_spans",
    "header_idempotency_key",
    "retryable_meaning",
    "sign_webhook",
]

register_profiles()  # so `settings.load_profile("paywire_ci")` works wherever the kit is imported
