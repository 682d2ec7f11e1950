"""The README is executable: its Python samples run, and its two fresh-machine commands work."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
SHELL_BLOCKS = [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL)]


def test_the_readme_has_its_samples_and_two_commands() -> None:
    assert len(PYTHON_BLOCKS) >= 3
    assert len(SHELL_BLOCKS) == 2
    install_and_demo, run_tests = SHELL_BLOCKS
    assert install_and_demo.endswith("paywire demo")
    assert "nox" in run_tests


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_sample_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"readme_sample_{index}"}
    exec(compile(PYTHON_BLOCKS[index], f"README.md python block {index}", "exec"), namespace)


def test_ci_runs_the_readme_test_command() -> None:
    command = SHELL_BLOCKS[1].split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci


@pytest.mark.slow
def test_install_and_demo_command_in_a_fresh_clone(tmp_path: Path) -> None:
    """The first README command, run as written in a fresh clone of the committed repository."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to clone from")
    clone = tmp_path / "paywire"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone)], check=True)
    result = subprocess.run(SHELL_BLOCKS[0], shell=True, cwd=clone, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "flows behaved" in result.stdout and "FAILED" not in result.stdout
    for provider in ("stripe", "paypal"):
        assert re.search(rf"^{provider}\s+sale\s+ok", result.stdout, re.MULTILINE), result.stdout
