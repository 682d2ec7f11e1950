"""Webhooks: genuine signed events verify and parse; any tampering, a wrong secret, a stale
timestamp or a malformed signature header is refused with `WebhookVerificationError`."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

import pytest
from hypothesis import given

from paywire.errors import WebhookVerificationError
from paywire.testing.contract.fixtures import ContractFixtures, WebhookSigner, sign_webhook
from paywire.testing.contract.webhook_scheme import WebhookScheme
from paywire.testing.harness import ContractHarness
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Bounds, Representable, WebhookPayload, webhook_payloads
from paywire.webhook import WebhookEvent

__all__ = ["WebhookContract", "byte_tampers", "malformed_values", "text_tampers"]

capability = pytest.mark.paywire_capability

# Replacement bytes tried at every position: a flipped low bit, a flipped high bit, and the
# characters a lenient parser ignores or re-reads (whitespace, a quote, a digit).
_REPLACEMENTS = (b" ", b"\t", b"\n", b'"', b"0")


def byte_tampers(body: bytes, indices: Iterable[int] | None = None) -> Iterator[tuple[str, bytes]]:
    """Every single-byte change of `body` (at `indices`, or everywhere): each byte replaced,
    deleted, or preceded by another; and, for the whole body, a byte appended."""
    for index in range(len(body)) if indices is None else indices:
        byte = body[index]
        for replacement in {bytes([byte ^ 0x01]), bytes([byte ^ 0x80]), *_REPLACEMENTS} - {bytes([byte])}:
            yield f"byte {index} {bytes([byte])!r} -> {replacement!r}", body[:index] + replacement + body[index + 1:]
        yield f"byte {index} {bytes([byte])!r} deleted", body[:index] + body[index + 1:]
        yield f"{bytes([byte ^ 0x01])!r} inserted before byte {index}", body[:index] + bytes([byte ^ 0x01]) + body[index:]
    if indices is None:
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

    def _unsigned_change(self, harness: ContractHarness, headers: Mapping[str, str], body: bytes,
                         genuine: WebhookEvent) -> str | None:
        """None when a change outside what is signed is refused or leaves the event as it was."""
        try:
            event = harness.parse_webhook(headers, body)
        except WebhookVerificationError:
            return None
        except Exception as crash:  # noqa: BLE001 - anything else is a broken refusal
            return f"crashed with {type(crash).__name__}: {crash}"
        seen = (event.id, event.kind, event.reference, dict(event.references), event.amount, event.total)
        if seen != (genuine.id, genuine.kind, genuine.reference, dict(genuine.references), genuine.amount, genuine.total):
            return f"accepted, and the event changed to {event!r}: the verifier reads a field the signature does not bind"
        return None

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
        webhook_scheme: WebhookScheme,
    ) -> None:
        def parses(payload: WebhookPayload) -> None:
            headers, body = sign_webhook(webhook_signer, webhook_body(payload))
            for sent in (headers, {name.upper(): value for name, value in headers.items()}):
                event = harness.parse_webhook(sent, body)
                if webhook_scheme.event_ids:
                    assert event.id == payload.id, f"event id {event.id!r}, sent {payload.id!r}"
                else:  # derived by the plugin: the same delivery is the same event
                    assert event.id and event.id == harness.parse_webhook(sent, body).id, (
                        f"event id {event.id!r} is empty or differs between two parses of one delivery")
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
        webhook_scheme: WebhookScheme,
    ) -> None:
        """Every change of what the scheme signs is refused (each byte of the body, or of the
        signed spans, and each character of the signature headers); a change of anything else is
        refused or leaves the parsed event as it was."""
        headers, body = sign_webhook(webhook_signer, genuine_webhook_body)
        genuine = harness.parse_webhook(headers, body)
        if webhook_scheme.signed_spans is None:
            accepted = [f"body {label}: {why}" for label, tampered in byte_tampers(body)
                        if (why := self._refused(harness, headers, tampered))]
        else:
            spans = webhook_scheme.signed_spans(body)
            assert spans, "WebhookScheme.signed_spans found nothing signed in the genuine body"
            signed = sorted({index for _, start, end in spans for index in range(start, end)})
            accepted = [f"signed body {label}: {why}" for label, tampered in byte_tampers(body, signed)
                        if (why := self._refused(harness, headers, tampered))]
            unsigned = [index for index in range(len(body)) if index not in set(signed)]
            accepted += [f"unsigned body {label}: {why}" for label, tampered in byte_tampers(body, unsigned)
                         if (why := self._unsigned_change(harness, headers, tampered, genuine))]
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
        why = self._refused(harness, *sign_webhook(webhook_signer, genuine_webhook_body, forged=True))
        assert why is None, f"a webhook signed with another secret was {why}"

    @capability("webhooks")
    def test_a_stale_timestamp_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        stale_webhook_age: int,
        webhook_scheme: WebhookScheme,
    ) -> None:
        if not webhook_scheme.timestamp:
            pytest.skip(f"{harness.provider}'s webhooks sign no time (WebhookScheme.timestamp is False): "
                        "nothing can be stale, and a replay is a duplicate event id")
        stale = int(time.time()) - stale_webhook_age
        why = self._refused(harness, *sign_webhook(webhook_signer, genuine_webhook_body, timestamp=stale))
        assert why is None, f"a webhook signed {stale_webhook_age}s ago was {why}"

    @capability("webhooks")
    def test_a_missing_or_malformed_signature_header_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        webhook_tamper_points: Collection[str],
    ) -> None:
        headers, body = sign_webhook(webhook_signer, genuine_webhook_body)
        problems = []
        for name in webhook_tamper_points:
            without = {key: value for key, value in headers.items() if key != name}
            if why := self._refused(harness, without, body):
                problems.append(f"without {name}: {why}")
            problems.extend(f"{name} {label}: {why}" for label, malformed in malformed_values(headers[name])
                            if (why := self._refused(harness, {**headers, name: malformed}, body)))
        if webhook_tamper_points and (why := self._refused(harness, {}, body)):
            problems.append(f"without any header: {why}")
        assert not problems, "webhooks with missing or malformed signature headers were not refused:\n" + "\n".join(problems)
