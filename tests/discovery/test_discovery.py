"""What `pip install` put in this environment is exactly what paywire discovers.

Each nox session installs the core with a chosen set of plugins and says which gateways that
must give in PAYWIRE_EXPECTED_GATEWAYS ("" for the core alone).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXPECTED = os.environ.get("PAYWIRE_EXPECTED_GATEWAYS")


@pytest.mark.skipif(EXPECTED is None, reason="set by the nox sessions, which install a known set of plugins")
def test_discovers_exactly_the_installed_providers() -> None:
    # A fresh interpreter: discovery at start-up, as an application sees it.
    code = "import paywire; p = paywire.Plugins().load_entry_points(); print(','.join(sorted(p.gateways()))); print(p.failures)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == ",".join(sorted(filter(None, (EXPECTED or "").split(","))))
    assert out[1] == "[]"


def test_importing_paywire_loads_no_plugin_and_no_heavy_module() -> None:
    code = "import sys, paywire; print(sorted(m for m in ('pluggy', 'urllib3', 'hypothesis', 'psycopg') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_discovering_plugins_imports_nothing_a_request_needs() -> None:
    """Plugins register cheap definitions; commands, attrs and urllib3 load with the first request."""
    code = (
        "import sys, paywire; paywire.Plugins().load_entry_points().gateways(); "
        "print(sorted(m for m in ('attrs', 'urllib3', 'ssl', 'hypothesis', 'psycopg', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
