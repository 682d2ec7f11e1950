"""The command line's operations on payments, methods, plugins and webhooks."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from paywire.cli import EXIT_BUYER_ACTION, EXIT_OK
from paywire.cli.output import emit_json, table, text
from paywire.errors import Declined, InvalidRequest, OutcomeUnknown
from paywire.ledger.model import PaymentState
from paywire.money import Money

if TYPE_CHECKING:
    from paywire.gateway import Gateway
    from paywire.ledger.model import Payment, Transaction
    from paywire.service.payments import PaymentService
    from paywire.service.reconcile import ReconcileReport

DEFAULT_LEDGER = "sqlite:///paywire.db"


def gateway(args: argparse.Namespace) -> Gateway:
    from paywire.gateway import Gateway

    return Gateway.from_config(args.config)


def service(args: argparse.Namespace, *, create: bool = False, checked: Gateway | None = None) -> PaymentService:
    """The payment service on the configured ledger. Only a command that starts payments (or
    waits for them: `serve`) passes `create`: any other acts on payments already recorded, so a
    ledger URL naming no ledger (a mistyped path or schema) is a configuration error, and nothing
    is created there. A command that starts a payment passes the gateway it `checked` the
    operation on first (`_refuse_early`): one refused opens, and so creates, no ledger."""
    from paywire.ledger.url import open_ledger
    from paywire.service.payments import PaymentService

    gw = checked or gateway(args)
    url = next((value for value in (args.ledger, os.environ.get("PAYWIRE_LEDGER"), gw.settings.get("ledger"))
                if value is not None), DEFAULT_LEDGER)  # an empty value given is refused, not skipped
    return PaymentService(gw, open_ledger(str(url), create=create))


def payment_view(payment: Payment) -> dict[str, Any]:
    view = {
        "id": payment.id, "method": payment.method, "state": payment.state, "amount": payment.amount,
        "authorized": payment.authorized, "captured": payment.captured, "refunded": payment.refunded,
        "reference": payment.reference, "order_id": payment.order_id, "token": payment.token,
    }
    if payment.action is not None:  # kind: a redirect, or what the provider's client SDK does (no URL)
        view["action"], view["redirect_url"] = payment.action.kind, payment.action.redirect_url
    return view


def transaction_view(txn: Transaction) -> dict[str, Any]:
    return {
        "id": txn.id, "payment_id": txn.payment_id, "kind": txn.kind, "amount": txn.amount, "status": txn.status,
        "idempotency_key": txn.idempotency_key, "provider_reference": txn.provider_reference,
        "error_code": txn.error_code, "error_message": txn.error_message, "created_at": txn.created_at,
        "settle_after": txn.settle_after if txn.open else None,
    }


def show_payment(args: argparse.Namespace, payment: Payment) -> int:
    """Print the payment an operation left; one waiting for the buyer (3-D Secure, approval) is
    exit 8, not 0: nothing is paid yet."""
    view = payment_view(payment)
    if args.json:
        emit_json(view)
    else:
        table(["field", "value"], view.items())
    return EXIT_BUYER_ACTION if payment.state == PaymentState.ACTION_REQUIRED else EXIT_OK


def _transactions_table(transactions: list[Transaction]) -> None:
    table(["transaction", "kind", "amount", "status", "provider reference", "error"],
          [(t.id, t.kind, t.amount, t.status, t.provider_reference, t.error_code) for t in transactions])


@contextmanager
def settling(svc: PaymentService) -> Iterator[None]:
    """An unknown outcome told as what to do about it: run the same command again with the key it
    was sent with (the provider applies a key once), or reconcile. The key is named because running
    an `authorize` or `sale` again without one is a new payment, charged a second time."""
    # SIGTERM arrives as Ctrl-C does (`paywire.cli.main`): told, not a silent death that leaves a
    # script nothing but to run it again without its key.
    try:
        yield
    except KeyboardInterrupt as stop:  # while the provider was asked (the service names what it left unknown)
        if "transaction_id" not in vars(stop):
            raise
        unknown = OutcomeUnknown("interrupted while the provider was asked: the operation may have been applied, "
                                 "so its outcome is unknown", code="interrupted")
        unknown.payment_id, unknown.transaction_id = vars(stop)["payment_id"], vars(stop)["transaction_id"]
        _advise(svc, unknown, vars(stop).get("idempotency_key"))
        raise unknown from None
    except OutcomeUnknown as error:
        _advise(svc, error)
        raise


def _advise(svc: PaymentService, error: OutcomeUnknown, key: str | None = None) -> None:
    """Add to `error` what settles it: the key to run the same command again with, or reconcile.
    A ledger that cannot be read (the very reason an outcome may be unknown; a stop that cut its
    connection short) leaves the error as the payment service told it, which names the key too,
    or names `key`, the key a stop carries: the unknown outcome is what is reported."""
    try:
        txn = svc.ledger.get_transaction(error.transaction_id) if error.transaction_id else None
    except Exception:  # noqa: BLE001 - never hide the unknown outcome behind the ledger's error
        txn = None
    if txn is None:
        if key:
            error.message += (f"; to settle it, run the same command again with --idempotency-key {key} (the "
                              "provider applies it once), or run 'paywire reconcile' once it can no longer land")
            error.details["idempotency_key"] = key
        return
    reconcile = f"'paywire reconcile --payment-id {txn.payment_id}'" if txn.payment_id else "'paywire reconcile'"
    if error.code == "idempotency_key_expired":  # sending it again could apply it twice
        error.message += f"; run {reconcile}"
    else:
        error.message += (f"; to settle it, run the same command again with --idempotency-key "
                          f"{txn.idempotency_key} (the provider applies it once), or run {reconcile} "
                          f"after {txn.settle_after:%Y-%m-%d %H:%M:%S} UTC (when it can no longer land)")
        error.details["idempotency_key"] = txn.idempotency_key


# -- plugins and methods ------------------------------------------------------------------------
def plugins(args: argparse.Namespace) -> int:
    """The gateways the installed plugins register, then any plugin that failed to load: exit 3
    then (a configuration error), so a deployment check sees a broken install."""
    from paywire.plugins import default_plugins

    loaded = default_plugins()
    rows = []
    for code, definition in sorted(loaded.gateways().items()):
        owner = loaded.owner(code)
        caps = [name for name, on in definition.capabilities._asdict().items() if on]
        rows.append({"gateway": code, "title": definition.title,
                     "distribution": owner.distribution if owner else None, "version": owner.version if owner else None,
                     "capabilities": caps, "currencies": sorted(definition.currencies) if definition.currencies else "all",
                     "secrets": list(definition.secrets)})
    failures = [{"plugin": f.name, "distribution": f.distribution, "reason": f.reason} for f in loaded.failures]
    broken = 3 if failures else 0
    if args.json:
        emit_json({"gateways": rows, "failures": failures})
        return broken
    if rows:
        table(["gateway", "title", "distribution", "version", "capabilities"],
              [(r["gateway"], r["title"], r["distribution"], r["version"], r["capabilities"]) for r in rows])
    else:
        allowed = os.environ.get("PAYWIRE_PLUGINS")
        if allowed is not None:
            print(f"No gateway plugins loaded: PAYWIRE_PLUGINS={allowed!r} allows none of the installed ones "
                  "(names separated by commas or spaces; unset it to load every plugin)")
        else:
            print("No gateway plugins installed. Install one, e.g.: pip install ./plugins/stripe")
    for failure in failures:
        print(f"failed to load {failure['plugin']} ({failure['distribution']}): {failure['reason']}", file=sys.stderr)
    return broken


def methods(args: argparse.Namespace) -> int:
    gw = gateway(args)
    amount = None
    if args.amount is not None:
        if not args.currency:
            raise InvalidRequest("--amount needs --currency, e.g. --amount 19.99 --currency EUR", param="currency")
        amount = Money.of(args.amount, args.currency)
        _require_positive(amount)
    available = {m.code for m in gw.available_methods(country=args.country,
                                                      currency=args.currency if args.currency else None,
                                                      amount=amount)}
    rows = [{"method": m.code, "provider": m.provider, "title": m.title or m.code, "active": m.active,
             "sort_order": m.sort_order, "payment_action": m.payment_action, "environment": m.environment,
             "available": m.code in available} for m in gw.methods]
    if args.json:
        emit_json(rows)
    else:
        table(["method", "provider", "title", "action", "environment", "sort", "available"],
              [(r["method"], r["provider"], r["title"], r["payment_action"], r["environment"], r["sort_order"],
                r["available"]) for r in rows])
    return 0


# -- payments -----------------------------------------------------------------------------------
def initial(args: argparse.Namespace) -> int:
    amount = Money.of(args.amount, args.currency)  # a bad amount opens (or creates) no ledger
    gw = gateway(args)
    _refuse_early(gw, args, amount)
    svc = service(args, create=True, checked=gw)
    operation = {"pay": svc.pay, "authorize": svc.authorize, "sale": svc.sale}[args.operation]
    with settling(svc):
        payment = operation(args.method, amount, source=args.source, order_id=args.order_id,
                            idempotency_key=args.idempotency_key, return_url=args.return_url)
    return show_payment(args, payment)


def _require_positive(amount: Money) -> None:
    if amount.minor <= 0:
        raise InvalidRequest(f"the amount must be above zero, got {amount}; write a positive amount such as "
                             "19.99; nothing was recorded or sent", param="amount")


def _refuse_early(gw: Gateway, args: argparse.Namespace, amount: Money) -> None:
    """Raise what the payment service would refuse this first operation for before sending (an
    amount of zero or less, a method that does not offer it, a currency or total it does not
    take, a card number as the source), before the ledger is opened: a refused operation creates
    no ledger, as it records nothing. The rehearsal sends nothing."""
    from paywire.errors import UnsupportedOperation
    from paywire.service.inputs import require_indexed, require_not_empty, require_source
    from paywire.subject import Order, Subject

    _require_positive(amount)
    require_source(args.source)
    require_indexed(args.order_id, "order_id")
    require_not_empty(args.order_id, "order_id")
    require_not_empty(args.return_url, "return_url")
    gw.prepare(args.method)
    method = gw.method(args.method)
    kind = args.operation
    if kind == "pay":
        kind = "sale" if method.config.payment_action == "authorize_capture" else "authorize"
    if not getattr(method.capabilities, kind):
        configured = f" is configured with payment_action = {method.config.payment_action!r} but"
        raise UnsupportedOperation(f"payment method {args.method!r}{configured if args.operation == 'pay' else ''} "
                                   f"does not support {kind}; nothing was recorded or sent", code=f"no_{kind}")
    order = Order(id=args.order_id, amount=amount) if args.order_id else None
    gw.rehearse(args.method, kind, Subject(amount=amount, source=args.source, order=order,
                                           return_url=args.return_url, idempotency_key=args.idempotency_key))


def complete(args: argparse.Namespace) -> int:
    """Finish a payment the buyer acted on; one the buyer has not finished yet is exit 8, with
    where to send them (the last redirect the provider gave, if its answer to this one has none)."""
    from paywire.errors import BuyerActionRequired

    svc = service(args)
    before = svc.get_payment(args.payment_id)
    with settling(svc):
        payment = svc.complete(args.payment_id, idempotency_key=args.idempotency_key)
    if payment.state != PaymentState.ACTION_REQUIRED:
        return show_payment(args, payment)
    url = (payment.action.redirect_url if payment.action else "") or (
        before.action.redirect_url if before.action else "")
    error = BuyerActionRequired(
        "the buyer has not finished (approval or 3-D Secure) yet: "
        + (f"send them to {url}, then run " if url else "run ")
        + f"'paywire complete {payment.id}' again", redirect_url=url or None, code="buyer_action_pending")
    error.payment_id = payment.id
    raise error


def _amount(svc: PaymentService, payment_id: str, value: str | None) -> Money | None:
    if value is None:
        return None
    return Money.of(value, svc.get_payment(payment_id).currency)


def capture(args: argparse.Namespace) -> int:
    svc = service(args)
    amount = _amount(svc, args.payment_id, args.amount)
    with settling(svc):
        payment = svc.capture(args.payment_id, amount, final=args.final, idempotency_key=args.idempotency_key)
    return show_payment(args, payment)


def void(args: argparse.Namespace) -> int:
    svc = service(args)
    with settling(svc):
        payment = svc.void(args.payment_id, reason=args.reason, idempotency_key=args.idempotency_key)
    return show_payment(args, payment)


def refund(args: argparse.Namespace) -> int:
    svc = service(args)
    amount = _amount(svc, args.payment_id, args.amount)
    with settling(svc):
        payment = svc.refund(args.payment_id, amount, reason=args.reason, idempotency_key=args.idempotency_key)
    return show_payment(args, payment)


def show(args: argparse.Namespace) -> int:
    svc = service(args)
    payment = svc.get_payment(args.payment_id)
    transactions = svc.list_transactions(payment.id)
    if args.json:
        emit_json({**payment_view(payment), "transactions": [transaction_view(t) for t in transactions]})
        return 0
    table(["field", "value"], payment_view(payment).items())
    print()
    _transactions_table(transactions)
    return 0


def payments(args: argparse.Namespace) -> int:
    svc = service(args)
    found = svc.list_payments(method=args.method, state=args.state, limit=args.limit)
    if args.json:
        emit_json([payment_view(p) for p in found])
    else:
        table(["payment", "method", "state", "amount", "captured", "refunded", "order"],
              [(p.id, p.method, p.state, p.amount, p.captured, p.refunded, p.order_id) for p in found])
    return 0


def transactions(args: argparse.Namespace) -> int:
    svc = service(args)
    if args.payment_id is not None:
        svc.get_payment(args.payment_id)  # a mistyped id is an error (as for `show`), not "no transactions"
    found = svc.list_transactions(args.payment_id, statuses=args.status)
    if args.json:
        emit_json([transaction_view(t) for t in found])
    else:
        _transactions_table(found)
    return 0


def _finish_unfinished(svc: PaymentService, report: ReconcileReport) -> tuple[ReconcileReport, list[str]]:
    """Resend under its key each first operation the pass found made but unfinished at the
    provider (`Settlement.resend`: a Braintree sale authorized, never submitted for settlement),
    as the Janitor does (`PaymentService.resend_unfinished`), so a shop running this from cron
    instead of `paywire serve` has the sale finished before its authorization lapses. Each
    outcome is recorded from the provider's answer only (a refusal: failed; a lost answer:
    unknown, open), and the report says where each transaction now stands."""
    from paywire.errors import PaywireError
    from paywire.security import redact
    from paywire.service.reconcile import Settlement

    settled, unresolved, errors, resent = list(report.settled), [], list(report.errors), []
    for owed in report.unresolved:
        if not owed.resend:
            unresolved.append(owed)
            continue
        resent.append(owed.transaction_id)
        try:
            svc.resend_unfinished(owed.transaction_id)
        except PaywireError as exc:  # an outcome (a refusal, a lost answer) is read below; the rest go on
            if not isinstance(exc, (Declined, OutcomeUnknown)):
                errors.append((owed.transaction_id, f"{type(exc).__name__}: {redact(str(exc))}"))
        txn = svc.get_transaction(owed.transaction_id)
        if txn.open:
            unresolved.append(owed)
        else:
            settled.append(Settlement(txn.id, txn.payment_id, txn.kind, txn.status,
                                      f"resent under its idempotency key: {txn.status} as the provider answered"))
    return attrs.evolve(report, settled=tuple(settled), unresolved=tuple(unresolved), errors=tuple(errors)), resent


def reconcile(args: argparse.Namespace) -> int:
    svc = service(args)
    report, resent = _finish_unfinished(svc, svc.reconcile(payment_id=args.payment_id))
    settled = [{"transaction": s.transaction_id, "payment": s.payment_id, "kind": s.kind, "status": s.status,
                "note": s.note} for s in report.settled]
    unresolved = [{"transaction": s.transaction_id, "payment": s.payment_id, "kind": s.kind, "note": s.note}
                  for s in report.unresolved]
    mismatches = [{"payment": m.payment_id, "total": m.field, "ledger": f"{m.ledger.format()} {m.ledger.currency}",
                   "provider": f"{m.provider.format()} {m.provider.currency}"} for m in report.mismatches]
    if args.json:
        emit_json({"marked_unknown": list(report.marked_unknown), "settled": settled, "unresolved": unresolved,
                   "errors": [list(e) for e in report.errors], "events_applied": report.events_applied,
                   "mismatches": mismatches, "caught_up": list(report.caught_up), "resent": resent})
    else:
        print(f"{len(settled)} settled, {len(unresolved)} still open, {len(report.errors)} errors, "
              f"{len(mismatches)} totals differing from the provider's, "
              f"{report.events_applied} waiting webhook events applied, "
              f"{len(report.caught_up)} payments read that owed a read or waited for their buyer"
              + (f", {len(resent)} unfinished at the provider resent under their idempotency key" if resent else ""))
        if settled or unresolved:
            table(["transaction", "payment", "kind", "outcome", "note"],
                  [(s["transaction"], s["payment"], s["kind"], s.get("status", "open"), s["note"])
                   for s in settled + unresolved])
        if mismatches:
            table(["payment", "total", "ledger", "provider"],
                  [(m["payment"], m["total"], m["ledger"], m["provider"]) for m in mismatches])
        for where, why in report.errors:
            print(f"could not reconcile {where}: {why}")
    return 0 if report.clean else 5


def _headers(args: argparse.Namespace) -> dict[str, str]:
    """The webhook's headers from `--header` and the `--headers` file. A line not in 'Name: value'
    form is named by where it is, never quoted: it may be a signature or a secret pasted there."""
    headers: dict[str, str] = {}
    lines = [(f"--header number {i}", line) for i, line in enumerate(args.header, 1)]
    if args.headers:
        try:
            content = _read(args.headers, "headers").decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"headers file {args.headers!r} is not UTF-8 text", param="headers") from None
        if content.lstrip().startswith("{"):
            try:
                loaded = json.loads(content)
            except ValueError as exc:
                raise InvalidRequest(f"headers file {args.headers!r} is not a JSON object: {exc}",
                                     param="headers") from None
            headers.update({str(k): str(v) for k, v in loaded.items()})
        else:
            lines.extend((f"line {n} of headers file {args.headers!r}", line)
                         for n, line in enumerate(content.splitlines(), 1))
    for where, line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise InvalidRequest(f"{where} is not in 'Name: value' form", param="header")
        headers[name.strip()] = value.strip()
    return headers


def _read(path: str, param: str) -> bytes:
    """A file named on the command line: one it cannot read is a bad argument (exit 2), and so is
    one larger than any webhook, read no further (`/dev/zero`, a stream that does not end)."""
    from paywire.gateway import MAX_WEBHOOK_BYTES

    try:
        with open(path, "rb") as file:
            data = file.read(MAX_WEBHOOK_BYTES + 1)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {param} file {path!r}: {exc.strerror}", param=param) from None
    if len(data) > MAX_WEBHOOK_BYTES:
        raise InvalidRequest(f"{param} file {path!r} is larger than {MAX_WEBHOOK_BYTES} bytes, the most a webhook "
                             "may be; give the request exactly as received", param=param)
    return data


def verify_webhook(args: argparse.Namespace) -> int:
    gw = gateway(args)
    event = gw.parse_webhook(args.method, _headers(args), _read(args.body, "body"))
    view = {"provider": event.provider, "id": event.id, "type": event.type, "kind": event.kind,
            "reference": event.reference, "references": dict(event.references), "amount": event.amount}
    if args.json:
        emit_json(view)
    else:
        print("verified")
        table(["field", "value"], [(k, text(v)) for k, v in view.items()])
    return 0
