"""The kit's parts: emulator controls, the leak watch, error cases."""

from __future__ import annotations

import logging

import pytest

from paywire import Declined, IdempotencyConflict, ProviderUnavailable
from paywire.testing.contract import ErrorCase, retryable_meaning
from paywire.testing.controls import EmulatorControls, RemoteEmulator
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.leaks import LeakWatch, SecretValues
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


def test_secret_values_never_show_themselves() -> None:
    assert repr(SecretValues({"abc123456"})) == "SecretValues(1 values)"


def test_an_error_case_cannot_contradict_what_its_error_means() -> None:
    with pytest.raises(ValueError, match="never retryable"):
        ErrorCase(name="decline", status=402, body={}, error=Declined, retryable=True)
    assert ErrorCase(name="busy", status=409, body=b"", error=IdempotencyConflict, retryable=True).expected_retryable
    assert retryable_meaning(ProviderUnavailable) is True and retryable_meaning(IdempotencyConflict) is None
