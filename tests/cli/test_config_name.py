"""An empty configuration file name (`--config ''`, or `PAYWIRE_CONFIG` set to nothing by a
deployment template) is a configuration error saying so, not a read of the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import paywire


@pytest.mark.parametrize("given", ["--config", "PAYWIRE_CONFIG"])
def test_an_empty_configuration_file_name_says_so(tmp_path: Path, given: str) -> None:
    """It was "cannot read configuration file '.': Is a directory"."""
    args, env = (("--config", ""), {}) if given == "--config" else ((), {"PAYWIRE_CONFIG": ""})
    for flags in ((), ("--json",)):
        result = paywire(*flags, *args, "methods", cwd=tmp_path, env=env)
        assert result.returncode == 3, result.stderr
        told = result.stdout + result.stderr
        assert "the configuration file's name is empty" in told and "'.'" not in told
