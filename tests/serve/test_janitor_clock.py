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


@pytest.mark.postgres
@pytest.mark.parametrize("off", [timedelta(minutes=5), timedelta(minutes=-5)])
def test_a_host_clock_off_the_databases_by_more_than_the_margin_is_reported(
        shop: PaymentService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        off: timedelta) -> None:
    """The ledger keeps time by the database's clock (`Ledger.now`), but a host's logs and its
    webhook signatures' timestamp checks go by its own. Each pass measures its host's clock
    against the database's and warns once when the margin no longer covers the gap."""
    janitor = Janitor(shop)
    in_step = janitor.run_pass()
    assert in_step.clock_skew is not None and abs(in_step.clock_skew) < 1  # one host: the same clock
    _wall_clock_moved(monkeypatch, off)
    with caplog.at_level("WARNING", logger="paywire.janitor"):
        reports = [janitor.run_pass() for _ in range(2)]
    for report in reports:
        assert report.clock_skew is not None and abs(report.clock_skew - off.total_seconds()) < 1, report.clock_skew
    warned = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert len(warned) == 1 and "NTP" in warned[0], warned  # once, not every pass
