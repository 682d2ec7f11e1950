"""The fixtures every contract test uses, and the ones a plugin overrides to describe itself.

A plugin's test module subclasses a contract class and overrides fixtures as methods of the
subclass. Fixtures marked *required* raise `NotImplementedError` until overridden. The emulator,
the method configuration and the test sources default to the provider's sandbox (named in its
`GatewayDefinition`); capabilities and currencies default to what the definition declares.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Protocol

import attrs
import pytest

from paywire.command.result import CommandResult
from paywire.config import MethodConfig
from paywire.gateway_definition import Capabilities, GatewayDefinition
from paywire.http.transfer import Transfer
from paywire.money import Money
from paywire.plugins import Plugins
from paywire.testing.contract.error_case import ErrorCase
from paywire.testing.contract.model import ExpectedStates, expected_states
from paywire.testing.contract.webhook_scheme import WebhookScheme
from paywire.testing.controls import EmulatorControls
from paywire.testing.emulator import EmulatorServer
from paywire.testing.harness import ApproveBuyerAction, ContractHarness, GatewayFactory, plugin_name
from paywire.testing.leaks import LeakWatch, SecretValues
from paywire.testing.recorder import TransferRecorder
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire.testing.strategies import WEBHOOK_KINDS, Bounds, Representable, WebhookPayload, representable_at_most

__all__ = ["ContractFixtures", "SignedWebhook", "WebhookSigner", "header_idempotency_key", "sign_webhook"]


@attrs.frozen
class SignedWebhook:
    """A webhook as sent when the signature travels in the body (Adyen's `hmacSignature`,
    Braintree's `bt_signature` and `bt_payload` pair): the headers and the body as signed."""

    headers: Mapping[str, str]
    body: bytes


class WebhookSigner(Protocol):
    """Signs a webhook body as the provider does: returns the headers to send with the body, or
    a `SignedWebhook` when signing changes the body itself.

    :param timestamp: the signing time in Unix seconds (now when None).
    :param forged: sign with a secret (or key) other than the one the gateway is configured with.
    """

    def __call__(
        self, body: bytes, *, timestamp: int | None = None, forged: bool = False
    ) -> Mapping[str, str] | SignedWebhook: ...


def sign_webhook(signer: WebhookSigner, body: bytes, *, timestamp: int | None = None,
                 forged: bool = False) -> tuple[dict[str, str], bytes]:
    """The headers and body a provider sends for `body`, whichever way its signer answers."""
    signed = signer(body, timestamp=timestamp, forged=forged)
    if isinstance(signed, SignedWebhook):
        return dict(signed.headers), signed.body
    return dict(signed), body


def header_idempotency_key(*names: str) -> Callable[[Transfer], str | None]:
    """A `wire_idempotency_key` reading the key from a header: one of `names` (any case), or,
    with none given, any header whose name contains "idempotency"."""
    wanted = {name.lower() for name in names}

    def read(transfer: Transfer) -> str | None:
        for name, value in transfer.all_headers().items():
            lowered = name.lower()
            if (lowered in wanted) if wanted else ("idempotency" in lowered):
                return value
        return None

    return read


def _required(name: str, what: str) -> NotImplementedError:
    return NotImplementedError(f"override the `{name}` fixture in your contract test class: {what}")


def _source(sandbox: Sandbox, role: str, fixture: str) -> str:
    try:
        return sandbox.sources[role]
    except KeyError:
        raise _required(fixture, f"the sandbox names no {role!r} source") from None


class ContractFixtures:
    """Fixtures shared by every contract mixin. Subclass a contract class and override these."""

    pytestmark = [pytest.mark.paywire_contract]

    # -- required: the plugin under test -------------------------------------------------------
    @pytest.fixture
    def gateway_plugin(self) -> object:
        """Required. The plugin to register: its module or object with `@hookimpl` functions."""
        raise _required("gateway_plugin", "return the module (or object) holding your hook implementations")

    @pytest.fixture
    def gateway_definition(self, gateway_plugin: object) -> GatewayDefinition:
        """The gateway the plugin registers (override to pick one when it registers several)."""
        plugins = Plugins()
        plugins.register(gateway_plugin, name=plugin_name(gateway_plugin))
        definitions = list(plugins.gateways().values())
        if len(definitions) != 1:
            raise _required("gateway_definition", f"the plugin registers {len(definitions)} gateways; return one")
        return definitions[0]

    # -- the provider's sandbox: the defaults of emulator, method_config and the test sources ---
    @pytest.fixture
    def sandbox(self, gateway_definition: GatewayDefinition) -> Sandbox:
        """The provider's offline sandbox (`GatewayDefinition.sandbox`), fresh for each test."""
        if not gateway_definition.sandbox:
            raise _required("emulator", f"{gateway_definition.code} names no sandbox in its GatewayDefinition; "
                            "override emulator, method_config and the *_source fixtures, or add a sandbox")
        return load_sandbox(gateway_definition)

    @pytest.fixture
    def sandbox_url(self, sandbox: Sandbox) -> Iterator[str]:
        """The sandbox's emulator, served on loopback for one test."""
        with EmulatorServer(sandbox.app) as server:
            yield server.url

    @pytest.fixture
    def emulator(self, sandbox: Sandbox, sandbox_url: str) -> EmulatorControls:
        """The emulator's controls: the sandbox's by default; an `EmulatorApp` or a `RemoteEmulator`."""
        return sandbox.app

    @pytest.fixture
    def method_config(self, sandbox: Sandbox, sandbox_url: str, gateway_definition: GatewayDefinition) -> MethodConfig:
        """The method under test: `base_url` at the emulator, `environment="sandbox"`, and
        `credentials` the emulator accepts (their values are the secrets checked for leaks)."""
        return sandbox.method(gateway_definition.code, sandbox_url)

    @pytest.fixture
    def payment_source(self, sandbox: Sandbox) -> str:
        """A source the provider authorizes (after buyer action, if it always asks): sandbox "ok"."""
        return _source(sandbox, "ok", "payment_source")

    @pytest.fixture
    def declined_source(self, sandbox: Sandbox) -> str:
        """A source the provider declines: the sandbox's "decline"."""
        return _source(sandbox, "decline", "declined_source")

    @pytest.fixture
    def buyer_action_source(self, sandbox: Sandbox) -> str:
        """For `buyer_action`: a source that waits for the buyer; the sandbox's "buyer_action"."""
        return _source(sandbox, "buyer_action", "buyer_action_source")

    @pytest.fixture
    def accepted_source(self, sandbox: Sandbox) -> str | None:
        """A source paid through an operation the provider accepts and decides later (its sale,
        or else its capture, answers `accepted`): the sandbox's "accepted"; None when the
        provider decides every payment at once (the accepted-outcome checks are then skipped)."""
        return sandbox.sources.get("accepted")

    @pytest.fixture
    def accepted_amount(self, example_amount: Money) -> Money:
        """What the kit pays with `accepted_source`: `example_amount`, unless that source takes
        other currencies only (Stripe's ACH debits: USD)."""
        return example_amount

    @pytest.fixture
    def refund_accepted_source(self, sandbox: Sandbox) -> str | None:
        """A source paid at once whose refunds the provider decides later: the sandbox's
        "refund_accepted"; None when every refund is decided at once."""
        return sandbox.sources.get("refund_accepted")

    @pytest.fixture
    def authorization_accepted_source(self, sandbox: Sandbox) -> str | None:
        """A source whose authorization the provider decides later (a review, a pending
        authorization): the sandbox's "authorization_accepted"; None when it decides at once."""
        return sandbox.sources.get("authorization_accepted")

    @pytest.fixture
    def partial_authorization_source(self, sandbox: Sandbox) -> str | None:
        """A source the provider authorizes at once for less than asked (a prepaid card's
        balance): the sandbox's "partial_authorization"; None when the provider authorizes all
        or nothing (the partial-authorization check is then skipped)."""
        return sandbox.sources.get("partial_authorization")

    @pytest.fixture
    def partial_capture_source(self, sandbox: Sandbox) -> str | None:
        """A source authorized in full whose captures the provider applies for less than asked
        (the issuer honours part of a capture: a lapsed or partly reversed authorization): the
        sandbox's "partial_capture"; None when every capture is applied in full or refused (the
        check of what a partial capture reports is then skipped)."""
        return sandbox.sources.get("partial_capture")

    @pytest.fixture
    def partial_refund_source(self, sandbox: Sandbox) -> str | None:
        """A source paid at once whose refunds the provider applies for less than asked (what it
        can still return: a fee it keeps, a local method's limit): the sandbox's
        "partial_refund"; None when every refund is applied in full or refused (the check of what a
        partial refund reports is then skipped)."""
        return sandbox.sources.get("partial_refund")

    @pytest.fixture
    def settle_accepted(self, sandbox: Sandbox) -> Callable[[str, bool], object] | None:
        """Decides an accepted operation as the provider later would: `(reference, succeed)`,
        with the reference the accepted result named; the sandbox's `settle` by default."""
        return sandbox.settle

    @pytest.fixture
    def fetch_finds_by_key(self) -> bool:
        """Whether `fetch` finds a payment by the idempotency key (and order) it was created with,
        as reconciliation asks when the first answer was lost. A provider with no such lookup
        returns False, and its `fetch` must then refuse a subject without a reference before
        sending (`InvalidRequest`); reconciliation leaves such a payment open for a retry."""
        return True

    @pytest.fixture
    def refuses_keys_in_flight(self) -> bool:
        """Whether the provider answers a request whose idempotency key an earlier request still
        holds (sent, not yet answered) with an "in progress" error of its own: Stripe's 409
        `idempotency_key_in_use`, PayPal's 409 `PREVIOUS_REQUEST_IN_PROGRESS`. False for a provider
        that deduplicates on no key (Braintree: the plugin finds an earlier operation by the key
        it writes into the request), whose duplicates in flight only the payment service's claim
        on the key keeps to one call; the in-flight check is then skipped."""
        return True

    @pytest.fixture
    def approve_buyer_action(self, sandbox: Sandbox) -> ApproveBuyerAction:
        """Acts as the buyer for a started result: the sandbox visits the redirect URL."""

        def approve(result: CommandResult) -> None:
            if result.action is None:
                raise AssertionError(f"no buyer action to approve in {result!r}")
            sandbox.act_as_buyer(result.action.redirect_url)

        return approve

    # -- required: how the provider speaks -----------------------------------------------------
    @pytest.fixture
    def wire_amount(self) -> Callable[[Transfer], Money | None]:
        """Required. Reads the amount back out of a request sent for an authorization, as the
        provider would; None for a request that carries no amount.

        Decode the provider's documented format, independently of the plugin's encoder: the kit
        compares every amount the authorization sends with the `Money` that was authorized.
        """
        raise _required("wire_amount", "return a function decoding the amount of a Transfer (None if it has none)")

    @pytest.fixture
    def wire_idempotency_key(self) -> Callable[[Transfer], str | None]:
        """Reads the idempotency key back out of a request as sent, where the provider reads it;
        None for a request that carries none. By default the value of any header whose name
        contains "idempotency" (any case). Override it for another header
        (`header_idempotency_key("PayPal-Request-Id")`) or a key carried in the body: the kit
        checks that every money-moving command puts the subject's key on the wire, where
        `Transfer.idempotency_key` shows only a key the factory's `idempotency_header` carried.
        """
        return header_idempotency_key()

    @pytest.fixture
    def provider_errors(self) -> Sequence[ErrorCase]:
        """Required. Every error answer the provider documents, with the typed error it must become."""
        raise _required("provider_errors", "return ErrorCase(...) entries for the provider's error answers")

    # -- required when the capability is declared -----------------------------------------------
    @pytest.fixture
    def webhook_signer(self) -> WebhookSigner:
        """Required for `webhooks`: signs bodies as the provider does (see `WebhookSigner`)."""
        raise _required("webhook_signer", "return a function (body, *, timestamp=None, forged=False) -> headers")

    @pytest.fixture
    def webhook_body(self) -> Callable[[WebhookPayload], bytes]:
        """Required for `webhooks`: renders a `WebhookPayload` as the provider's event body."""
        raise _required("webhook_body", "return a function rendering a WebhookPayload as your provider's JSON")

    # -- optional: defaults read from the gateway definition ------------------------------------
    @pytest.fixture
    def capabilities(self, harness: ContractHarness) -> Capabilities:
        """What the kit tests; the method's capabilities as the plugin declares them by default."""
        return harness.capabilities

    @pytest.fixture
    def supported_currencies(self, harness: ContractHarness) -> frozenset[str] | None:
        """The currencies the provider takes (None: all); `GatewayDefinition.currencies` by default."""
        return harness.method.definition.currencies

    @pytest.fixture
    def amount_bounds(self) -> Bounds:
        """The smallest and largest amount per currency, in minor units, the provider accepts."""
        return lambda currency: (1, 99_999_999)

    @pytest.fixture
    def amount_representable(self) -> Representable | None:
        """Whether the provider holds an amount exactly (None: every amount within the bounds).

        Stripe takes KWD amounts ending in 0 only, PayPal whole HUF: the kit then sends only
        amounts the provider holds, and checks that the others are refused before sending.
        """
        return None

    @pytest.fixture
    def example_amount(
        self, supported_currencies: frozenset[str] | None, amount_bounds: Bounds,
        amount_representable: Representable | None,
    ) -> Money:
        """The amount of the kit's example-based tests: about 10000 minor units of EUR, USD or
        another supported currency (large enough to split into partial operations)."""
        choices = sorted(supported_currencies) if supported_currencies is not None else ["EUR"]
        currency = next((code for code in ("EUR", "USD") if code in choices), choices[0])
        low, high = amount_bounds(currency)
        amount = representable_at_most(max(low, min(high, 10_000)), currency, amount_representable, low)
        if amount is None:
            raise _required("example_amount", f"no amount near 10000 minor units of {currency} is representable")
        return amount

    @pytest.fixture
    def expected_states(self) -> ExpectedStates:
        """The `ProviderState`s fetch may report for a modelled payment (override for nuances)."""
        return expected_states

    @pytest.fixture
    def webhook_kinds(self) -> Collection[str]:
        """The `EventKind`s `webhook_body` can render."""
        return WEBHOOK_KINDS

    @pytest.fixture
    def genuine_webhook_body(
        self, webhook_body: Callable[[WebhookPayload], bytes], webhook_kinds: Collection[str], example_amount: Money
    ) -> bytes:
        """One genuine event body, the one the kit tampers with."""
        return webhook_body(WebhookPayload(id="evt_contract0001", kind=sorted(webhook_kinds)[0],
                                           reference="pay_contract0001", amount=example_amount))

    @pytest.fixture
    def webhook_scheme(self) -> WebhookScheme:
        """What the webhook signature binds (see `WebhookScheme`): by default every byte of the
        raw body, with a signed timestamp, in the headers the signer sets."""
        return WebhookScheme()

    @pytest.fixture
    def webhook_tamper_points(self, webhook_signer: WebhookSigner, webhook_scheme: WebhookScheme) -> Collection[str]:
        """Header names that carry the signature: `webhook_scheme.headers`, or every header the
        signer sets but Content-Type."""
        if webhook_scheme.headers is not None:
            return sorted(webhook_scheme.headers)
        headers, _ = sign_webhook(webhook_signer, b"{}")
        return sorted(name for name in headers if name.lower() != "content-type")

    @pytest.fixture
    def stale_webhook_age(self) -> int:
        """Seconds after which a signed webhook is refused as a replay."""
        return 24 * 3600

    @pytest.fixture
    def extra_secret_values(self) -> Collection[str]:
        """Secrets besides the credentials that must never show (issued tokens, webhook ids)."""
        return ()

    @pytest.fixture
    def secret_values(self, method_config: MethodConfig, extra_secret_values: Collection[str]) -> SecretValues:
        """Every secret value searched for in reprs, logs and errors (its repr shows none)."""
        return SecretValues({secret.reveal() for secret in method_config.credentials.values()} | set(extra_secret_values))

    # -- the kit's own --------------------------------------------------------------------------
    @pytest.fixture
    def transfer_recorder(self) -> TransferRecorder:
        return TransferRecorder()

    @pytest.fixture
    def leak_watch(self) -> Iterator[LeakWatch]:
        watch = LeakWatch()
        with watch.watching():
            yield watch

    @pytest.fixture
    def gateway_factory(
        self, gateway_plugin: object, method_config: MethodConfig, transfer_recorder: TransferRecorder
    ) -> Iterator[GatewayFactory]:
        """Builds the plugin's gateway against the emulator; keyword arguments vary one gateway."""
        factory = GatewayFactory(gateway_plugin, method_config, transfer_recorder)
        yield factory
        factory.close()

    @pytest.fixture
    def harness(
        self,
        gateway_factory: GatewayFactory,
        emulator: EmulatorControls,
        leak_watch: LeakWatch,
        payment_source: str,
        approve_buyer_action: ApproveBuyerAction,
    ) -> ContractHarness:
        return ContractHarness(
            factory=gateway_factory,
            emulator=emulator,
            leaks=leak_watch,
            payment_source=payment_source,
            approve_buyer_action=approve_buyer_action,
        )

    @pytest.fixture(autouse=True)
    def _paywire_contract_guard(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """Skips a test whose capability is not declared; afterwards clears faults and looks for leaks."""
        harness: ContractHarness = request.getfixturevalue("harness")
        marker = request.node.get_closest_marker("paywire_capability")
        if marker is not None:
            declared: Capabilities = request.getfixturevalue("capabilities")
            for name in marker.args:
                if not getattr(declared, name):
                    pytest.skip(f"{harness.provider} does not declare the {name!r} capability (Capabilities.{name})")
        watch: LeakWatch = request.getfixturevalue("leak_watch")
        secrets: SecretValues = request.getfixturevalue("secret_values")
        try:
            yield
        finally:
            harness.emulator.clear_faults()
        findings = watch.leaks(secrets)
        if findings:
            pytest.fail("secrets showed while the test ran:\n" + "\n".join(findings), pytrace=False)
