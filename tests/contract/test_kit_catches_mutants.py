"""The contract kit catches the mistakes a plugin author makes first: it fails each variant of the
acme plugin in `kit_mutants.py` on the property the mistake violates, with a message naming it.

As in `test_kit_catches_defects.py`: one pytest subprocess runs, for each variant, only the
property that must catch it (the CI profile, unshrunk), and the tests below read its JUnit report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.test_kit_catches_defects import CONFTEST, Outcomes, _read_report

pytest.importorskip("paywire_acme", reason="the mutants are variants of the acme test plugin")

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ACME_TESTS = HERE.parent / "plugins" / "acme" / "tests"

# Each variant: the mistake, the property that must catch it, and what its message must say.
CAUGHT = {
    "DECLINE_AS_SUCCESS": ("a decline answered with the payment it made taken as success",
                           "test_a_decline_is_declined_and_never_retryable",
                           "authorize with 'tok_decline' gave CommandResult(status='succeeded'"),
    "LOST_FAILED": ("a connection dropped after sending reported as a plain failure",
                    "test_a_connection_dropped_after_sending_is_outcome_unknown_and_settled_by_the_same_key",
                    "a connection dropped after the operation gave InvalidRequest"),
    "SERVER_ERROR_REFUSED": ("a 5xx's error code mapped to a plain refusal",
                             "test_a_server_error_is_a_retryable_provider_unavailable", "HTTP 503 gave InvalidRequest"),
    "TWO_DECIMALS_AT_MOST": ("three-decimal currencies written with two",
                             "test_amounts_of_every_exponent_survive_the_wire_exactly", "on the wire"),
    "FLOAT_CAPTURE": ("capture amounts sent as floats",
                      "test_a_partial_capture_captures_exactly_that_amount_and_closes", "capture amount must be"),
    "FLOAT_FETCH": ("fetch's totals read through a float of major units",
                    "test_a_capture_the_provider_applies_in_part_reports_what_it_captured",
                    "a capture's amount is what the provider captured"),
    "REFUND_AS_CAPTURE": ("a refund posted to the capture endpoint",
                          "test_a_partial_refund_refunds_exactly_that_amount", "cannot capture a payment"),
    "REFUND_AS_CAPTURE_WEBHOOK": ("a refund event read as a capture", "test_genuine_signed_events_verify_and_parse",
                                  "event kind 'captured', sent 'refunded'"),
    "REFUNDED_AS_CAPTURED": ("fetch reading a refunded payment as captured, nothing refunded",
                             "test_fetch_reports_each_money_state_with_its_totals",
                             "state: provider reports 'captured', expected one of ['partially_refunded']"),
    "ORDER_KEY": ("the shop's order id sent as the idempotency key",
                  "test_money_moving_requests_carry_the_subjects_key", "not the subject's"),
    "WIDE_TOLERANCE": ("a webhook tolerance of a day where the provider documents 300 s",
                       "test_a_stale_timestamp_is_refused", "a webhook signed 301s ago was accepted"),
    # Missed before the kit checked that a refund's result names the refund (checks.assert_names_the_refund).
    "UNREFERENCED_REFUND": ("a refund's reference left out", "test_a_partial_refund_refunds_exactly_that_amount",
                            "a refund's result names no reference"),
    "REFUND_NAMED_AS_PAYMENT": ("a refund named by the payment it refunds",
                                "test_several_refunds_add_up_to_the_capture_and_no_further",
                                "two refunds of capture pay_"),
}


def _class(variant: str) -> str:
    return "TestMutant" + "".join(part.title() for part in variant.split("_"))


KIT_RUN = '''
import pytest

import kit_mutants
from test_acme_contract import TestAcmeContract


def variant(name):
    class Variant(TestAcmeContract):
        @pytest.fixture
        def gateway_plugin(self):
            return getattr(kit_mutants, name)

    return Variant

''' + "\n".join(f"{_class(name)} = variant({name!r})" for name in CAUGHT) + "\n"

_runs: dict[str, Outcomes] = {}


@pytest.fixture
def kit_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Outcomes:
    """Outcomes of the kit's catching property against each variant (run once per session)."""
    if "run" not in _runs:
        path = os.pathsep.join([str(ACME_TESTS), str(HERE), os.environ.get("PYTHONPATH", "")])
        monkeypatch.setenv("PYTHONPATH", path)
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(test_mutants=KIT_RUN)
        selection = " or ".join(f"({_class(name)} and {test.split('[')[0]})"
                                for name, (_, test, _) in CAUGHT.items())
        report, log = pytester.path / "report.xml", pytester.path / "output.txt"
        args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-profile",
                "paywire_ci_unshrunk", f"--junitxml={report}", "-q", "-k", selection]
        with log.open("w") as output:
            pytester.popen(args, stdout=output, stderr=subprocess.STDOUT).wait(timeout=600)
        assert report.exists(), log.read_text(errors="replace")[-3000:]
        _runs["run"] = _read_report(report)
    return _runs["run"]


@pytest.mark.parametrize("variant", sorted(CAUGHT))
def test_each_mutant_is_caught_with_a_message_naming_its_mistake(kit_run: Outcomes, variant: str) -> None:
    mistake, test, phrase = CAUGHT[variant]
    results = {name: result for name, result in kit_run.get(_class(variant), {}).items() if name.startswith(test)}
    assert results, f"{test} did not run against {variant}"
    failed = [message for outcome, message in results.values() if outcome == "failure"]
    assert failed, f"{mistake}: {test} did not fail ({sorted(outcome for outcome, _ in results.values())})"
    assert any(phrase in message for message in failed), (
        f"{mistake}: {test} failed without saying {phrase!r}:\n{failed[0][:2000]}")
    assert not any("acme_test_key" in message or "acme_whsec" in message for message in failed)
