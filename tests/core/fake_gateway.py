"""An in-process gateway definition over the echo server, for configuration and hook tests."""

from __future__ import annotations

from typing import Any

from paywire import (
    JSON,
    BearerAuth,
    Capabilities,
    CommandPool,
    ErrorMapper,
    EventKind,
    GatewayCommand,
    GatewayDefinition,
    GatewaySettings,
    HandlerChain,
    TransferFactory,
    ValidatorComposite,
    WebhookEvent,
    WebhookVerificationError,
    hookimpl,
)
from tests.core.pipeline import answered_ok


def build(settings: GatewaySettings) -> CommandPool:
    command = GatewayCommand(
        builder=[lambda s: {"amount": s.amount.minor if s.amount else None, "source": s.source}],
        transfer_factory=TransferFactory(settings.base_url, "POST", "/charges", auth=BearerAuth(settings.secret("api_key")),
                                         converter=JSON, idempotency_header="Idempotency-Key", timeout=settings.timeout),
        validator=ValidatorComposite([answered_ok]),
        error_mapper=ErrorMapper(settings.provider),
        handler=HandlerChain([lambda s, r: {"reference": "ch_1", "raw": r.data}]),
    )
    return CommandPool({"sale": command}, gateway=settings.gateway)


def verifier(settings: GatewaySettings) -> Any:
    secret = settings.secret("webhook_secret").reveal()

    def verify(headers: Any, body: bytes) -> WebhookEvent:
        if headers.get("x-secret") != secret:
            raise WebhookVerificationError("bad secret", provider=settings.provider)
        return WebhookEvent(provider=settings.provider, id="evt_1", type="charge", kind=EventKind.CAPTURED)

    return verify


FAKE = GatewayDefinition(
    code="fake", title="Fake Pay", build=build, capabilities=Capabilities(void=False, webhooks=True),
    currencies={"EUR", "USD", "JPY"}, endpoints={"live": "https://api.fake.example"}, secrets=("api_key",),
    webhook=verifier,
)


class FakePlugin:
    @hookimpl
    def register_gateways(self, register: Any) -> None:
        register(FAKE)
