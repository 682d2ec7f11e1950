"""The fixtures paywire's pytest plugin gives shops: the README's example runs as a shop's test
file in a pytest of its own, and the fixtures choose providers by marker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
(EXAMPLE,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.DOTALL) if "paywire_service" in b]


def test_the_readme_example_passes_as_a_shops_test_file(pytester: pytest.Pytester) -> None:
    pytest.importorskip("paywire_stripe", reason="the README's example uses Stripe: installed in the all session, not in package(acme)")
    pytester.makepyfile(test_checkout=EXAMPLE)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=2)


def test_each_test_gets_its_own_sandboxes_gateway_and_ledger(pytester: pytest.Pytester) -> None:
    pytest.importorskip("paywire_acme", reason="uses the Acme sample plugin: installed in the acme and all sessions only")
    pytester.makepyfile(
        """
        import pytest

        from paywire import Money

        seen = []

        @pytest.mark.paywire_providers("acme")
        @pytest.mark.parametrize("run", [1, 2])
        def test_fresh(run, paywire_service, paywire_sandboxes, paywire_gateway, paywire_ledger):
            assert list(paywire_sandboxes) == ["acme"] and paywire_service.ledger is paywire_ledger
            assert paywire_service.list_payments() == []  # nothing from the other run
            acme = paywire_sandboxes["acme"]
            payment = paywire_service.sale("acme", Money.of("5.00", "EUR"), source=acme.source("ok"))
            assert payment.state == "captured"
            seen.append(acme.url)
            assert len(set(seen)) == len(seen)  # an emulator of its own
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=2)
