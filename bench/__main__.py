"""Run every benchmark in one process, side by side, print one table, and write JSON.

    python -m bench [--json bench/results.json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import attrs

from bench.timing import Row

BENCHMARKS = ["bench_pipeline", "bench_stripe", "bench_braintree", "bench_ledger", "bench_instructions",
              "bench_workers", "bench_scale", "bench_throughput", "bench_coldstart"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results.json"))
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS)
    args = parser.parse_args()
    rows: list[Row] = []
    for name in args.only or BENCHMARKS:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows.extend(module.run())
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print_table(rows)
    Path(args.json).write_text(json.dumps({
        "python": platform.python_version(), "machine": platform.machine(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rows": [attrs.asdict(row) for row in rows],
    }, indent=2))
    print(f"\nresults written to {args.json}")
    return 0


def print_table(rows: list[Row]) -> None:
    headers = ["benchmark", "contender", "value", "unit", "ratio", "vs", "target"]
    cells = [[r.group, r.name, f"{r.value:,.1f}", r.unit, "" if r.ratio is None else f"{r.ratio:.2f}x",
              r.baseline or "", r.target or ""] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    group = None
    for cell in cells:
        if cell[0] == group:
            cell = ["", *cell[1:]]
        group = cell[0] or group
        print(line.format(*cell).rstrip())


if __name__ == "__main__":
    sys.exit(main())
