"""The outcome model as data: each transaction status, what puts a transaction there, and what
settles it. docs/ledger.md shows `outcome_table()` as it is (a test keeps the two equal), so the
documentation and the code that moves transactions cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple

from paywire.ledger.model import TransactionStatus

__all__ = ["OUTCOME_MODEL", "Outcome", "outcome_table"]

S = TransactionStatus


class Outcome(NamedTuple):
    status: str
    enters: str  # what puts a transaction there
    leaves: str  # what settles it ("final" when nothing does)
    money: str  # how the money rules count it


OUTCOME_MODEL: tuple[Outcome, ...] = (
    Outcome(S.PENDING,
            "recorded (durably) after the rules and a rehearsal passed, before the request leaves",
            "the request's answer; past its `settle_after` (its worker stopped) it becomes unknown",
            "in flight"),
    Outcome(S.SUCCEEDED,
            "the provider's success answer; reconcile finding it done, or listing a capture or refund made outside "
            "paywire (reconcile records it); a webhook naming it",
            "final (it may still learn its provider reference)",
            "counted"),
    Outcome(S.ACTION_REQUIRED,
            "the provider waits for the buyer (3-D Secure, approval)",
            "final for this transaction; `complete()` records the next one",
            "not counted"),
    Outcome(S.ACCEPTED,
            "the provider took the request and decides later (Stripe `processing`, PayPal `PENDING`); a "
            "refund made outside paywire that the provider holds undecided (its event, or reconcile, lists it), "
            "or such a capture (its event, or reconcile)",
            "a webhook naming its reference, or reconcile reading the provider's decision",
            "in flight"),
    Outcome(S.UNKNOWN,
            "no usable answer after the request may have left: a timeout, a dropped connection, a "
            "5xx, an error inside the pipeline; or pending past its `settle_after`",
            "the request's own late answer; a retry under its key; reconcile (fetch); a webhook; for a vault, "
            "the caller (`settle_vault`)",
            "in flight"),
    Outcome(S.FAILED,
            "evidence the provider did not and will not apply it: a decline, a validation, "
            "authentication or rate-limit error, a connection never made, a 5xx the provider "
            "says was not applied, a failure webhook; reconcile finding it absent after its `settle_after`",
            "final, except that the request's own late answer overrules reconcile's conclusion",
            "not counted"),
)


def outcome_table() -> str:
    """The model as the Markdown table docs/ledger.md shows."""
    lines = ["| status | what puts a transaction there | what settles it | money rules |", "|---|---|---|---|"]
    lines += [f"| `{o.status}` | {o.enters} | {o.leaves} | {o.money} |" for o in OUTCOME_MODEL]
    return "\n".join(lines) + "\n"
