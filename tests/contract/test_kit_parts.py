"""The kit's parts: emulator controls, the leak watch, error cases."""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import CommandResult, Declined, IdempotencyConflict, Money, ProviderOperation, ProviderUnavailable
from paywire.testing.contract import ErrorCase, field_spans, retryable_meaning
from paywire.testing.contract.error_case import outcome_of
from paywire.testing.contract.model import PaymentModel, expected_states, totals_disagreement
from paywire.testing.controls import EmulatorControls, RemoteEmulator
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.leaks import LeakWatch, SecretValues
from paywire.testing.profiles import SHRINK_SECONDS, bounded_shrinking, run_property
from paywire_acme.emulator import AcmeEmulator


def test_every_emulator_built_on_the_base_offers_the_controls() -> None:
    assert isinstance(AcmeEmulator(), EmulatorControls)


def test_an_emulator_in_another_process_is_controlled_over_http() -> None:
    app = AcmeEmulator()
    with EmulatorServer(app) as server:
        remote = RemoteEmulator(server.url)
        assert isinstance(remote, EmulatorControls)
        remote.inject(Fault(kind="status", status=503, path="/v1/payments$"))
        assert app._take_fault("POST", "/v1/payments") is not None
        app.calls.append(("GET", "/v1/payments/pay_1"))
        assert remote.calls == [("GET", "/v1/payments/pay_1")]
        remote.inject(Fault(kind="latency", seconds=1.0))
        remote.clear_faults()
        assert app._take_fault("POST", "/v1/payments") is None


def test_a_secret_in_any_log_record_is_found_and_masked_in_the_report() -> None:
    watch = LeakWatch()
    with watch.watching():
        logging.getLogger("some.library").debug("calling %s", "https://x.example/?key=sk%2Fsecret%2Fvalue")
    findings = watch.leaks(["sk/secret/value"])
    assert len(findings) == 1 and "some.library" in findings[0]
    assert "sk/secret/value" not in findings[0] and "sk%2Fsecret%2Fvalue" not in findings[0]
    assert watch.leaks(["sk/secret/value"]) == [], "each finding is reported once"


def test_a_secret_chained_inside_an_error_is_found() -> None:
    watch = LeakWatch()
    try:
        try:
            raise KeyError("token tok_live_123456")
        except KeyError as inner:
            raise Declined("declined") from inner
    except Declined as error:
        watch.note_error(error)
    assert watch.leaks(["tok_live_123456"])


def test_a_secret_in_any_table_of_a_sqlite_file_is_found(tmp_path: Path) -> None:
    """A ledger is searched whole: every table, every column, and the bytes of the file."""
    import sqlite3

    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE kept (id INTEGER, summary TEXT, raw BLOB)")
        db.execute("INSERT INTO kept VALUES (1, ?, ?)", ('{"note": "plain"}', b"sk/secret/value"))
    db.close()
    watch = LeakWatch()
    watch.note_sqlite(path)
    findings = watch.leaks(["sk/secret/value"])
    assert any("kept table" in finding for finding in findings) and any("bytes of" in f for f in findings)
    assert not [finding for finding in findings if "sk/secret/value" in finding]


def test_secret_values_never_show_themselves() -> None:
    assert repr(SecretValues({"abc123456"})) == "SecretValues(1 values)"


def test_an_error_case_cannot_contradict_what_its_error_means() -> None:
    with pytest.raises(ValueError, match="never retryable"):
        ErrorCase(name="decline", status=402, body={}, error=Declined, retryable=True)
    assert ErrorCase(name="busy", status=409, body=b"", error=IdempotencyConflict, retryable=True).expected_retryable
    assert retryable_meaning(ProviderUnavailable) is True and retryable_meaning(IdempotencyConflict) is None


def test_an_error_case_outcome_is_held_to_what_its_class_allows() -> None:
    with pytest.raises(ValueError, match="always recorded failed"):
        ErrorCase(name="decline", status=402, body={}, error=Declined, outcome="unknown")
    assert ErrorCase(name="5xx", status=500, body={}, error=ProviderUnavailable).expected_outcome == "unknown"
    documented = ErrorCase(name="maintenance", status=503, body={}, error=ProviderUnavailable, outcome="failed")
    assert documented.expected_outcome == "failed"
    assert outcome_of(ProviderUnavailable("busy", may_have_been_sent=False)) == "failed"
    assert outcome_of(ProviderUnavailable("gateway timeout")) == "unknown"


def test_field_spans_find_json_members_and_form_pairs_by_name() -> None:
    body = b'{"id": "evt_1", "data": {"id": "pay_1", "amount": 1250, "note": "x"}}'
    assert [body[start:end] for _, start, end in field_spans(body, ["id", "amount"])] == [b"evt_1", b"pay_1", b"1250"]
    form = b"bt_signature=a%7Cb&bt_payload=PD94&other=1"
    assert [(label, form[start:end]) for label, start, end in field_spans(form, ["bt_payload"])] == [("bt_payload", b"PD94")]


def test_shrinking_is_bounded_inside_the_kit_and_restored_after() -> None:
    from hypothesis.internal.conjecture import engine

    before = engine.MAX_SHRINKING_SECONDS
    with bounded_shrinking(5):
        assert engine.MAX_SHRINKING_SECONDS == 5
    assert engine.MAX_SHRINKING_SECONDS == before
    with bounded_shrinking():
        assert engine.MAX_SHRINKING_SECONDS == min(before, SHRINK_SECONDS)


def test_a_property_that_fails_still_reports_its_failure_under_the_bound() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(0, 10**6))
    def never_large(value: int) -> None:
        assert value < 1000

    with pytest.raises(AssertionError):
        run_property(never_large)


@given(st.text(max_size=12), st.text(min_size=8, max_size=40).filter(lambda s: "\x00" not in s),
       st.text(max_size=6))
def test_a_secret_base64_encoded_with_anything_around_it_is_found(before: str, secret: str, after: str) -> None:
    """Basic authorization writes base64(user:secret): the kit's leak check finds the secret in
    it wherever it starts."""
    import base64

    from paywire.testing.leaks import secret_variants

    encoded = base64.b64encode((before + secret + after).encode()).decode()
    assert any(variant in encoded for variant in secret_variants(secret))


def test_refunds_listed_on_another_capture_than_they_were_made_on_are_a_disagreement() -> None:
    """Two captures, 5.00 refunded of the first: fetch's totals agree whichever capture its refund
    names, but reconciliation reads the parent, so naming the second is a disagreement; a plugin
    that does not report parents is not held to it."""
    payment = PaymentModel("auth_1", "pay_1", "EUR", 10_000)
    payment.capture("cap_1", 4_000, final=False)
    payment.capture("cap_2", 3_000, final=False)
    payment.refund(payment.captures[0], 500)

    def fetched(*parents: str | None) -> CommandResult:
        captures = [ProviderOperation(kind="capture", reference=reference, amount=Money(amount, "EUR"))
                    for reference, amount in (("cap_1", 4_000), ("cap_2", 3_000))]
        refunds = [ProviderOperation(kind="refund", reference=f"re_{n}", amount=Money(500 // len(parents), "EUR"),
                                     parent=parent) for n, parent in enumerate(parents)]
        return CommandResult(state="partially_refunded", authorized=Money(10_000, "EUR"),
                             captured=Money(7_000, "EUR"), refunded=Money(500, "EUR"), operations=captures + refunds)

    assert totals_disagreement(payment, fetched("cap_1"), expected_states) is None
    assert totals_disagreement(payment, fetched(None), expected_states) is None
    problem = totals_disagreement(payment, fetched("cap_2"), expected_states)
    assert problem is not None and "'cap_2': 500" in problem and "'cap_1': 500" in problem


def test_listed_operations_must_be_those_applied_with_their_keys() -> None:
    """Once fetch lists any operation, reconciliation reads the operations alone: a capture left
    out, one of another amount, or one under another idempotency key than it was sent with would
    settle a lost capture that took effect as never applied. A plugin listing none is not held to it."""
    payment = PaymentModel("pay_1", "pay_1", "EUR", 10_000)
    payment.capture("pay_1", 10_000, final=True, key="key-capture")
    payment.refund(payment.captures[0], 2_500, reference="re_1", key="key-refund")
    capture = ProviderOperation(kind="capture", reference="pay_1", amount=Money(10_000, "EUR"), idempotency_key="key-capture")
    refund = ProviderOperation(kind="refund", reference="re_1", amount=Money(2_500, "EUR"), idempotency_key="key-refund")

    def fetched(*operations: ProviderOperation) -> CommandResult:
        return CommandResult(state="partially_refunded", authorized=Money(10_000, "EUR"), captured=Money(10_000, "EUR"),
                             refunded=Money(2_500, "EUR"), operations=operations)

    assert totals_disagreement(payment, fetched(), expected_states) is None
    assert totals_disagreement(payment, fetched(capture, refund), expected_states) is None
    assert totals_disagreement(payment, fetched(attrs.evolve(capture, idempotency_key=None), refund),
                               expected_states) is None
    left_out = totals_disagreement(payment, fetched(refund), expected_states)
    assert left_out is not None and "lists no succeeded capture pay_1" in left_out
    other_key = totals_disagreement(payment, fetched(attrs.evolve(capture, idempotency_key="key-authorize"), refund),
                                    expected_states)
    assert other_key is not None and "'key-authorize'; it was sent with 'key-capture'" in other_key
    other_amount = totals_disagreement(payment, fetched(capture, attrs.evolve(refund, amount=Money(10_000, "EUR"))),
                                       expected_states)
    assert other_amount is not None and "refund re_1" in other_amount and "lists no succeeded refund re_1" in other_amount
