"""Webhooks: genuine signed events verify and parse; any tampering, a wrong secret, a stale or
far-future timestamp or a malformed signature header is refused with `WebhookVerificationError`,
whose error never tells the signature the verifier expected; and the events the emulator itself sends about real operations parse to what those operations
returned and `fetch` reports (see `webhook_deliveries`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire.errors import WebhookVerificationError
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.testing.contract.fixtures import ContractFixtures, WebhookSigner, sign_webhook
from paywire.testing.contract.model import CaptureModel, PaymentModel
from paywire.testing.contract.webhook_deliveries import (
    AMOUNT_KINDS,
    EmulatorWebhooks,
    PaymentIds,
    event_problems,
    receiving,
)
from paywire.testing.contract.webhook_scheme import WebhookScheme
from paywire.testing.controls import EmulatorControls
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.leaks import error_texts
from paywire.testing.profiles import run_property
from paywire.testing.strategies import (
    Bounds,
    Representable,
    WebhookPayload,
    representable_at_most,
    webhook_payloads,
)
from paywire.webhook import EventKind, WebhookEvent

__all__ = ["WebhookContract", "byte_tampers", "malformed_values", "text_tampers"]

capability = pytest.mark.paywire_capability

_FUTURE = 30 * 24 * 3600  # seconds ahead of now a signed time is refused at
_TOLD = 16  # characters of a signature that, shown, count as telling it (a chance match is far shorter)

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


def _unshared(genuine: str, forged: str) -> str | None:
    """The part of `genuine` that differs from `forged` (common start and end dropped), when long
    enough to be a signature; None otherwise."""
    start = 0
    while start < min(len(genuine), len(forged)) and genuine[start] == forged[start]:
        start += 1
    end = 0
    while end < min(len(genuine), len(forged)) - start and genuine[-1 - end] == forged[-1 - end]:
        end += 1
    part = genuine[start:len(genuine) - end]
    return part if len(part) >= _TOLD else None


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
        example_amount: Money,
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
                assert event.kind == payload.kind, (
                    f"event kind {event.kind!r}, sent {payload.kind!r} (if the provider sends no {payload.kind!r} "
                    "events, leave the kind out of the webhook_kinds fixture)")
                named = {event.reference, *event.references.values()}
                assert payload.reference in named, f"event names {sorted(filter(None, named))}, not {payload.reference!r}"
                assert event.amount is None or event.amount == payload.amount, (
                    f"event amount {event.amount!r}, sent {payload.amount!r}"
                )
                if webhook_scheme.amounts and payload.kind in AMOUNT_KINDS:
                    # An event that moves money and says not how much leaves the ledger guessing.
                    reported = event.amount if event.amount is not None else event.total
                    assert reported == payload.amount, (
                        f"a {payload.kind} event of {payload.amount!r} parsed with amount {event.amount!r} and "
                        f"total {event.total!r} (WebhookScheme.amounts: the provider's money events say how much)")
                if webhook_scheme.amounts and payload.kind in (EventKind.REFUND_PENDING, EventKind.CAPTURE_PENDING):
                    # The ledger holds what an operation made beside it takes, in flight, by this amount.
                    assert event.amount == payload.amount, (
                        f"a {payload.kind} event of {payload.amount!r} parsed with amount {event.amount!r} "
                        "(WebhookScheme.amounts: the provider's capture and refund events say how much)")
                assert event.provider == harness.provider

        for kind in sorted(webhook_kinds):  # each kind at least once, whatever the examples draw
            parses(WebhookPayload(id=f"evt_contract_{kind}", kind=kind, reference="pay_contract0001",
                                  amount=example_amount))
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
    def test_a_refusal_never_tells_the_signature_it_expected(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
    ) -> None:
        """A delivery signed with another secret is refused without showing what its signature
        should have been (`expected 5f3a..., got ...`): an error or log line carrying it signs
        whatever body the sender tries next. The genuine delivery of the same body at the same
        time is never sent; any run of its signature in the refusal was computed by the verifier."""
        at = int(time.time())
        genuine = sign_webhook(webhook_signer, genuine_webhook_body, timestamp=at)
        forged = sign_webhook(webhook_signer, genuine_webhook_body, timestamp=at, forged=True)
        try:
            event = harness.parse_webhook(*forged)
        except WebhookVerificationError as refusal:
            texts = error_texts(refusal)
        else:
            pytest.fail(f"a webhook signed with another secret was accepted as {event.type} {event.id}")
        expected = [part for name, value in genuine[0].items()
                    if (part := _unshared(value, forged[0].get(name, ""))) is not None]
        body = _unshared(genuine[1].decode("latin-1"), forged[1].decode("latin-1"))
        expected += [body] if body is not None else []
        told = sorted({where for where, text in texts for part in expected
                       if any(part[start:start + _TOLD] in text for start in range(len(part) - _TOLD + 1))})
        assert not told, (f"the refusal of a forged webhook shows the signature the verifier expected, in "
                          f"{', '.join(told)}: with it anyone can sign any body")

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
    def test_a_timestamp_in_the_future_is_refused(
        self,
        harness: ContractHarness,
        webhook_signer: WebhookSigner,
        genuine_webhook_body: bytes,
        webhook_scheme: WebhookScheme,
    ) -> None:
        """A signed time 30 days ahead is refused: a tolerance applied one way only lets a body
        signed (or captured) with a future time be replayed until that time has passed."""
        if not webhook_scheme.timestamp:
            pytest.skip(f"{harness.provider}'s webhooks sign no time (WebhookScheme.timestamp is False)")
        ahead = int(time.time()) + _FUTURE
        why = self._refused(harness, *sign_webhook(webhook_signer, genuine_webhook_body, timestamp=ahead))
        assert why is None, f"a webhook signed {_FUTURE // 86400} days in the future was {why}"

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

    # -- the emulator's own events ----------------------------------------------------------------
    @pytest.fixture
    def emulator_webhooks(self, emulator: EmulatorControls) -> Iterator[EmulatorWebhooks | None]:
        """The webhooks the emulator sends while a test runs: an `EmulatorApp` (every emulator
        built on paywire's base) sends them to a loopback receiver of the kit. None skips the
        checks of the emulator's own events; override it for an emulator in another process."""
        yield from receiving(emulator)

    @capability("webhooks")
    def test_the_emulators_own_events_agree_with_the_operations_and_fetch(
        self,
        harness: ContractHarness,
        emulator_webhooks: EmulatorWebhooks | None,
        example_amount: Money,
        amount_representable: Representable | None,
        capabilities: Capabilities,
        webhook_scheme: WebhookScheme,
    ) -> None:
        """Random sequences of authorize or sale, partial and final captures, refunds and voids;
        after each step every event the emulator sent is parsed with the plugin's verifier and held
        to what the operations returned and to `fetch` (see `event_problems`): the ids it names are
        the ones the results gave, its amount the operation's, its running total never above what
        the provider holds, its currency the payment's, and no kind the step cannot have caused."""
        webhooks = _deliveries(emulator_webhooks, harness)
        commands = sorted(name for name in ("capture", "refund", "void")
                          if getattr(capabilities, name) and name in harness.commands)
        can_sell = capabilities.sale and "sale" in harness.commands
        can_authorize = capabilities.authorize and "authorize" in harness.commands
        steps = st.lists(st.tuples(st.sampled_from(commands), st.integers(1, 1000), st.booleans()), max_size=4) \
            if commands else st.just([])
        sales = st.sampled_from([flag for flag, able in ((False, can_authorize), (True, can_sell)) if able])

        kinds: set[str] = set()

        def run(sale: bool, plan: list[tuple[str, int, bool]]) -> None:
            watch = _EventWatch(harness, webhooks, webhook_scheme)
            result = harness.authorize(example_amount, sale=sale)
            assert result.succeeded and result.reference, f"{'sale' if sale else 'authorize'} gave {result!r}"
            ids = PaymentIds(example_amount.currency)
            ids.started(result, sale=sale, amount=example_amount)
            payment = PaymentModel(result.reference, payment_reference(result), example_amount.currency,
                                   example_amount.minor)
            if sale:
                payment.capture(result.reference, example_amount.minor, final=True)
            watch.step("sale" if sale else "authorize", ids, payment.payment,
                       forbidden=() if sale else _NOTHING_TAKEN)
            for command, portion, more in plan:
                done = _operate(harness, payment, ids, capabilities, amount_representable, command, portion, more)
                if done:
                    watch.step(done, ids, payment.payment, forbidden=_FORBIDDEN[command])
            kinds.update(event.kind for event in watch.events)
            problems = watch.problems
            assert not problems, (f"{len(problems)} problems in the emulator's own webhooks, as the plugin "
                                  "reads them:\n" + "\n".join(problems[:10]))

        run_property(given(sales, steps)(run), max_examples=10)
        if not kinds & {EventKind.CAPTURED, EventKind.REFUNDED}:
            pytest.skip(f"{harness.provider}'s emulator sent no captured or refunded event the plugin reads "
                        f"(only {sorted(kinds) or 'none'}): nothing was checked")

    @capability("webhooks")
    @pytest.mark.parametrize("succeed", [True, False], ids=["decided-paid", "decided-refused"])
    def test_the_emulators_events_about_a_payment_decided_later_say_what_was_decided(
        self,
        harness: ContractHarness,
        emulator_webhooks: EmulatorWebhooks | None,
        capabilities: Capabilities,
        accepted_amount: Money,
        accepted_source: str | None,
        settle_accepted: Callable[[str, bool], object] | None,
        webhook_scheme: WebhookScheme,
        succeed: bool,
    ) -> None:
        """A payment the provider decides later (the sandbox's "accepted" source), decided either
        way with `settle`: the events sent are held to the results and `fetch` as above, and once
        the provider refused it no event may say it was captured, authorized or refunded (a failed
        payment read as captured is money the ledger counts and the provider never took)."""
        webhooks = _deliveries(emulator_webhooks, harness)
        if accepted_source is None or settle_accepted is None:
            pytest.skip("the sandbox declares no 'accepted' source or no settle control: every payment is "
                        "decided at once")
        watch = _EventWatch(harness, webhooks, webhook_scheme)
        ids = PaymentIds(accepted_amount.currency)
        sale = capabilities.sale and "sale" in harness.commands
        started = harness.authorize(accepted_amount, sale=sale, source=accepted_source)
        ids.started(started, sale=False, amount=accepted_amount)
        taken = started if sale else harness.execute("capture", harness.follow_up(started.reference, accepted_amount))
        assert taken.accepted and taken.reference, f"the 'accepted' source's payment gave {taken!r}"
        # The capture the provider holds undecided (a sale's own): a capture_pending event names it.
        ids.started(taken, sale=sale, amount=accepted_amount)
        if not sale:
            ids.operation("capture", taken, accepted_amount)
        payment = payment_reference(started)
        watch.step("the accepted payment", ids, payment,
                   forbidden=(EventKind.CAPTURED, EventKind.REFUNDED, EventKind.REFUND_PENDING))
        settle_accepted(taken.reference, succeed)
        if succeed and sale:
            ids.operation("capture", taken, accepted_amount)
        watch.step(f"the provider {'took' if succeed else 'refused'} it", ids, payment,
                   forbidden=() if succeed else (EventKind.CAPTURED, EventKind.AUTHORIZED, EventKind.REFUNDED,
                                                 EventKind.REFUND_PENDING, EventKind.CAPTURE_PENDING))
        problems = watch.problems
        assert not problems, (f"{len(problems)} problems in the emulator's own webhooks, as the plugin reads "
                              "them:\n" + "\n".join(problems[:10]))


# Kinds no authorization (nor a void) causes: nothing was captured or refunded, nor is being.
_NOTHING_TAKEN: Final = (EventKind.CAPTURED, EventKind.CAPTURE_PENDING, EventKind.REFUNDED, EventKind.REFUND_PENDING)
_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "capture": (EventKind.REFUNDED, EventKind.REFUND_PENDING, EventKind.VOIDED),
    "refund": (EventKind.CAPTURED, EventKind.CAPTURE_PENDING, EventKind.VOIDED, EventKind.AUTHORIZED),
    "void": _NOTHING_TAKEN,
}


def _deliveries(webhooks: EmulatorWebhooks | None, harness: ContractHarness) -> EmulatorWebhooks:
    if webhooks is None:
        pytest.skip(f"the kit cannot receive {harness.provider}'s emulator's webhooks (it has no webhook_url and "
                    "wait_for_webhooks): override the emulator_webhooks fixture")
    return webhooks


class _EventWatch:
    """Parses the emulator's deliveries after each step and collects what is wrong with them."""

    def __init__(self, harness: ContractHarness, webhooks: EmulatorWebhooks, scheme: WebhookScheme) -> None:
        assert webhooks.wait(), "the emulator's earlier webhooks were not all delivered within 10 s"
        self.harness, self.webhooks, self.scheme = harness, webhooks, scheme
        self.seen = len(webhooks.deliveries)
        self.problems: list[str] = []
        self.events: list[WebhookEvent] = []

    def step(self, what: str, ids: PaymentIds, payment: str, *, forbidden: Sequence[str] = ()) -> None:
        assert self.webhooks.wait(), f"the emulator's webhooks after {what} were not all delivered within 10 s"
        fresh = self.webhooks.deliveries[self.seen:]
        self.seen += len(fresh)
        if not fresh:
            return
        fetched = self.harness.fetch(payment)
        for delivery in fresh:
            try:
                batch = self.harness.gateway.parse_notification(self.harness.method_code, delivery.headers,
                                                                delivery.body)
            except WebhookVerificationError as error:
                self.harness.leaks.note_error(error)
                self.problems.append(f"after {what}: the emulator's own webhook was refused: {error}")
                continue
            for event in batch.events:
                self.harness.leaks.note_repr("a webhook event", event)
                self.events.append(event)
                self.problems += [f"after {what}: {problem}" for problem in event_problems(
                    event, ids, fetched, forbidden=forbidden, amounts=self.scheme.amounts)]


def _operate(harness: ContractHarness, payment: PaymentModel, ids: PaymentIds, capabilities: Capabilities,
             representable: Representable | None, command: str, portion: int, more: bool) -> str | None:
    """One possible operation on the payment, modelled; what was done, or None when it cannot be."""
    def part(available: int, allowed: bool) -> Money | None:
        minor = max(1, available * portion // 1000) if allowed else available
        return representable_at_most(minor, payment.currency, representable)

    if command == "capture" and payment.capturable:
        amount = part(payment.capturable, capabilities.capture_partial)
        if amount is None:
            return None
        final = not (capabilities.capture_multiple and more and amount.minor < payment.capturable)
        result = harness.execute("capture", harness.follow_up(payment.reference, amount, final=final))
        payment.capture(result.reference or payment.reference, amount.minor, final=final)
        ids.operation("capture", result, amount)
        return f"a capture of {amount}{' (final)' if final else ''}"
    if command == "refund":
        refundable = [capture for capture in payment.captures
                      if capture.refundable and (capabilities.refund_multiple or not capture.refunded)]
        if not refundable:
            return None
        capture: CaptureModel = refundable[portion % len(refundable)]
        amount = part(capture.refundable, capabilities.refund_partial)
        if amount is None:
            return None
        result = harness.execute("refund", harness.follow_up(capture.reference, amount))
        payment.refund(capture, amount.minor)
        ids.operation("refund", result, amount)
        return f"a refund of {amount}"
    if command == "void" and payment.voidable:
        harness.execute("void", harness.follow_up(payment.reference))
        payment.voided = True
        return "a void"
    return None
