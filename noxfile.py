"""Sessions: each package tested alone in its own virtual environment, everything together,
lint, types, and the benchmarks.

`nox` alone runs the default sessions, which is the project's test command.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["package", "all", "lint", "typecheck"]

ROOT = Path(__file__).parent
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100", "trustme>=1.1"]
WEB_TOOLS = ["waitress>=3.0", "fastapi>=0.110", "flask>=3.0"]  # tests/serve: real servers, docs' examples
# The test command runs the same way with or without CI set, on a quiet or a loaded machine:
# paywire_ci has no deadline, no "data generation too slow" health check, and the same examples on
# every run (derandomized), so nothing in a run depends on the machine's speed or on luck.
HYPOTHESIS = ["--hypothesis-profile", "paywire_ci"]

# package -> (what to install besides the core, test paths, gateways discovery must find)
PACKAGES = {
    "core": (["./core[server]", *WEB_TOOLS], ["tests/core", "tests/ledger", "tests/serve", "tests/discovery"], ""),
    "stripe": (["./plugins/stripe[test]"], ["plugins/stripe/tests", "tests/discovery"], "stripe"),
    "paypal": (["./plugins/paypal[test]"], ["plugins/paypal/tests", "tests/discovery"], "paypal"),
    "braintree": (["./plugins/braintree[test]"], ["plugins/braintree/tests", "tests/discovery"], "braintree"),
    "opentelemetry": (["./plugins/opentelemetry[test]"], ["plugins/opentelemetry/tests", "tests/discovery"], ""),
    "acme": (
        ["./tests/plugins/acme", "./tests/plugins/acme_tagger"],
        ["tests/plugins/acme/tests", "tests/contract", "tests/shop_fixtures", "tests/discovery"],
        "acme",
    ),
}


def _existing(paths: list[str]) -> list[str]:
    return [path for path in paths if (ROOT / path).exists()]


@nox.session
@nox.parametrize("name", list(PACKAGES))
def package(session: nox.Session, name: str) -> None:
    """One package's tests in a venv holding only that package and the core."""
    extra, paths, expected = PACKAGES[name]
    session.install("./core[postgresql]", *extra, *TEST_TOOLS)
    session.run(
        "pytest", *_existing(paths), *HYPOTHESIS, *session.posargs,
        env={"PAYWIRE_EXPECTED_GATEWAYS": expected},
    )


@nox.session
def all(session: nox.Session) -> None:
    """Every package installed together; the whole suite, cross-package tests included."""
    plugins = [f"./{p}" for p in ("plugins/stripe[test]", "plugins/paypal[test]", "plugins/braintree[test]",
                                  "plugins/opentelemetry[test]") if (ROOT / p.split("[")[0]).exists()]
    session.install("./core[postgresql,server]", *plugins, "./tests/plugins/acme", "./tests/plugins/acme_tagger",
                    *TEST_TOOLS, *WEB_TOOLS)
    session.run(
        "pytest", "tests", *_existing(["plugins/stripe/tests", "plugins/paypal/tests", "plugins/braintree/tests",
                                       "plugins/opentelemetry/tests"]),
        *HYPOTHESIS, *session.posargs,
        env={"PAYWIRE_EXPECTED_GATEWAYS": ",".join(
            g for g in ("acme", "braintree", "paypal", "stripe") if g == "acme" or (ROOT / "plugins" / g).exists()
        )},
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over every package: strict on the core, the repository's settings on the plugins."""
    session.install("mypy>=1.10", "./core[postgresql,testing,server]", "./plugins/stripe", "./plugins/paypal",
                    "./plugins/braintree", "./plugins/opentelemetry", "./tests/plugins/acme", "./tests/plugins/acme_tagger",
                    "trustme")
    session.run("mypy", "-p", "paywire", "-p", "paywire_stripe", "-p", "paywire_paypal", "-p", "paywire_braintree",
                "-p", "paywire_opentelemetry", "-p", "paywire_acme", "-p", "paywire_acme_tagger")


@nox.session
def bench(session: nox.Session) -> None:
    """All benchmarks side by side in one run: one table, and results as JSON."""
    plugins = [f"./{p}" for p in ("plugins/stripe[test]", "plugins/paypal[test]", "plugins/braintree[test]")
               if (ROOT / p.split("[")[0]).exists()]
    session.install("./core[postgresql]", *plugins, "./tests/plugins/acme", "stripe==16.1.0")
    session.run("python", "-m", "bench", *session.posargs)
