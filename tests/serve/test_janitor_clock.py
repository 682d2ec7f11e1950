"""How long the Janitor has been idle (what /healthz judges it stale by) is measured on a clock
that never jumps: the wall clock steps when NTP corrects it or a paused VM resumes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paywire.ledger.model import now
from paywire.serve import Janitor
from paywire.serve import janitor as janitor_module
from paywire.service import PaymentService

HOUR = timedelta(hours=1)


def _wall_clock_moved(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    monkeypatch.setattr(janitor_module, "now", lambda: now() + by)


@pytest.mark.postgres
def test_a_wall_clock_stepped_forward_never_makes_a_working_janitor_stale(
        shop: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    janitor = Janitor(shop)
    janitor.run_pass()
    _wall_clock_moved(monkeypatch, HOUR)  # an hour's NTP correction, just after the pass
    idle, age = janitor.idle_for(), janitor.last_pass_age()
    assert idle is not None and age is not None
    assert idle < HOUR.total_seconds() / 2 and age < HOUR.total_seconds() / 2, (idle, age)


@pytest.mark.postgres
def test_a_wall_clock_stepped_back_never_hides_a_stuck_janitor(
        shop: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = [1000.0]
    janitor = Janitor(shop, clock=lambda: ticks[0])
    janitor.run_pass()
    _wall_clock_moved(monkeypatch, -HOUR)
    ticks[0] += 600  # ten minutes without progress, while the wall clock went an hour back
    assert janitor.idle_for() == 600 and janitor.last_pass_age() == 600
