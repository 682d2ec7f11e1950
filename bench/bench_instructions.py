"""CPU instructions per operation, counted by valgrind's callgrind: the same contenders as
bench_stripe and bench_ledger, in a figure that machine noise does not move.

Wall-clock ratios on a shared two-core machine move by 10% or more from run to run (steal time,
the other core's load), which is as much as the targets' margins. An instruction count is the
same for the same code, whatever else the machine does, so a change to the hot path can be judged
by it before the wall-clock rows confirm it. It counts work, not time: instructions that miss the
caches cost more than others, and the kernel's work (socket writes, file syncs) is not counted.

Each contender runs twice in a child process under callgrind, with WARMUP calls and then with
WARMUP + CALLS calls; the difference over CALLS is its count, and everything before the loop
(start-up, imports, the payments a capture needs) cancels out. The SQLite rows also split each
overhead by where it is spent: in SQLite (the library and its Python driver), in the C library
(memory and strings, for both) or in Python (the interpreter and its other modules running the
service's and the ledger's own code), which says whether a gap to the floor is the statements or
the code around them. The canned server is a forked child, counted apart. PostgreSQL is left
out: psycopg's wait loops turn more times when the server is slower, so its counts depend on
load. Without valgrind the rows say so.

    python -m bench --only bench_instructions
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.timing import Row

GROUP = "instructions per operation (callgrind)"
WARMUP, CALLS = 30, 200
CONTENDERS = {  # name: what it runs
    "stripe raw urllib3": "Stripe authorize, raw urllib3 (bench_stripe)",
    "stripe paywire": "Stripe authorize, paywire gateway (bench_stripe)",
    "braintree raw urllib3": "Braintree authorize, raw urllib3 (bench_braintree)",
    "braintree paywire": "Braintree authorize, paywire gateway, no key (bench_braintree)",
    "authorize bare": "bench gateway authorize, no ledger (bench_ledger)",
    "authorize SQLite ledger": "PaymentService.authorize on SQLite (bench_ledger)",
    "authorize SQLite floor": "the plain-driver floor's authorize on SQLite (bench/floor.py)",
    "capture bare": "bench gateway capture, no ledger",
    "capture SQLite ledger": "PaymentService.capture on SQLite",
    "capture SQLite floor": "the plain-driver floor's capture on SQLite",
}


@contextmanager
def _contender(name: str) -> Iterator[Callable[[], object]]:
    """The call to count, set up (server, gateway, ledger, the payments a capture needs)."""
    if name.startswith("stripe"):
        from bench import bench_stripe

        with bench_stripe.contenders() as calls:
            yield calls[name.removeprefix("stripe ")]
    elif name.startswith("braintree"):
        from bench import bench_braintree

        with bench_braintree.contenders() as calls:
            yield calls[name.removeprefix("braintree ")]
    else:
        from bench import bench_ledger

        operation, _, contender = name.partition(" ")
        with bench_ledger.contenders(operation, WARMUP + CALLS) as calls:
            yield calls[contender]


def _drive(name: str, calls: int) -> None:
    with _contender(name) as call:
        for _ in range(calls):
            call()


def _count(name: str, calls: int, directory: Path) -> Counter[str]:
    """Instructions of one child process making `calls` calls of `name`, by shared object
    ("total": all of them)."""
    out = directory / f"{re.sub(r'[^a-z]+', '-', name)}-{calls}"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
               sys.executable, "-m", "bench.bench_instructions", "--drive", name, str(calls)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every run
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          cwd=Path(__file__).parent.parent) as child:
        _, errors = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"{name} under callgrind failed: {errors[-2000:]}")
    path = f"{out}.{child.pid}"  # valgrind runs the program in its own process
    found = re.search(r"^(?:summary|totals): (\d+)", Path(path).read_text(), re.MULTILINE)
    assert found, f"no total in {path}"
    counts = Counter({"total": int(found.group(1))})
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                               capture_output=True, text=True, check=True).stdout
    for line in annotated.splitlines():  # "1,234 (0.01%)  file:function [/path/to/object.so]"
        row = re.match(r"\s*([\d,]+) \(.*\[(.+)\]\s*$", line)
        if row:
            counts[_PLACES.get(Path(row.group(2)).name.split(".")[0], "Python")] += int(row.group(1).replace(",", ""))
    return counts


# Where an instruction is spent, by the shared object it runs in.
PLACES = ("SQLite", "the C library", "Python")
_PLACES = {"libsqlite3": "SQLite", "_sqlite3": "SQLite", "libc": "the C library"}


def run() -> list[Row]:
    if shutil.which("valgrind") is None:
        return [Row(GROUP, "skipped: valgrind is not installed", 0.0, "-")]
    with tempfile.TemporaryDirectory() as directory, ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        totals = {(name, calls): pool.submit(_count, name, calls, Path(directory))
                  for name in CONTENDERS for calls in (WARMUP, WARMUP + CALLS)}
        places = {name: {place: (totals[name, WARMUP + CALLS].result()[place]
                                 - totals[name, WARMUP].result()[place]) / CALLS
                         for place in ("total", *PLACES)} for name in CONTENDERS}
    counts = {name: place["total"] for name, place in places.items()}
    rows = [Row(GROUP, "Stripe authorize: raw urllib3", counts["stripe raw urllib3"], "instr/op", 1.0,
                "raw urllib3"),
            Row(GROUP, "Stripe authorize: paywire", counts["stripe paywire"], "instr/op",
                counts["stripe paywire"] / counts["stripe raw urllib3"], "raw urllib3"),
            Row(GROUP, "Braintree authorize: raw urllib3", counts["braintree raw urllib3"], "instr/op", 1.0,
                "raw urllib3"),
            Row(GROUP, "Braintree authorize: paywire", counts["braintree paywire"], "instr/op",
                counts["braintree paywire"] / counts["braintree raw urllib3"], "raw urllib3")]
    for operation in ("authorize", "capture"):
        bare = counts[f"{operation} bare"]
        ours, floor = counts[f"{operation} SQLite ledger"] - bare, counts[f"{operation} SQLite floor"] - bare
        rows += [Row(GROUP, f"SQLite {operation}: ledger overhead", ours, "instr/op", ours / floor,
                     f"floor {floor:,.0f}")]
        for place in PLACES:
            bare = places[f"{operation} bare"][place]
            ours = places[f"{operation} SQLite ledger"][place] - bare
            floor = places[f"{operation} SQLite floor"][place] - bare
            rows.append(Row(GROUP, f"SQLite {operation}: of which in {place}", ours, "instr/op", None,
                            f"floor {floor:,.0f}"))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:
        _drive(sys.argv[2], int(sys.argv[3]))
    else:
        for row in run():
            print(row)
