"""The `paywire` pytest plugin, loaded automatically wherever paywire is installed.

It stays cheap: it imports neither hypothesis nor pluggy nor urllib3. It declares the contract
kit's markers and, only when `--hypothesis-profile paywire_ci` (or another `paywire_*` profile) is
asked for, registers paywire's hypothesis profiles before hypothesis loads the one named.
"""

from __future__ import annotations

import pytest

PROFILE_PREFIX = "paywire"

# Fixtures for a shop's own tests (sandboxes, a gateway, a service on a temporary ledger).
pytest_plugins = ["paywire.testing.shop_fixtures"]

# The kit's assertions explain themselves; rewriting them adds the compared values on failure.
pytest.register_assert_rewrite("paywire.testing.contract")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "paywire_contract: a test of the paywire gateway contract kit (paywire.testing.contract)"
    )
    config.addinivalue_line(
        "markers",
        "paywire_capability(name): needs the gateway capability `name`; skipped, with the reason, "
        "when the plugin does not declare it",
    )
    profile = config.getoption("--hypothesis-profile", None)
    if isinstance(profile, str) and profile.startswith(PROFILE_PREFIX):
        from paywire.testing.profiles import register_profiles

        register_profiles()
