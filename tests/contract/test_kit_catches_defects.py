"""The contract kit catches real defects: it fails broken variants of the acme plugin on the
property each defect violates, and passes the plugin itself.

pytest subprocesses run the kit against the plugin and its four broken variants (defined in
`broken_acme.py`) with the CI profile, unshrunk; the tests below read their JUnit reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ACME_TESTS = HERE.parent / "plugins" / "acme" / "tests"

KIT_RUN = '''
import pytest

import broken_acme
from test_acme_contract import TestAcmeContract as AcmeContract


class TestUnbroken(AcmeContract):
    pass


class TestRounding(AcmeContract):
    @pytest.fixture
    def gateway_plugin(self):
        return broken_acme.ROUNDING


class TestLeakyKey(AcmeContract):
    @pytest.fixture
    def gateway_plugin(self):
        return broken_acme.LEAKY


class TestLenientWebhook(AcmeContract):
    @pytest.fixture
    def gateway_plugin(self):
        return broken_acme.LENIENT_WEBHOOK


class TestRetryableDecline(AcmeContract):
    @pytest.fixture
    def gateway_plugin(self):
        return broken_acme.RETRYABLE_DECLINE
'''

# The CI profile without shrinking: a failure is reported as found, so each broken variant costs
# about what a passing run does.
CONFTEST = '''
from hypothesis import Phase, settings

from paywire.testing.profiles import CI_PROFILE, register_profiles

register_profiles()
settings.register_profile(
    "paywire_ci_unshrunk", settings.get_profile(CI_PROFILE), phases=[Phase.explicit, Phase.reuse, Phase.generate]
)
'''

Outcomes = dict[str, dict[str, tuple[str, str]]]  # class -> test -> (outcome, message)
_runs: dict[str, Outcomes] = {}


def _read_report(path: Path) -> Outcomes:
    outcomes: Outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name", "")
        outcome, message = outcomes.setdefault(cls, {}).get(name, ("passed", ""))
        for tag in ("failure", "error", "skipped"):  # a teardown error comes as a second testcase
            found = case.find(tag)
            if found is not None and outcome != "failure":
                outcome, message = tag, f"{found.get('message', '')}\n{found.text or ''}"
                break
        outcomes[cls][name] = (outcome, message)
    return outcomes


@pytest.fixture
def kit_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Outcomes:
    """Outcomes of the kit against acme and its broken variants (run once per session).

    The variants run in two pytest processes side by side, each writing a JUnit report.
    """
    if "run" not in _runs:
        path = os.pathsep.join([str(ACME_TESTS), str(HERE), os.environ.get("PYTHONPATH", "")])
        monkeypatch.setenv("PYTHONPATH", path)
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(test_defects=KIT_RUN)
        groups = ("TestUnbroken or TestRounding or TestLeakyKey", "TestLenientWebhook or TestRetryableDecline")
        runs = []
        for index, selection in enumerate(groups):
            report, log = pytester.path / f"report-{index}.xml", pytester.path / f"output-{index}.txt"
            args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-profile",
                    "paywire_ci_unshrunk", f"--junitxml={report}", "-q", "-k", selection]
            with log.open("w") as output:
                runs.append((report, log, pytester.popen(args, stdout=output, stderr=subprocess.STDOUT)))
        outcomes: Outcomes = {}
        for report, log, process in runs:
            process.wait(timeout=600)
            assert report.exists(), log.read_text(errors="replace")[-3000:]
            outcomes.update(_read_report(report))
        _runs["run"] = outcomes
    return _runs["run"]


def _failed(outcomes: Outcomes, variant: str, test: str) -> str:
    outcome, message = outcomes[variant][test]
    assert outcome == "failure", f"{variant}.{test} {outcome}, expected it to fail"
    return message


def test_the_unbroken_plugin_passes_the_whole_kit(kit_run: Outcomes) -> None:
    unbroken = kit_run["TestUnbroken"]
    assert len(unbroken) > 30
    bad = {test: outcome for test, (outcome, _) in unbroken.items() if outcome not in ("passed", "skipped")}
    assert not bad, bad


def test_amounts_rounded_through_a_float_fail_the_wire_amount_property(kit_run: Outcomes) -> None:
    message = _failed(kit_run, "TestRounding", "test_amounts_of_every_exponent_survive_the_wire_exactly")
    assert "on the wire" in message


def test_an_api_key_in_error_messages_fails_the_secret_property(kit_run: Outcomes) -> None:
    message = _failed(kit_run, "TestLeakyKey", "test_secrets_never_show_in_reprs_logs_or_errors")
    assert "secrets showed" in message
    assert "acme_test_key" not in message, "the report must mask the secret it found"


def test_an_api_key_in_error_messages_is_flagged_after_every_test_that_met_an_error(kit_run: Outcomes) -> None:
    others = {test: result for test, result in kit_run["TestLeakyKey"].items()
              if test != "test_secrets_never_show_in_reprs_logs_or_errors" and result[0] != "passed"}
    assert others, "tests that met provider errors should be flagged at teardown"
    for test, (outcome, message) in others.items():
        assert (outcome, "secrets showed" in message) in (("error", True), ("skipped", False)), (test, outcome)
        assert "acme_test_key" not in message


def test_a_webhook_check_over_the_reparsed_body_fails_the_tamper_property(kit_run: Outcomes) -> None:
    message = _failed(kit_run, "TestLenientWebhook", "test_every_single_byte_tamper_is_refused")
    assert "tampered webhooks were not refused" in message


def test_a_decline_mapped_as_retryable_fails_the_error_properties(kit_run: Outcomes) -> None:
    message = _failed(kit_run, "TestRetryableDecline", "test_a_decline_is_declined_and_never_retryable")
    assert "retryable" in message
    message = _failed(kit_run, "TestRetryableDecline", "test_every_documented_provider_error_maps_to_one_typed_error")
    assert "card declined" in message


@pytest.mark.parametrize("variant", ["TestRounding", "TestLenientWebhook", "TestRetryableDecline"])
def test_each_defect_fails_only_the_properties_it_violates(kit_run: Outcomes, variant: str) -> None:
    """A defect is caught by the properties it breaks, not by everything falling over."""
    failed = sorted(test for test, (outcome, _) in kit_run[variant].items() if outcome in ("failure", "error"))
    assert 0 < len(failed) <= 4, failed


def test_a_capability_the_plugin_does_not_declare_is_skipped_with_the_reason(kit_run: Outcomes) -> None:
    outcome, message = kit_run["TestUnbroken"]["test_a_vaulted_method_is_charged_without_the_buyer"]
    assert outcome == "skipped"
    assert "acme does not declare the 'vault' capability" in message
