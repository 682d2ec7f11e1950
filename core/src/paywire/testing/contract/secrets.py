"""No secret shows in a repr, a log record or an error, whatever path the plugin takes."""

from __future__ import annotations

import logging

import pytest

from paywire.errors import PaywireError
from paywire.gateway_definition import Capabilities
from paywire.http.retry import Retry
from paywire.money import Money
from paywire.testing.contract.fixtures import ContractFixtures, WebhookSigner, sign_webhook
from paywire.testing.emulator import Fault
from paywire.testing.harness import ContractHarness
from paywire.testing.leaks import LeakWatch, SecretValues

__all__ = ["SecretContract"]


class SecretContract(ContractFixtures):
    """Runs the paths where secrets tend to slip out, then searches everything they showed.

    Every other contract test is searched too (after it ran); this one makes sure the error paths
    are taken at least once, with DEBUG logging on.
    """

    def test_secrets_never_show_in_reprs_logs_or_errors(
        self,
        harness: ContractHarness,
        leak_watch: LeakWatch,
        secret_values: SecretValues,
        declined_source: str,
        capabilities: Capabilities,
        example_amount: Money,
        request: pytest.FixtureRequest,
    ) -> None:
        assert secret_values, "no secret to look for: put the credentials in method_config"
        harness.authorize(example_amount)
        harness.attempt("authorize", harness.payment_subject(example_amount, source=declined_source))
        for command in sorted({"capture", "refund", "void", "fetch"} & harness.commands):
            harness.attempt(command, harness.follow_up("contract_unknown_0002", example_amount))
        retrying = harness.factory(retry=Retry(total=1, backoff_factor=0))
        harness.emulator.inject(Fault(kind="status", status=503, times=2))
        harness.attempt("authorize", harness.payment_subject(example_amount), gateway=retrying)
        harness.emulator.inject(Fault(kind="drop_after"))
        harness.attempt("authorize", harness.payment_subject(example_amount))
        wrong = harness.factory(credentials={name: f"wrong-{name}-0000" for name in harness.factory.method.credentials})
        harness.attempt("authorize", harness.payment_subject(example_amount), gateway=wrong)
        logging.getLogger("paywire.contract").debug("gateway %r, method %r", harness.gateway, harness.method)
        if capabilities.webhooks:
            self._webhook_failures(harness, request)
        method = harness.method
        for what, value in (("the gateway", harness.gateway), ("the method", method),
                            ("the settings", method.settings), ("the method config", method.config),
                            ("the gateway definition", method.definition), ("the command pool", method.commands),
                            *((f"command {code}", command) for code, command in method.commands.items())):
            leak_watch.note_repr(what, value)
        for where, held in (("the settings", method.settings), ("the webhook verifier", method.webhook_verifier()),
                            *((f"command {code}", command) for code, command in method.commands.items())):
            leak_watch.note_parts(where, held)
        for record in harness.recorder.sent:
            leak_watch.note_repr(f"a {record.command} transfer", record.transfer)
        findings = leak_watch.leaks(secret_values)
        assert not findings, "secrets showed:\n" + "\n".join(findings)

    def _webhook_failures(self, harness: ContractHarness, request: pytest.FixtureRequest) -> None:
        signer: WebhookSigner = request.getfixturevalue("webhook_signer")
        body: bytes = request.getfixturevalue("genuine_webhook_body")
        genuine, signed = sign_webhook(signer, body)
        for headers, sent in (sign_webhook(signer, body, forged=True), (genuine, signed + b" "), ({}, signed)):
            try:
                harness.parse_webhook(headers, sent)
            except PaywireError:
                pass

