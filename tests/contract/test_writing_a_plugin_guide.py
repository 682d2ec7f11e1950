"""docs/writing-a-plugin.md is correct: its files are the acme plugin's, word for word (and acme
passes the contract kit), its excerpts are verbatim, and its other Python samples run."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

from paywire import hookspecs

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "tests" / "plugins" / "acme"
GUIDE = (ROOT / "docs" / "writing-a-plugin.md").read_text()
BLOCK = re.compile(r"(?:<!-- (file|excerpt): (\S+) -->\n)?```(\w+)\n(.*?)```", re.DOTALL)
BLOCKS = [match.groups() for match in BLOCK.finditer(GUIDE)]
SHOWN = [(kind, path, text) for kind, path, _, text in BLOCKS if kind]
SAMPLES = [text for kind, _, language, text in BLOCKS if not kind and language == "python"]


def test_the_guide_shows_every_file_of_the_plugin() -> None:
    files = {path for kind, path, _ in SHOWN if kind == "file"}
    assert files == {"pyproject.toml", "src/paywire_acme/__init__.py", "src/paywire_acme/commands.py",
                     "src/paywire_acme/webhook.py", "tests/test_acme_contract.py"}
    assert any(path == "src/paywire_acme/emulator.py" for _, path, _ in SHOWN)
    assert len(SAMPLES) >= 6


@pytest.mark.parametrize(("kind", "path", "text"), SHOWN, ids=[f"{kind} {path}" for kind, path, _ in SHOWN])
def test_shown_code_is_the_plugin_s_own(kind: str, path: str, text: str) -> None:
    source = (ACME / path).read_text()
    if kind == "file":
        assert text == source, f"the guide's {path} differs from {ACME / path}"
    else:
        assert text.rstrip("\n") in source, f"the guide's excerpt of {path} is not in {ACME / path}"


def test_the_payment_sample_runs() -> None:
    exec(compile(SAMPLES[0], "docs/writing-a-plugin.md sample 0", "exec"), {"__name__": "guide_sample"})


@pytest.mark.parametrize("index", range(2, len(SAMPLES)), ids=lambda index: f"section 9 sample {index - 1}")
def test_the_samples_for_providers_unlike_acme_run(index: int) -> None:
    exec(compile(SAMPLES[index], f"docs/writing-a-plugin.md sample {index}", "exec"), {"__name__": "guide_sample"})


def test_the_shared_emulator_variant_passes_contract_tests(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ACME / "tests"), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_variant=SAMPLES[1] + (
        "\n\nfrom test_acme_contract import TestAcmeContract as Acme\n\n\n"
        "class TestCombined(TestAcmeContractOneEmulator, Acme):\n    pass\n"
    ))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hypothesis-profile", "paywire_ci", "-k", "TestCombined and (void or decline or tamper)"
    )
    # the void checks include its key on the wire, a lost answer and a duplicate while its key is in flight;
    # the void after a partial capture is skipped: Acme does not declare `void_after_capture`
    result.assert_outcomes(passed=7, skipped=2)


def test_the_guide_s_hook_table_is_the_hook_specs() -> None:
    """Every hook, with its arguments in order, its return type and its calling mode, as
    paywire/hookspecs.py declares it."""
    section = GUIDE[GUIDE.index("## 10. Hooks"):]
    rows = re.findall(r"^\| `(\w+)\(([^)]*)\)` \| `([^`]*)` \| (all|first) \|", section, re.MULTILINE)
    shown = {name: (params.split(", ") if params else [], returns.replace("\\|", "|"), mode)
             for name, params, returns, mode in rows}
    specs = {name: fn for name, fn in vars(hookspecs).items() if getattr(fn, "paywire_spec", None) is not None}
    declared = {name: (list(inspect.signature(fn).parameters), inspect.signature(fn).return_annotation,
                       "first" if fn.paywire_spec["firstresult"] else "all") for name, fn in specs.items()}
    assert len(rows) == len(shown)
    assert shown == declared
