"""A configuration file is read no further than any configuration can be: an endless one
(`/dev/zero`) or a huge one is refused in one line, exit 3, not read until memory runs out."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from paywire.config import load_config
from paywire.errors import ConfigurationError

MEMORY_CAP = 1 << 30  # bytes of address space: an unbounded read of /dev/zero fails fast under it


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero, an endless file")
@pytest.mark.parametrize("command", [["serve"], ["transactions"]])
def test_an_endless_config_file_is_refused_in_one_line(tmp_path: Path, command: list[str]) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")}
    done = subprocess.run([sys.executable, "-c", "from paywire.cli import run; run()", "--config", "/dev/zero",
                           *command], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
                          preexec_fn=_capped)
    assert done.returncode == 3 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert done.stderr.startswith("paywire: ConfigurationError: configuration file '/dev/zero' is larger than "), \
        done.stderr


def test_a_config_file_one_character_over_the_bound_is_refused_and_one_at_it_read(tmp_path: Path) -> None:
    from paywire.config import MAX_CONFIG_CHARS

    path = tmp_path / "paywire.toml"
    head = "[paywire]\n"
    path.write_text(head + "#" * (MAX_CONFIG_CHARS - len(head)))
    assert load_config(path) == ([], {})
    path.write_text(head + "#" * (MAX_CONFIG_CHARS - len(head) + 1))
    with pytest.raises(ConfigurationError, match="larger than"):
        load_config(path)
