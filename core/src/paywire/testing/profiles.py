"""paywire's hypothesis profiles, registered on demand (importing this module imports hypothesis).

- `paywire_ci`: derandomized (the same examples on every run), fewer examples and shorter
  stateful runs, no deadline (loopback HTTP is fast but not steady), no example database.
- `paywire_thorough`: many examples and long state machine runs, for a nightly or local soak.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import engine as _engine

__all__ = [
    "CI_PROFILE",
    "SHRINK_SECONDS",
    "THOROUGH_PROFILE",
    "bounded_shrinking",
    "contract_settings",
    "register_profiles",
    "run_property",
]

CI_PROFILE = "paywire_ci"
THOROUGH_PROFILE = "paywire_thorough"
SHRINK_SECONDS = 60
"""How long the kit lets hypothesis shrink one failure. Each of the kit's examples makes HTTP
calls, so hypothesis's own limit (five minutes per failure) made one failing property cost more
than the whole kit; a shrink stopped early still reports the smallest failure found so far."""


def register_profiles() -> None:
    """Register (or re-register) paywire's profiles; loading one stays the caller's choice."""
    settings.register_profile(
        CI_PROFILE,
        derandomize=True,
        max_examples=25,
        stateful_step_count=12,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        THOROUGH_PROFILE,
        max_examples=500,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def contract_settings(*, max_examples: int | None = None) -> settings:
    """The current profile for one contract property, built when the test runs.

    There is no deadline (examples make HTTP calls), and `max_examples` caps the profile's count
    for properties whose examples are long (state machine runs, sequences).
    """
    current = settings()
    examples = current.max_examples if max_examples is None else min(current.max_examples, max_examples)
    return settings(
        current,
        deadline=None,
        max_examples=examples,
        suppress_health_check=[*current.suppress_health_check, HealthCheck.too_slow],
    )


@contextlib.contextmanager
def bounded_shrinking(seconds: float = SHRINK_SECONDS) -> Iterator[None]:
    """Shrink each failure for at most `seconds` (plus the one example running when time is up).

    Hypothesis has no setting for it; its engine reads `MAX_SHRINKING_SECONDS` when shrinking
    starts, so the limit is lowered for the block and restored after it. With a hypothesis that
    no longer has it, shrinking keeps hypothesis's own limit.
    """
    if not hasattr(_engine, "MAX_SHRINKING_SECONDS"):
        yield
        return
    previous = _engine.MAX_SHRINKING_SECONDS
    _engine.MAX_SHRINKING_SECONDS = min(previous, seconds)  # type: ignore[assignment]
    try:
        yield
    finally:
        _engine.MAX_SHRINKING_SECONDS = previous


def run_property(test: Callable[[], None], *, max_examples: int | None = None) -> None:
    """Run a `@given` property with `contract_settings`, its shrinking bounded."""
    with bounded_shrinking():
        contract_settings(max_examples=max_examples)(test)()
