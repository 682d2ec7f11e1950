"""The `paywire` pytest plugin: cheap to load, the CI profile, the markers, clear fixture errors."""

from __future__ import annotations

import pytest

from paywire.testing.contract import AmountContract

pytest_plugins = ["pytester"]


def test_loading_the_plugin_imports_nothing_heavy_and_declares_the_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        import pytest

        def test_modules():
            assert "paywire.testing.pytest_plugin" in sys.modules
            loaded = {"hypothesis", "urllib3", "paywire.plugins", "paywire.testing.contract"} & set(sys.modules)
            assert not loaded, loaded

        @pytest.mark.paywire_contract
        @pytest.mark.paywire_capability("void")
        def test_marked():
            pass
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=2)


def test_the_ci_profile_is_selected_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import settings

        def test_profile():
            assert settings.get_current_profile_name() == "paywire_ci"
            assert settings.default.derandomize and settings.default.deadline is None
            assert settings.default.max_examples < 100
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hypothesis-profile", "paywire_ci")
    result.assert_outcomes(passed=1)


def test_a_fixture_left_to_override_names_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from paywire.testing.contract import AmountContract

        class TestNothingOverridden(AmountContract):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=len([name for name in dir(AmountContract) if name.startswith("test_")]))
    result.stdout.fnmatch_lines(["*NotImplementedError: override the `gateway_plugin` fixture*"])
