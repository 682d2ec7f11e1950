"""paywire's hypothesis profiles, registered on demand (importing this module imports hypothesis).

- `paywire_ci`: derandomized (the same examples on every run), fewer examples and shorter
  stateful runs, no deadline (loopback HTTP is fast but not steady), no example database.
- `paywire_thorough`: many examples and long state machine runs, for a nightly or local soak.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["CI_PROFILE", "THOROUGH_PROFILE", "register_profiles"]

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
