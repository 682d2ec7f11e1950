"""Every hook, exercised through the real pipeline; and the meta-tests that keep it that way."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from paywire import (
    Gateway,
    InvalidRequest,
    MethodConfig,
    Money,
    OutcomeUnknown,
    PaywireError,
    PluginError,
    Plugins,
    Response,
    Result,
    Subject,
    WebhookVerificationError,
    hookimpl,
    hookspecs,
)
from tests.core.fake_gateway import FakePlugin

SALE = Subject(amount=Money.of("7.00", "EUR"), source="tok_ok", idempotency_key="k-hooks")
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "paywire_spec"))


def gateway_with(url: str, *extra: object, secrets: bool = True) -> Gateway:
    plugins = Plugins()
    plugins.register(FakePlugin(), "fake")
    for index, plugin in enumerate(extra):
        plugins.register(plugin, f"extra{index}")
    credentials = {"api_key": "key-123456", "webhook_secret": "whsec-123456"} if secrets else {}
    return Gateway([MethodConfig(code="fake", base_url=url, credentials=credentials)], plugins=plugins)


def test_every_hook_is_documented_with_its_mode_and_an_example() -> None:
    assert HOOKS == ["build_request", "get_secret", "handle_response", "map_error", "parse_webhook",
                     "perform_command", "register_gateways", "send_transfer", "validate_response"]
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example" in doc, name
        assert ("Called for every plugin" in doc) or ("Stops at the first non-None result" in doc), name


def test_every_hook_has_a_test() -> None:
    sources = "\n".join(p.read_text() for p in Path(__file__).parents[1].rglob("test_*.py"))
    for name in HOOKS:
        assert f"def {name}(" in sources, f"no test implements the {name} hook"


def test_register_gateways_hook(echo) -> None:
    _, url = echo
    assert gateway_with(url).plugins.gateway("fake").title == "Fake Pay"


def test_build_request_hook_extends_and_conflicts_name_both(echo) -> None:
    _, url = echo

    class Tagger:
        @hookimpl
        def build_request(self, provider: str, command: str, subject: Subject) -> dict[str, Any]:
            return {"metadata": {"shop": "eu-1"}}

    result = gateway_with(url, Tagger()).execute("fake", "sale", SALE)
    assert '"metadata":{"shop":"eu-1"}' in result.raw["body"]

    class Clobber:
        @hookimpl
        def build_request(self) -> dict[str, Any]:
            return {"amount": 1}

    with pytest.raises(PluginError, match=r"fake sale builders.*extra0.*amount"):
        gateway_with(url, Clobber()).execute("fake", "sale", SALE)


def test_build_request_hook_output_is_checked_for_card_numbers(echo) -> None:
    app, url = echo

    class Leaky:
        @hookimpl
        def build_request(self) -> dict[str, Any]:
            return {"note": "4111111111111111"}

    with pytest.raises(InvalidRequest, match="raw card number"):
        gateway_with(url, Leaky()).execute("fake", "sale", SALE)
    assert app.seen == []


def test_send_transfer_hook_wraps_and_can_answer(echo) -> None:
    app, url = echo
    seen: list[str] = []

    class Recorder:
        @hookimpl(wrapper=True)
        def send_transfer(self, transfer: Any) -> Any:
            response = yield
            seen.append(f"{transfer.method} {response.status}")
            return response

    gateway_with(url, Recorder()).execute("fake", "sale", SALE)
    assert seen == ["POST 200"]

    class Canned:
        @hookimpl
        def send_transfer(self, transfer: Any) -> Response:
            return Response(200, {}, b'{"canned": true}')

    before = len(app.seen)
    assert gateway_with(url, Canned()).execute("fake", "sale", SALE).raw == {"canned": True}
    assert len(app.seen) == before


def test_perform_command_hook_wraps_the_whole_command_however_it_ends(echo) -> None:
    _, url = echo
    ended: list[str] = []

    class Outcomes:
        @hookimpl(wrapper=True)
        def perform_command(self, command: str, transfer: Any) -> Any:
            try:
                result = yield
            except Exception as error:
                ended.append(f"{command} {transfer.method}: {type(error).__name__}")
                raise
            ended.append(f"{command} {transfer.method}: {result.reference}")
            return result

    class Unreadable:
        """An observer that cannot read the answer: no hook after it runs, the command raises."""

        @hookimpl
        def handle_response(self) -> None:
            raise InvalidRequest("no amount in the answer")

    gateway_with(url, Outcomes()).execute("fake", "sale", SALE)
    with pytest.raises(OutcomeUnknown):
        gateway_with(url, Outcomes(), Unreadable()).execute("fake", "sale", SALE)
    assert ended == ["sale POST: ch_1", "sale POST: OutcomeUnknown"]


def test_validate_response_hook_adds_a_failure(echo) -> None:
    _, url = echo

    class FraudCheck:
        @hookimpl
        def validate_response(self, provider: str, response: Response) -> Result:
            return Result.failure("risk score too high", "fraud_suspected")

    with pytest.raises(PaywireError) as caught:
        gateway_with(url, FraudCheck()).execute("fake", "sale", SALE)
    assert caught.value.code == "fraud_suspected" and "risk score" in caught.value.message


def test_map_error_hook_overrides_the_providers_mapping(echo, json_reply) -> None:
    app, url = echo
    app.replies = [json_reply(402, {"error": {"message": "declined", "code": "card_declined"}})]

    class Wording:
        @hookimpl
        def map_error(self, error: PaywireError) -> PaywireError:
            error.customer_message = "Your bank said no."
            return error

    with pytest.raises(PaywireError) as caught:
        gateway_with(url, Wording()).execute("fake", "sale", SALE)
    assert caught.value.customer_message == "Your bank said no." and caught.value.code == "card_declined"


def test_handle_response_hook_observes_results(echo) -> None:
    _, url = echo
    observed: list[str | None] = []

    class Audit:
        @hookimpl
        def handle_response(self, command: str, result: Any) -> None:
            observed.append(f"{command}:{result.reference}")

    gateway_with(url, Audit()).execute("fake", "sale", SALE)
    assert observed == ["sale:ch_1"]


def test_parse_webhook_hook_default_and_override(echo) -> None:
    _, url = echo
    gateway = gateway_with(url)
    assert gateway.parse_webhook("fake", {"X-Secret": "whsec-123456"}, b"{}").id == "evt_1"
    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook("fake", {"X-Secret": "wrong"}, b"{}")
    with pytest.raises(WebhookVerificationError, match="limit"):
        gateway.parse_webhook("fake", {"X-Secret": "whsec-123456"}, b"x" * (1024 * 1024 + 1))

    class Strict:
        @hookimpl
        def parse_webhook(self, provider: str, headers: Any, body: bytes) -> Any:
            raise WebhookVerificationError("this shop accepts no webhooks", provider=provider)

    with pytest.raises(WebhookVerificationError, match="accepts no webhooks"):
        gateway_with(url, Strict()).parse_webhook("fake", {"X-Secret": "whsec-123456"}, b"{}")


def test_get_secret_hook_supplies_credentials(echo) -> None:
    _, url = echo

    class Vault:
        @hookimpl
        def get_secret(self, gateway: str, name: str) -> str | None:
            return f"vault-{gateway}-{name}" if name == "api_key" else None

    result = gateway_with(url, Vault(), secrets=False).execute("fake", "sale", SALE)
    assert result.raw["headers"]["authorization"] == "Bearer vault-fake-api_key"
