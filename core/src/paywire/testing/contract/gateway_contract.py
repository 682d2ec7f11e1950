"""The whole contract in one class: subclass it and override the fixtures of `ContractFixtures`."""

from __future__ import annotations

from paywire.testing.contract.accepted import AcceptedOutcomeContract
from paywire.testing.contract.after_effect import AfterEffectFaultContract
from paywire.testing.contract.amounts import AmountContract
from paywire.testing.contract.builders import BuilderContract
from paywire.testing.contract.buyer_action import BuyerActionContract
from paywire.testing.contract.capture import CaptureContract
from paywire.testing.contract.errors import ErrorMappingContract
from paywire.testing.contract.fetch import FetchContract
from paywire.testing.contract.follow_ups import FollowUpContract
from paywire.testing.contract.idempotency import IdempotencyContract
from paywire.testing.contract.in_flight import InFlightDuplicateContract
from paywire.testing.contract.keys import IdempotencyKeyContract
from paywire.testing.contract.lifecycle import LifecycleContract
from paywire.testing.contract.refund import RefundContract
from paywire.testing.contract.secrets import SecretContract
from paywire.testing.contract.sparse import SparseSubjectContract
from paywire.testing.contract.transport import TransportFaultContract
from paywire.testing.contract.vault import VaultContract
from paywire.testing.contract.void import VoidContract
from paywire.testing.contract.webhooks import WebhookContract

__all__ = ["GatewayContract"]


class GatewayContract(
    AmountContract,
    BuilderContract,
    ErrorMappingContract,
    TransportFaultContract,
    IdempotencyContract,
    IdempotencyKeyContract,
    LifecycleContract,
    FetchContract,
    AcceptedOutcomeContract,
    CaptureContract,
    FollowUpContract,
    VoidContract,
    RefundContract,
    VaultContract,
    BuyerActionContract,
    WebhookContract,
    SecretContract,
    SparseSubjectContract,
    AfterEffectFaultContract,
    InFlightDuplicateContract,
):
    """Every property of the gateway contract. Capabilities the plugin does not declare are
    skipped with the reason; a declared one is tested and needs its fixtures."""
