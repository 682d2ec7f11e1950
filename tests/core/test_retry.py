"""The retry policy: what is retried depends on whether the provider may have seen the request."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, ProviderUnavailable, RateLimited, Response, Retry, Subject, Transfer
from paywire.errors import PaywireError, TransportError
from paywire.testing.emulator import Fault, Reply
from tests.core.pipeline import command, run

PAY = Money.of("10.00", "EUR")


class ScriptedClient:
    """A client whose sends fail as scripted: 'connect', 'read' (after sending), or an HTTP status."""

    def __init__(self, script: list[str | int]) -> None:
        self.script = list(script)
        self.delivered = 0  # sends that may have reached the provider

    def send(self, transfer: Transfer) -> Response:
        step = self.script.pop(0) if self.script else 200
        if step == "connect":
            raise TransportError("refused", may_have_been_sent=False)
        self.delivered += 1
        if step == "read":
            raise OutcomeUnknown("timed out")
        return Response(int(step), {}, b"{}")

    def close(self) -> None:
        pass


steps = st.lists(st.sampled_from(["connect", "read", 200, 500, 503, 429, 400]), max_size=6)


@given(steps, st.booleans(), st.booleans(), st.integers(0, 5))
def test_never_resends_a_non_idempotent_request_that_may_have_been_delivered(
    script: list[str | int], keyed: bool, header: bool, total: int
) -> None:
    """Only a key the provider reads (its idempotency header) makes a POST safe to send twice."""
    client = ScriptedClient(script)
    subject = Subject(amount=PAY, idempotency_key="k-1" if keyed else None)
    cmd = command("http://127.0.0.1:9", idempotency_header="Idempotency-Key" if header else None)
    try:
        run(cmd, subject, client=client, retry=Retry(total=total, backoff_factor=0))
    except PaywireError:
        pass
    if not (keyed and header):
        assert client.delivered <= 1
    sends = len(script) - len(client.script) if client.script or script else 1
    assert sends <= total + 1


@given(st.booleans(), st.booleans())
def test_retryable_error_predicate(idempotent: bool, may_have_been_sent: bool) -> None:
    transfer = Transfer("POST", "https://x.test/", idempotent=idempotent)
    error = TransportError("x", may_have_been_sent=may_have_been_sent)
    assert Retry().is_retryable_error(transfer, error) == (idempotent or not may_have_been_sent)


def test_connect_failures_are_retried_and_say_nothing_was_sent() -> None:
    with pytest.raises(TransportError) as caught:
        run(command("http://127.0.0.1:9"), Subject(amount=PAY), retry=Retry(total=2, backoff_factor=0))
    assert not caught.value.may_have_been_sent
    assert caught.value.details["attempts"] == 3
    assert type(caught.value.__cause__).__module__.startswith("urllib3"), caught.value.__cause__


def _chain(error: BaseException) -> list[BaseException]:
    """The exception and its causes, stopping (and failing) at the first repeat."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None:
        assert all(current is not earlier for earlier in seen), f"the chain loops back to {current!r}"
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def test_the_final_attempts_error_keeps_the_urllib3_cause_in_an_acyclic_chain(echo) -> None:
    app, url = echo
    app.inject(Fault("hold", times=3))  # no answer until released: each attempt's read times out
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            run(command(url, read_timeout=0.1), Subject(amount=PAY, idempotency_key="k-chain"),
                retry=Retry(total=2, backoff_factor=0))
    finally:
        assert app.release_held(30)
    chain = _chain(caught.value)
    assert chain[0] is caught.value and caught.value.details["attempts"] == 3
    assert any(type(e).__name__ == "ReadTimeoutError" and type(e).__module__.startswith("urllib3") for e in chain)


def test_5xx_is_retried_with_an_idempotency_key(echo, json_reply) -> None:
    app, url = echo
    app.replies = [json_reply(503, {"error": {"message": "busy"}})]
    result = run(command(url), Subject(amount=PAY, idempotency_key="k-5xx"))
    assert result.raw["headers"]["idempotency-key"] == "k-5xx"
    assert len(app.seen) == 2


def test_5xx_is_not_retried_without_a_key(echo, json_reply) -> None:
    app, url = echo
    app.replies = [json_reply(503, {"error": {"message": "busy"}})]
    with pytest.raises(ProviderUnavailable) as caught:
        run(command(url), Subject(amount=PAY))
    assert caught.value.retryable and len(app.seen) == 1


def test_a_read_timeout_without_a_key_is_an_unknown_outcome_sent_once(echo) -> None:
    app, url = echo
    app.inject(Fault("hold"))  # handled, then no answer until released: the read times out
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            run(command(url, read_timeout=0.2), Subject(amount=PAY))
    finally:
        assert app.release_held(30)
    assert caught.value.may_have_been_sent
    assert len(app.calls) == 1  # a retry (there must be none) would have been answered, and counted


def test_a_dropped_connection_with_a_key_is_retried(echo) -> None:
    app, url = echo
    app.inject(Fault("drop_after"))
    result = run(command(url), Subject(amount=PAY, idempotency_key="k-drop"))
    assert result.reference == "200"
    assert len(app.calls) == 2


def test_a_key_in_no_header_does_not_make_a_post_safe_to_resend(echo, json_reply) -> None:
    """The factory has no idempotency header, so the subject's key never reaches the provider: a
    resend after a dropped answer or a 5xx would be a second request, applied twice."""
    app, url = echo
    keyless = command(url, idempotency_header=None)
    app.inject(Fault("drop_after"))
    with pytest.raises(OutcomeUnknown) as dropped:
        run(keyless, Subject(amount=PAY, idempotency_key="k-nowhere-1"))
    assert dropped.value.may_have_been_sent and len(app.calls) == 1
    app.replies = [json_reply(500, {"error": {"message": "oops"}})]
    with pytest.raises(ProviderUnavailable) as failed:
        run(keyless, Subject(amount=PAY, idempotency_key="k-nowhere-2"))
    assert failed.value.may_have_been_sent and len(app.calls) == 2
    assert all("idempotency-key" not in {name.lower() for name in seen.headers} for seen in app.seen)


def test_a_repeatable_post_is_resent_after_a_dropped_answer_and_a_5xx(echo, json_reply) -> None:
    """An endpoint its factory declares safe to repeat (a token request, a verification) is
    retried like a read, with no key at all."""
    app, url = echo
    repeatable = command(url, idempotency_header=None, repeatable=True)
    app.inject(Fault("drop_after"))
    assert run(repeatable, Subject(amount=PAY)).reference == "200"
    assert len(app.calls) == 2
    app.replies = [json_reply(500, {"error": {"message": "oops"}})]
    assert run(repeatable, Subject(amount=PAY)).reference == "200"
    assert len(app.calls) == 4


def test_a_keyed_post_without_a_header_still_retries_a_connection_never_made() -> None:
    """Nothing was sent, so nothing can be applied twice: a connect failure is retried for any transfer."""
    client = ScriptedClient(["connect", "connect"])
    result = run(command("http://127.0.0.1:9", idempotency_header=None), Subject(amount=PAY, idempotency_key="k-c"),
                 client=client)
    assert result.reference == "200" and client.delivered == 1


def test_exhausted_retries_keep_the_last_answer(echo, json_reply) -> None:
    app, url = echo
    app.replies = [json_reply(429, {"error": {"message": "slow down"}}, **{"Retry-After": "0"})] * 3
    with pytest.raises(RateLimited) as caught:
        run(command(url), Subject(amount=PAY, idempotency_key="k-429"), retry=Retry(total=2, backoff_factor=0))
    assert caught.value.retry_after == 0 and caught.value.retryable
    assert len(app.seen) == 3


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("120", 10.0), (None, 0.0), ("garbage", 0.0)])
def test_backoff_honours_retry_after_up_to_the_cap(header: str | None, expected: float) -> None:
    response = Response(429, {"retry-after": header} if header else {})
    assert Retry(backoff_factor=0, backoff_max=10).backoff(response) == expected


@given(st.integers(0, 10), st.floats(0.01, 2), st.floats(1, 60))
def test_exponential_backoff_is_bounded(attempts: int, factor: float, cap: float) -> None:
    delay = Retry(backoff_factor=factor, backoff_max=cap, attempts=attempts).backoff()
    assert 0 <= delay <= cap


def test_increment_is_immutable_and_counts_by_kind() -> None:
    retry = Retry(total=5, connect=1)
    after = retry.increment(error=TransportError("x", may_have_been_sent=False))
    assert retry.attempts == 0 and after.connect_attempts == 1 and not after.is_exhausted()
    assert after.increment(error=TransportError("x", may_have_been_sent=False)).is_exhausted()
    assert Retry(total=0).increment(response=Response(500)).is_exhausted()


def test_reply_helper_builds_json() -> None:
    assert Reply.json(201, {"a": 1}).headers["Content-Type"] == "application/json"


def test_the_providers_retry_hint_overrides_the_status_rule(echo, json_reply) -> None:
    app, url = echo
    hinted = attrs.evolve(command(url), retry_hint=lambda r: {"true": True, "false": False}.get(r.header("x-retry", "")))
    app.replies = [json_reply(409, {"error": {"message": "in flight"}}, **{"X-Retry": "true"})]
    assert run(hinted, Subject(amount=PAY, idempotency_key="k-hint")).reference == "200"
    assert len(app.seen) == 2
    app.replies = [json_reply(503, {"error": {"message": "do not retry"}}, **{"X-Retry": "false"})]
    with pytest.raises(ProviderUnavailable):
        run(hinted, Subject(amount=PAY, idempotency_key="k-hint-2"))
    assert len(app.seen) == 3
    app.replies = [json_reply(409, {"error": {"message": "in flight"}}, **{"X-Retry": "true"})]
    with pytest.raises(PaywireError):
        run(hinted, Subject(amount=PAY))  # no key: never sent twice, whatever the hint
    assert len(app.seen) == 4
