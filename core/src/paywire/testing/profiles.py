"""paywire's hypothesis profiles, registered on demand (importing this module imports hypothesis).

- `paywire_ci`: derandomized (the same examples on every run), fewer examples and shorter
  stateful runs, no deadline (loopback HTTP is fast but not steady), no example database.
- `paywire_thorough`: many examples and long state machine runs, for a nightly or local soak.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["CI_PROFILE", "THOROUGH_PROFILE", "contract_settings", "register_profiles"]

CI_PROFILE = "paywire_ci"
THOROUGH_PROFILE = "paywire_thorough"


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
