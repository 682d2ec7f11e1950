"""Webhooks: genuine signed events verify and parse; any tampering, a wrong secret, a stale
timestamp or a malformed signature header is refused with `WebhookVerificationError`."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping

import pytest
from hypothesis import given

from paywire.errors import WebhookVerificationError
from paywire.testing.contract.fixtures import ContractFixtures, WebhookSigner
from paywire.testing.harness import ContractHarness
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Bounds, Representable, WebhookPayload, webhook_payloads

__all__ = ["WebhookContract", "byte_tampers", "malformed_values", "text_tampers"]

capability = pytest.mark.paywire_capability

# Replacement bytes tried at every position: a flipped low bit, a flipped high bit, and the
# characters a lenient parser ignores or re-reads (whitespace, a quote, a digit).
_REPLACEMENTS = (b" ", b"\t", b"\n", b'"', b"0")


def byte_tampers(body: bytes) -> Iterator[tuple[str, bytes]]:
    """Every single-byte change of `body`: each byte replaced, deleted, or preceded by another."""
    for index, byte in enumerate(body):
        for replacement in {bytes([byte ^ 0x01]), bytes([byte ^ 0x80]), *_REPLACEMENTS} - {bytes([byte])}:
            yield f"byte {index} {bytes([byte])!r} -> {replacement!r}", body[:index] + replacement + body[index + 1:]
        yield f"byte {index} {bytes([byte])!r} deleted", body[:index] + body[index + 1:]
        yield f"{bytes([byte ^ 0x01])!r} inserted before byte {index}", body[:index] + bytes([byte ^ 0x01]) + body[index:]
    yield "a byte appended", body + b" "


def text_tampers(value: str) -> Iterator[tuple[str, str]]:
    """Every single-character change of a header value: each character replaced or deleted."""
    for index, char in enumerate(value):
        for replacement in {chr(ord(char) ^ 0x01), "0" if char != "0" else "1"}:
            yield f"character {index} changed", value[:index] + replacement + value[index + 1:]
        yield f"character {index} deleted", value[:index] + value[index + 1:]


def malformed_values(value: str) -> Iterator[tuple[str, str]]:
    """Header values no genuine webhook carries."""
    yield from (("empty", ""), ("garbage", "not-a-signature"), ("non-ASCII", "sïgnature"),
                ("doubled", f"{value},{value}"), ("padded", f" {value}x"), ("oversized", "A" * 8192))


class WebhookContract(ContractFixtures):
    """Requires `webhook_signer` and `webhook_body` when the plugin declares `webhooks`."""

    def _refused(self, harness: ContractHarness, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when refused with `WebhookVerificationError`, else what happened instead."""
        try:
            event = harness.parse_webhook(headers, body)
        except WebhookVerificationError:
            return None
        except Exception as crash:  # noqa: BLE001 - anything else is a broken refusal
            return f"crashed with {type(crash).__name__}: {crash}"
        return f"accepted as {event.type} {event.id}"

    @capability("webhooks")
    def test_genuine_signed_events_verify_and_parse(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        webhook_body: Callable[[WebhookPayload], bytes],
        webhook_kinds: Collection[str],
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
        amount_representable: Representable | None,
    ) -> None:
        def parses(payload: WebhookPayload) -> None:
            body = webhook_body(payload)
            headers = dict(webhook_signer(body))
            for sent in (headers, {name.upper(): value for name, value in headers.items()}):
                event = harness.parse_webhook(sent, body)
                assert event.id == payload.id, f"event id {event.id!r}, sent {payload.id!r}"
                assert event.kind == payload.kind, f"event kind {event.kind!r}, sent {payload.kind!r}"
                named = {event.reference, *event.references.values()}
                assert payload.reference in named, f"event names {sorted(filter(None, named))}, not {payload.reference!r}"
                assert event.amount is None or event.amount == payload.amount, (
                    f"event amount {event.amount!r}, sent {payload.amount!r}"
                )
                assert event.provider == harness.provider

        payloads = webhook_payloads(kinds=webhook_kinds, currency=supported_currencies, bounds=amount_bounds,
                                    representable=amount_representable)
        run_property(given(payloads)(parses))

    @capability("webhooks")
    def test_every_single_byte_tamper_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        webhook_tamper_points: Collection[str],
    ) -> None:
        body = genuine_webhook_body
        headers = dict(webhook_signer(body))
        harness.parse_webhook(headers, body)
        accepted = [f"body {label}: {why}" for label, tampered in byte_tampers(body)
                    if (why := self._refused(harness, headers, tampered))]
        for name in webhook_tamper_points:
            value = headers[name]
            accepted.extend(f"header {name} {label}: {why}" for label, tampered in text_tampers(value)
                            if (why := self._refused(harness, {**headers, name: tampered}, body)))
        assert not accepted, f"{len(accepted)} tampered webhooks were not refused, e.g.:\n" + "\n".join(accepted[:10])

    @capability("webhooks")
    def test_a_wrong_secret_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
    ) -> None:
        body = genuine_webhook_body
        why = self._refused(harness, webhook_signer(body, forged=True), body)
        assert why is None, f"a webhook signed with another secret was {why}"

    @capability("webhooks")
    def test_a_stale_timestamp_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        stale_webhook_age: int,
    ) -> None:
        body = genuine_webhook_body
        why = self._refused(harness, webhook_signer(body, timestamp=int(time.time()) - stale_webhook_age), body)
        assert why is None, f"a webhook signed {stale_webhook_age}s ago was {why}"

    @capability("webhooks")
    def test_a_missing_or_malformed_signature_header_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        webhook_tamper_points: Collection[str],
    ) -> None:
        body = genuine_webhook_body
        headers = dict(webhook_signer(body))
        problems = []
        for name in webhook_tamper_points:
            without = {key: value for key, value in headers.items() if key != name}
            if why := self._refused(harness, without, body):
                problems.append(f"without {name}: {why}")
            problems.extend(f"{name} {label}: {why}" for label, malformed in malformed_values(headers[name])
                            if (why := self._refused(harness, {**headers, name: malformed}, body)))
        if why := self._refused(harness, {}, body):
            problems.append(f"without any header: {why}")
        assert not problems, "webhooks with missing or malformed signature headers were not refused:\n" + "\n".join(problems)
