"""`paywire demo`: the payment flows a shop needs, run offline against every installed provider's
emulator, through the payment service with a SQLite ledger, with a readable report.

Each flow checks what it expects, in the ledger and at the provider (`fetch`); the demo exits
non-zero when any flow misbehaves, so it doubles as an end-to-end check of an installation.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from paywire.cli.output import emit_json, table
from paywire.errors import ConfigurationError, Declined, OutcomeUnknown, PaywireError
from paywire.money import Money

if TYPE_CHECKING:
    from paywire.ledger.model import Payment
    from paywire.service.payments import PaymentService
    from paywire.testing.emulator import EmulatorApp
    from paywire.testing.sandbox import Sandbox

CURRENCY = "EUR"
DEMO_ORDERS = "demo-"  # every payment the demo makes has an order id starting so


class FlowFailed(AssertionError):
    """A flow did not do what a shop expects."""


@attrs.frozen
class FlowResult:
    provider: str
    flow: str
    ok: bool
    outcome: str
    ledger: str = "-"
    provider_state: str = "-"


@attrs.define
class Run:
    """One provider's demo: its method, sandbox and served emulator."""

    method: str
    sandbox: Sandbox
    app: EmulatorApp
    service: PaymentService
    results: list[FlowResult] = attrs.field(factory=list)

    def money(self, amount: str) -> Money:
        return Money.of(amount, CURRENCY)

    def settle_buyer_action(self, payment: Payment) -> Payment:
        """Act as the buyer when the provider asks (3-D Secure, approval), then complete."""
        if payment.state == "action_required":
            if payment.action is None:
                raise FlowFailed("the payment needs buyer action but names no redirect URL")
            self.sandbox.act_as_buyer(payment.action.redirect_url)
            payment = self.service.complete(payment.id)
        return payment

    def provider_view(self, payment: Payment) -> str:
        fetched = self.service.gateway.execute(self.method, "fetch", _fetch_subject(payment))
        return f"{fetched.state}: captured {_amount(fetched.captured)}, refunded {_amount(fetched.refunded)}"

    def agree(self, payment: Payment) -> str:
        """The provider's view, after checking it agrees with the ledger's totals."""
        fetched = self.service.gateway.execute(self.method, "fetch", _fetch_subject(payment))
        for name in ("captured", "refunded"):
            theirs, ours = getattr(fetched, name), getattr(payment, name)
            if theirs is not None and theirs != ours:
                raise FlowFailed(f"the ledger says {name} {ours}, the provider says {theirs}")
        return f"{fetched.state}: captured {_amount(fetched.captured)}, refunded {_amount(fetched.refunded)}"


def _fetch_subject(payment: Payment) -> Any:
    from paywire.subject import Subject

    return Subject(reference=payment.references.get("payment") or payment.reference, flow=payment.flow)


def _amount(money: Money | None) -> str:
    return "-" if money is None else str(money)


def _ledger(payment: Payment) -> str:
    return f"{payment.state}: captured {payment.captured}, refunded {payment.refunded}"


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise FlowFailed(message)


# -- the flows ----------------------------------------------------------------------------------
def flow_authorize_capture_refund(run: Run) -> tuple[str, Payment]:
    # `pay`, as a shop's checkout places an order: the demo's methods keep the default payment
    # action, "authorize", so the payment waits for its capture (at shipping).
    payment = run.settle_buyer_action(run.service.pay(run.method, run.money("40.00"), source=run.sandbox.sources["ok"],
                                                      order_id=f"{DEMO_ORDERS}{run.method}-1"))
    _expect(payment.captured.minor == 0, f"captured {payment.captured} by a pay whose payment action is authorize")
    _expect(payment.authorized == run.money("40.00"), f"authorized {payment.authorized}, expected 40.00 {CURRENCY}")
    payment = run.service.capture(payment.id, run.money("25.00"))
    _expect(payment.captured == run.money("25.00"), f"captured {payment.captured}, expected 25.00 {CURRENCY}")
    payment = run.service.refund(payment.id, run.money("10.00"))
    _expect(payment.refunded == run.money("10.00"), f"refunded {payment.refunded}, expected 10.00 {CURRENCY}")
    return "paid as authorized 40.00, captured 25.00, refunded 10.00", payment


def flow_sale(run: Run) -> tuple[str, Payment]:
    payment = run.settle_buyer_action(run.service.sale(run.method, run.money("12.50"), source=run.sandbox.sources["ok"],
                                                       order_id=f"{DEMO_ORDERS}{run.method}-2"))
    _expect(payment.captured == run.money("12.50"), f"captured {payment.captured} after a sale of 12.50")
    return "captured 12.50 at once", payment


def flow_void(run: Run) -> tuple[str, Payment]:
    payment = run.settle_buyer_action(run.service.authorize(run.method, run.money("30.00"), source=run.sandbox.sources["ok"],
                                                            order_id=f"{DEMO_ORDERS}{run.method}-3"))
    payment = run.service.void(payment.id)
    _expect(payment.state == "voided", f"state {payment.state} after a void")
    return "authorization released", payment


def flow_declined(run: Run) -> tuple[str, Payment | None]:
    try:
        payment = run.settle_buyer_action(run.service.authorize(
            run.method, run.money("20.00"), source=run.sandbox.sources["decline"], order_id=f"{DEMO_ORDERS}{run.method}-4"))
    except Declined as error:
        _expect(not error.retryable, "a decline was marked retryable")
        stored = run.service.get_payment(error.payment_id) if error.payment_id else None
        return f"declined ({error.decline_code or error.code}), not retryable", stored
    raise FlowFailed(f"a card that must be declined was accepted: {payment.state}")


def flow_buyer_action(run: Run) -> tuple[str, Payment]:
    payment = run.service.authorize(run.method, run.money("55.00"), source=run.sandbox.sources["buyer_action"],
                                    order_id=f"{DEMO_ORDERS}{run.method}-5", return_url="https://shop.example/return")
    _expect(payment.state == "action_required", f"state {payment.state}; the buyer should have been asked to act")
    payment = run.settle_buyer_action(payment)
    _expect(payment.authorized == run.money("55.00"), f"authorized {payment.authorized} after the buyer acted")
    return "buyer redirected, challenge passed, authorized 55.00", payment


def flow_vaulted(run: Run) -> tuple[str, Payment]:
    from paywire.subject import Customer

    vaulted = run.service.vault(run.method, run.sandbox.sources["vault"], customer=Customer(email="buyer@example.com"))
    token = vaulted.token
    _expect(bool(token), "vaulting returned no token")
    payment = run.service.charge_vaulted(run.method, str(token), run.money("9.99"),
                                         customer=Customer(email="buyer@example.com", reference=vaulted.provider_reference),
                                         order_id=f"{DEMO_ORDERS}{run.method}-6")
    _expect(payment.captured == run.money("9.99"), f"captured {payment.captured} from the vaulted method")
    return "stored for later, then charged 9.99 without the buyer", payment


def flow_reconcile_timeout(run: Run) -> tuple[str, Payment]:
    from paywire.testing.emulator import Fault

    payment = run.settle_buyer_action(run.service.authorize(run.method, run.money("70.00"), source=run.sandbox.sources["ok"],
                                                            order_id=f"{DEMO_ORDERS}{run.method}-7"))
    # Every attempt of the capture takes effect at the provider, but no answer comes back.
    run.app.inject(Fault("drop_after", path="capture", method="POST", times=5))
    try:
        run.service.capture(payment.id, run.money("70.00"))
        raise FlowFailed("the capture answered although the connection was dropped")
    except OutcomeUnknown:
        pass
    finally:
        run.app.clear_faults()
    # The provider's webhook may already have told the ledger; reconciliation asks the provider.
    report = run.service.reconcile(payment_id=payment.id)
    payment = run.service.get_payment(payment.id)
    _expect(payment.captured == run.money("70.00"), f"after reconciliation captured {payment.captured}, expected 70.00")
    unknown = run.service.list_transactions(payment.id, statuses=["unknown", "pending"])
    _expect(not unknown, f"{len(unknown)} transactions still unsettled")
    return f"capture answer lost; settled ({len(report.settled)} by reconciliation), charged once", payment


FLOWS: list[tuple[str, Callable[[Run], tuple[str, Any]], str | None]] = [
    ("pay (authorize), partial capture, partial refund", flow_authorize_capture_refund, None),
    ("sale", flow_sale, "sale"),
    ("void", flow_void, "void"),
    ("declined card", flow_declined, None),
    ("3-D Secure / buyer approval", flow_buyer_action, "buyer_action"),
    ("vaulted method charged", flow_vaulted, "vault"),
    ("timeout settled by reconciliation", flow_reconcile_timeout, None),
]


def run_flows(run: Run, progress: Callable[[str], None]) -> None:
    capabilities = run.service.gateway.method(run.method).capabilities
    for name, flow, capability in FLOWS:
        if capability and not getattr(capabilities, capability):
            continue
        if capability == "vault" and "vault" not in run.sandbox.sources:
            continue
        progress(f"[{run.method}] {name} ...")
        try:
            outcome, payment = flow(run)
            ledger = _ledger(payment) if payment is not None else "-"
            provider = run.agree(payment) if payment is not None and payment.reference else "-"
            run.results.append(FlowResult(run.method, name, True, outcome, ledger, provider))
        except (FlowFailed, PaywireError) as error:
            run.results.append(FlowResult(run.method, name, False, f"FAILED: {error}"))
        except Exception as error:  # noqa: BLE001 - a broken flow is reported, the others still run
            run.results.append(FlowResult(run.method, name, False, f"FAILED: {type(error).__name__}: {error}"))


# -- webhooks -----------------------------------------------------------------------------------
@contextmanager
def webhook_receiver(service: PaymentService) -> Iterator[str]:
    """The ledger's WSGI webhook endpoint served on loopback for the emulators to call."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from paywire.web import webhook_wsgi

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Threaded(WSGIServer):
        daemon_threads = True

        def process_request(self, request: Any, client_address: Any) -> None:
            thread = threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True)
            thread.start()

        def _serve_one(self, request: Any, client_address: Any) -> None:
            try:
                self.finish_request(request, client_address)
            finally:
                self.shutdown_request(request)

    server = make_server("127.0.0.1", 0, webhook_wsgi(service), server_class=Threaded, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks"
    finally:
        server.shutdown()
        server.server_close()


def webhook_results(runs: list[Run], service: PaymentService, timeout: float = 10.0) -> list[FlowResult]:
    """Wait for the emulators' webhook deliveries and report how the ledger applied them."""
    deadline = time.monotonic() + timeout
    results = []
    for run in runs:
        run.app.wait_for_webhooks(max(0.0, deadline - time.monotonic()))
        with run.app.lock:
            delivered = list(run.app.webhook_deliveries)
        accepted = sum(1 for status, _ in delivered if status in (200, 202))
        refused = [status for status, _ in delivered if status not in (200, 202)]
        events = service.ledger.list_events(limit=10_000)
        applied = sum(1 for e in events if e.method == run.method and e.status == "applied")
        ok = bool(delivered) and not refused and applied > 0
        outcome = f"{len(delivered)} signed events delivered, {accepted} accepted, {applied} applied to payments"
        if refused:
            outcome += f", refused with {sorted(set(map(str, refused)))}"
        results.append(FlowResult(run.method, "webhooks received and applied", ok, outcome))
    return results


# -- the command --------------------------------------------------------------------------------
def _refuse_a_shops_ledger(path: Path) -> None:
    """Refuse a `--ledger-file` holding payments the demo did not make (the shop's own ledger,
    named by mistake), before anything opens it to write: the demo's payments, captured and
    refunded at emulators under the shop's method codes, would be listed and reconciled as real
    ones, and opening the file would migrate a ledger of an older release. What cannot be read
    here is left to the ledger to report."""
    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'paywire_payments'"
                              ).fetchone():
                return
            found = db.execute("SELECT id FROM paywire_payments WHERE order_id IS NULL OR substr(order_id, 1, ?) != ? "
                               "LIMIT 1", (len(DEMO_ORDERS), DEMO_ORDERS)).fetchone()
    except sqlite3.Error:
        return
    if found:
        raise ConfigurationError(f"--ledger-file {str(path)!r} holds payments the demo did not make ({found[0]} among "
                                 "them): it is a shop's ledger, which the demo's payments would mix with; give a "
                                 "new file's path, or that of a demo ledger kept before")


def run(args: argparse.Namespace) -> int:
    from paywire.config import MethodConfig
    from paywire.gateway import Gateway
    from paywire.ledger.sqlite import SQLiteLedger
    from paywire.plugins import default_plugins
    from paywire.service.payments import PaymentService
    from paywire.testing.emulator import EmulatorServer
    from paywire.testing.sandbox import load_sandbox

    def progress(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    plugins = default_plugins()
    definitions = [d for _, d in sorted(plugins.gateways().items()) if d.sandbox]
    if not definitions:  # raised, so that `main` prints it as any error (JSON under --json)
        raise ConfigurationError("no installed gateway plugin ships a sandbox emulator; install one, e.g. "
                                 "pip install ./plugins/stripe")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paywire-demo-")))
        ledger_path = Path(args.ledger_file) if args.ledger_file else folder / "demo.db"
        _refuse_a_shops_ledger(ledger_path)
        try:
            ledger = stack.enter_context(SQLiteLedger(str(ledger_path)))
        except (sqlite3.Error, OSError) as exc:  # the caller's path: not an error inside paywire
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigurationError(f"--ledger-file {str(ledger_path)!r}: cannot open it as a ledger ({reason}); "
                                     "give a new file's path, or that of a demo ledger kept before") from None
        sandboxes = {}
        methods: list[MethodConfig] = []
        for definition in definitions:
            sandbox = load_sandbox(definition)
            server = stack.enter_context(EmulatorServer(sandbox.app))
            sandboxes[definition.code] = sandbox
            methods.append(sandbox.method(definition.code, server.url, read_timeout=5.0))
            progress(f"started the {definition.title} emulator on {server.url}")
        gateway = stack.enter_context(Gateway(methods, plugins=plugins))
        service = PaymentService(gateway, ledger)
        receiver = stack.enter_context(webhook_receiver(service))
        runs = []
        for code, sandbox in sandboxes.items():
            sandbox.app.webhook_url = f"{receiver}/{code}"
            runs.append(Run(code, sandbox, sandbox.app, service))
        progress(f"ledger: SQLite at {ledger_path}")
        for one in runs:
            run_flows(one, progress)
        progress("waiting for webhook deliveries ...")
        results = [r for one in runs for r in one.results] + webhook_results(runs, service)

    failed = [r for r in results if not r.ok]
    if args.json:
        emit_json({"ok": not failed, "flows": [attrs.asdict(r) for r in results]})
    else:
        print()
        table(["provider", "flow", "result", "outcome", "ledger", "at the provider"],
              [(r.provider, r.flow, "ok" if r.ok else "FAILED", r.outcome, r.ledger, r.provider_state) for r in results])
        print()
        print(f"{len(results) - len(failed)} of {len(results)} flows behaved"
              + ("" if not failed else f"; {len(failed)} misbehaved"))
    return 1 if failed else 0
