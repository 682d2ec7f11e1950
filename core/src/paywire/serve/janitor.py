"""The Janitor: a loop that settles open outcomes (unknown, accepted) on the outcome model's
schedule, and reads the payments that owe a read (an answer or an event said the ledger is
behind the provider, and the read made then failed; or the payment has waited for its buyer
longer than the service's `buyer_wait`, `paywire.service.waiting`), so that a shop need not run
`paywire reconcile` from cron.

Reconciliation only reads. One first operation the provider holds made but unfinished, waiting
for a step of the operation's own (`CommandResult.unfinished`: a Braintree sale authorized after
it was answered AUTHORIZING, and never submitted for settlement), is finished here: the Janitor
resends it under its idempotency key (`PaymentService.resend_unfinished`), so the sale completes
as the shop asked instead of lapsing with its authorization: a resend of an attempt that may have
landed, with what the ledger keeps of the request (an order's items or a buyer's details are not
needed: the command only finds what the provider holds and finishes it, writing nothing where it
finds nothing). The resend's outcome is recorded as any resend's: from the provider's answer
only, unknown when that is lost.

A transaction is looked at only once its request can no longer land (`settle_after`): before
that, asking the provider proves nothing. After each look that leaves it open, it waits longer
(its own backoff, `paywire.service.schedule`); so does a payment's owed read after a read that
failed, so an unreachable provider is not asked again every pass. The looks are kept in the
ledger, so several Janitors sharing one follow one schedule; each payment is claimed with a row
lock that skips what another worker holds (`PaymentService.reconcile_claimed`), so no two settle
one payment at once. Each pass then applies stored unmatched events that name a payment the
ledger now knows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import attrs

from paywire.errors import Declined, LedgerBusy, LedgerUnavailable, OutcomeUnknown
from paywire.ledger.model import Look, Transaction, TransactionStatus, now
from paywire.security import get_logger
from paywire.service.payments import PaymentService
from paywire.service.reconcile import MatchReport, Mismatch, Settlement
from paywire.service.schedule import Backoff, is_due

__all__ = ["Backoff", "Janitor", "PassReport"]  # Backoff: paywire.service.schedule's, for convenience

log = get_logger("paywire.janitor")
S = TransactionStatus
_SKEW_FLOOR = 1.0  # seconds of skew never warned about, whatever the margin: a round trip's noise


@attrs.frozen
class PassReport:
    """One pass: what was settled, left open, skipped (held by another worker) or failed."""

    started_at: datetime
    finished_at: datetime
    settled: tuple[Settlement, ...] = ()
    unresolved: tuple[Settlement, ...] = ()
    marked_unknown: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # payments another worker was settling
    # (payment id, why: its exception's type), and ("events", the first one's) once for all the
    # stored events that could not be applied, which the next pass tries again
    errors: tuple[tuple[str, str], ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    stopped: bool = False  # the pass stopped early, between two payments
    applied: int = 0  # stored unmatched events applied to the payments they name
    caught_up: tuple[str, ...] = ()  # payments read because they owed a read
    # seconds this host's clock was ahead of the ledger database's as the pass began (behind:
    # negative); None where the database is this host's, or could not be asked
    clock_skew: float | None = None
    resent: tuple[str, ...] = ()  # unfinished first operations resent under their key (transaction ids)


class Janitor:
    """Reconciles due transactions every `interval` seconds, in a thread of its own.

    :param batch: the most due transactions looked at per pass (those never looked at first, then the longest due).
    :param on_pass: called with each pass's report (metrics, logs, tests).
    :param clock: seconds from a clock that never jumps (`time.monotonic`), for `idle_for()` and
        `last_pass_age()`: the wall clock steps when NTP corrects it or a VM is resumed, and /healthz
        would then call a working Janitor stale, or a stuck one fresh.
    """

    def __init__(self, service: PaymentService, *, interval: float = 5.0, backoff: Backoff | None = None,
                 batch: int = 1000, on_pass: Callable[[PassReport], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.on_pass = on_pass
        self.stopping = threading.Event()
        self.last_pass: PassReport | None = None
        self.progressed_at: datetime | None = None  # the last pass's start or payment, whichever is later
        self._clock = clock
        self._progressed: float | None = None  # `progressed_at` on `clock`
        self._passed: float | None = None  # the last pass's end on `clock`
        self._skewed = False  # the last pass found this host's clock further off than the margin covers
        self._thread: threading.Thread | None = None

    def due(self, at: datetime) -> dict[str, list[Transaction]]:
        """The open transactions due now, by payment (`batch` at most: those never looked at
        first, then the longest due), then the payments whose owed read is due (the earliest
        first, `batch` at most), with none."""
        # Longest due first, not oldest: when more are due than a pass gets through before the
        # first ones' backoff is over again (an outage's failing reads), the oldest would take
        # every pass and newer ones never get a look. Transactions still waiting (in flight, or on
        # their backoff) must not hide a due one behind them either: read further, page by
        # doubling page, until `batch` are due, none is left, or the page ends on a look not yet
        # due (every one after it is later still).
        limit = self.batch
        while True:
            rows = self.service.ledger.list_by_look(statuses=[S.PENDING, S.UNKNOWN, S.ACCEPTED], limit=limit)
            txns = [t for t in rows if t.payment_id is not None]
            asked = {t.id for t in txns if t.status != S.PENDING or t.expired(at)} | {t.id for t in rows[-1:]}
            looks = self.service.ledger.looks(sorted(asked))
            due = [t for t in txns if is_due(t, looks.get(t.id), at)]
            last = looks.get(rows[-1].id) if rows else None
            if len(due) >= self.batch or len(rows) < limit or (last is not None and last.next_at > at):
                break
            limit *= 2
        by_payment: dict[str, list[Transaction]] = {}
        for txn in due[:self.batch]:
            by_payment.setdefault(str(txn.payment_id), []).append(txn)
        for payment_id in self.service.ledger.owed_reads(due_by=at, limit=self.batch):
            by_payment.setdefault(payment_id, [])
        return by_payment

    def run_pass(self) -> PassReport:
        """Look at every due payment once, stopping between payments when asked to."""
        started = self.progressed_at = self.service.ledger.now()
        self._progressed = self._clock()
        skew = self._check_skew()
        by_payment = self.due(started)
        settled: list[Settlement] = []
        unresolved: list[Settlement] = []
        marked: list[str] = []
        skipped: list[str] = []
        errors: list[tuple[str, str]] = []
        mismatches: list[Mismatch] = []
        caught_up: list[str] = []
        resent: list[str] = []
        stopped = ledger_away = False
        for payment_id, txns in by_payment.items():
            self.progressed_at = self.service.ledger.now()
            self._progressed = self._clock()
            if self.stopping.is_set():
                stopped = True
                break
            try:
                report = self.service.reconcile_claimed(payment_id, backoff=self.backoff)
            except Exception as exc:  # noqa: BLE001 - one payment's failure never stops the pass
                errors.append((payment_id, type(exc).__name__))
                unreachable = str(exc) if isinstance(exc, LedgerUnavailable) else self.service.ledger.unavailable(exc)
                if unreachable is not None:
                    # Every payment after it would fail the same way (each waiting for a connection,
                    # two lines each): the pass ends here in one line, and the next one tries again.
                    log.warning("a reconcile pass could not reach the ledger's database: %s", unreachable)
                    ledger_away = True
                    break
                log.warning("reconciling payment %s failed: %s", payment_id, type(exc).__name__)
                self._failed_look(payment_id, txns)
                continue
            if report is None:
                skipped.append(payment_id)
                continue
            for settlement in report.settled:
                log.info("settled transaction %s (%s) %s: %s", settlement.transaction_id, settlement.kind,
                         settlement.status, settlement.note)
            for caught in report.caught_up:
                log.info("read payment %s from the provider, which it owed a read", caught)
            for owed in (s for s in report.unresolved if s.resend):
                resent.append(owed.transaction_id)
                failure = self._resend(owed)
                if failure is not None:
                    errors.append((payment_id, failure))
            settled.extend(report.settled)
            unresolved.extend(report.unresolved)
            marked.extend(report.marked_unknown)
            mismatches.extend(report.mismatches)
            caught_up.extend(report.caught_up)
        applied = 0
        if not self.stopping.is_set() and not ledger_away:
            # An event stored while another worker's uncommitted unit was learning its payment's
            # reference saw neither that reference nor was seen by that unit: match it now.
            # Each event's failure is returned, not raised: those applied beside it are counted.
            try:
                matched = self.service.match_unmatched(self.batch)
            except Exception as exc:  # noqa: BLE001 - e.g. the ledger busy: reported; the next pass tries again
                matched = MatchReport(failures=(("events", exc),))
            applied = matched.applied
            if matched.failures:
                first = type(matched.failures[0][1]).__name__
                log.warning("matching stored events failed %d times, the first: %s", len(matched.failures), first)
                errors.append(("events", first))
        result = PassReport(started, self.service.ledger.now(), tuple(settled), tuple(unresolved), tuple(marked), tuple(skipped),
                            tuple(errors), tuple(mismatches), stopped, applied, tuple(caught_up), skew,
                            tuple(resent))
        self.last_pass, self._passed = result, self._clock()
        if self.on_pass is not None:
            self.on_pass(result)
        return result

    def _resend(self, owed: Settlement) -> str | None:
        """Resend a first operation the provider holds unfinished under its key, after the payment
        was let go (the resend takes the key's lock, so a caller's retry or another worker's
        resend queues behind it: one provider call). The answer is recorded as any resend's: a
        refusal (the authorization voided or expired meanwhile: failed, nothing charged) and a lost
        answer (unknown, reconciled again; so is a sale the provider's search does not show yet)
        are outcomes, logged; None, or why it went wrong."""
        try:
            self.service.resend_unfinished(owed.transaction_id)
        except (Declined, OutcomeUnknown) as exc:
            log.info("resending unfinished %s %s: %s (%s)", owed.kind, owed.transaction_id, type(exc).__name__,
                     exc.code)
        except Exception as exc:  # noqa: BLE001 - one resend's failure never stops the pass
            log.warning("resending unfinished %s %s failed: %s %s", owed.kind, owed.transaction_id,
                        type(exc).__name__, getattr(exc, "code", None) or "")
            return type(exc).__name__
        else:
            log.info("resent unfinished %s %s under its key", owed.kind, owed.transaction_id)
        return None

    def clock_skew(self) -> float | None:
        """Seconds this host's own clock is ahead of the ledger database's (behind: negative),
        taken at the middle of the round trip; None where the database is this host's. The
        service keeps time by the database's (`Ledger.now`): this is what /healthz reports."""
        before = now()
        theirs = self.service.ledger.database_time()
        after = now()
        return None if theirs is None else (before + (after - before) / 2 - theirs).total_seconds()

    def _check_skew(self) -> float | None:
        """Warn, once each time it happens, when this host's clock is further from the database's
        than the service's `margin`: the ledger's decisions go by the database's clock
        (`Ledger.now`), but this host's logs, its webhook signatures' timestamp checks and its
        providers' view of it go by its own."""
        try:
            skew = self.clock_skew()
        except Exception:  # noqa: BLE001 - the ledger out of reach: the pass says so itself
            return None
        allowed = max(self.service.margin, _SKEW_FLOOR)
        skewed = skew is not None and abs(skew) > allowed
        if skewed and not self._skewed:
            log.warning("this host's clock is %+.1f s off the ledger database's, more than the margin (%g s): the "
                        "ledger keeps time by the database's clock, but logs and webhook timestamp checks go by this "
                        "host's; keep the hosts' clocks in step (NTP)", skew, allowed)
        elif self._skewed and not skewed and skew is not None:
            log.info("this host's clock is back within the margin of the ledger database's (%+.1f s)", skew)
        self._skewed = skewed
        return skew

    def _failed_look(self, payment_id: str, txns: list[Transaction]) -> None:
        """A look that failed (the provider or the ledger did not answer, or the payment could not
        be claimed) still counts, so a failing payment is retried on its backoff instead of every
        pass; a pending transaction past its life too (the claim that marks it unknown failed),
        and the payment's owed read.

        Recorded under the payment's lock, from its transactions as they are then: another
        worker's `reconcile()` may have settled them meanwhile (and forgotten their looks), and
        every other writer of a payment's looks takes its lock first, so two never take the
        looks' rows in opposite orders (a deadlock).

        A look still leased (due later than now) was counted by the claim before the read
        (`PaymentService.reconcile_claimed`): it is not counted again, only due on its backoff
        from now instead of at the lease's end."""
        at = self.service.ledger.now()
        ids = {t.id for t in txns}
        try:
            with self.service.ledger.unit() as u:
                u.payment(payment_id, lock=True)
                current = [t for t in u.transactions(payment_id) if t.id in ids and (
                    t.status in (S.UNKNOWN, S.ACCEPTED) or (t.status == S.PENDING and t.expired(at)))]
                looks = u.looks([t.id for t in current])
                u.set_looks({t.id: self._next(t, looks.get(t.id), at) for t in current})
                read = u.owed_read(payment_id)
                if read is not None:
                    u.set_owed_read(payment_id, self._next(None, read, at))
        except Exception:  # noqa: BLE001 - the ledger itself failing: the next pass tries again
            log.warning("could not record the failed look at payment %s", payment_id)

    def _next(self, txn: Transaction | None, look: Look | None, at: datetime) -> Look:
        """The look after a failed one at `at`: `look` counted once, by the claim or here."""
        if look is not None and look.next_at > at:  # claimed: counted before the read
            look = Look(look.looks - 1, look.next_at) if look.looks > 0 else None
        return self.backoff.after(txn, look, at)

    def run(self) -> None:
        """Pass after pass until `stop()`; a failed pass is logged and the next one runs (the
        ledger's database out of reach or busy in one line: an outage or a lock held is no fault
        to trace every pass; only an unexpected error gets its stack trace)."""
        while not self.stopping.is_set():
            try:
                self.run_pass()
            except LedgerBusy as exc:  # another worker holding a lock: expected, retried, no trace
                log.warning("a reconcile pass found the ledger busy; the next pass tries again: %s", exc.message)
            except Exception as exc:
                unreachable = exc.message if isinstance(exc, LedgerUnavailable) else self.service.ledger.unavailable(exc)
                if unreachable is None:
                    log.exception("a reconcile pass failed")
                else:
                    log.warning("a reconcile pass could not reach the ledger's database: %s", unreachable)
            self.stopping.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="paywire-janitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the payment being settled now (never in the middle of one)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def last_pass_age(self) -> float | None:
        """Seconds since the last pass finished; None before the first."""
        if self._passed is None:
            return None
        return max(0.0, self._clock() - self._passed)

    def idle_for(self) -> float | None:
        """Seconds since the Janitor last made progress (began a pass or a payment); a long pass
        that keeps moving is not stale. None before it started."""
        if self._progressed is None:
            return None
        return max(0.0, self._clock() - self._progressed)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

