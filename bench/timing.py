"""Timing helpers: interleaved rounds so that machine noise hits every contender alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import attrs


@attrs.frozen
class Row:
    """One line of the benchmark table."""

    group: str
    name: str
    value: float
    unit: str
    ratio: float | None = None  # against the group's baseline
    baseline: str | None = None
    target: str | None = None


def median_latency(calls: dict[str, Callable[[], object]], *, rounds: int = 7, per_round: int = 300,
                   warmup: int = 100) -> dict[str, float]:
    """Median seconds per call for each contender, measured in interleaved rounds."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(per_round):
                call()
            samples[name].append((time.perf_counter() - started) / per_round)
    return {name: statistics.median(values) for name, values in samples.items()}


def ratio_rows(group: str, medians: dict[str, float], baseline: str, targets: dict[str, str] | None = None) -> list[Row]:
    base = medians[baseline]
    return [
        Row(group, name, value * 1e6, "us/op", value / base, baseline, (targets or {}).get(name))
        for name, value in medians.items()
    ]
