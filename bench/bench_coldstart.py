"""Cold start: `import paywire` plus discovery of the installed plugins, next to a bare
interpreter start and to `import stripe` (the official SDK) in the same environment."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.timing import Row

PROGRAMS = {
    "bare interpreter": "pass",
    "import paywire + discovery": "import paywire; paywire.Plugins().load_entry_points().gateways()",
    "import stripe (official SDK)": "import stripe",
}


def _once(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def run(rounds: int = 15) -> list[Row]:
    plugins = subprocess.run(
        [sys.executable, "-c", "import paywire; print(','.join(sorted(paywire.Plugins().load_entry_points().gateways())))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    for code in PROGRAMS.values():  # warm the bytecode caches
        _once(code)
    samples: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(rounds):
        for name, code in PROGRAMS.items():
            samples[name].append(_once(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare, sdk = medians["bare interpreter"], medians["import stripe (official SDK)"]
    group = f"cold start ({plugins or 'no'} plugins)"
    return [
        Row(group, "bare interpreter", bare * 1e3, "ms", 1.0, "bare interpreter"),
        Row(group, "import paywire + discovery", medians["import paywire + discovery"] * 1e3, "ms",
            medians["import paywire + discovery"] / sdk, "import stripe", "<= 0.6 x SDK"),
        Row(group, "import stripe (official SDK)", sdk * 1e3, "ms", sdk / bare, "bare interpreter"),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
