"""Ledger overhead: one payment operation through the payment service (recorded pending before
sending, outcome after) on SQLite and on PostgreSQL, next to the bare pipeline (the same gateway
command without a ledger), against the same fast local server, in one run.

Run alone with `python -m bench.bench_ledger [--json PATH]`; `run()` returns the rows for a
combined runner. PostgreSQL rows are left out, with a note, when no server is reachable
(`PAYWIRE_BENCH_POSTGRES`, default postgresql://postgres@127.0.0.1:5432/test).

Reading the ratios: a ledger operation is two SQLite transactions (about ten statements, two
commits) and the Python that builds, checks and summarises the records. The bare contender
sends its requests back to back, which keeps the loopback server (and the caches) warm; any
work between two requests, a ledger's included, makes the next request itself slower. The
machine is shared: compare ratios within one run, and repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs

from bench.canned_server import canned_server
from bench.floor import Floor, postgres_floor, sqlite_floor
from bench.timing import Row, median_latency
from paywire import (
    JSON,
    BearerAuth,
    Capabilities,
    CommandPool,
    ErrorMapper,
    Gateway,
    GatewayCommand,
    GatewayDefinition,
    GatewaySettings,
    HandlerChain,
    MethodConfig,
    Money,
    PaymentService,
    Plugins,
    ProviderState,
    Response,
    Result,
    Retry,
    Subject,
    TransferFactory,
    ValidatorComposite,
    WebhookEvent,
    hookimpl,
)
from paywire.ledger import Ledger, SQLiteLedger
from paywire.ledger.postgres import PostgresLedger

BODY = json.dumps({"id": "pay_{seq}", "status": "authorized", "amount": 1999, "currency": "EUR"}).encode()  # a new id each
PG_DSN = os.environ.get("PAYWIRE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
AMOUNT = Money.of("19.99", "EUR")
ROUNDS, PER_ROUND, WARMUP = 7, 150, 50
GROUP = "ledger overhead (one operation, canned server)"


def _ok(subject: Subject, response: Response) -> Result:
    return Result.success() if response.ok else Result.failure("failed", "error")


def _fetched(subject: Subject, response: Response) -> dict[str, Any]:
    """The canned payment, authorized, as `fetch` reports it (what reconciliation reads)."""
    data, zero = response.data, Money(0, "EUR")
    amount = Money(data["amount"], data["currency"])
    return {"state": ProviderState.AUTHORIZED, "reference": data["id"], "references": {"payment": data["id"]},
            "amount": amount, "authorized": amount, "captured": zero, "refunded": zero}


def _verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    """Events as `{"id", "kind", "reference"}` JSON; the bench measures the ledger, not a signature."""
    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        data = json.loads(body)
        return WebhookEvent(provider=settings.provider, id=data["id"], type=data["kind"], kind=data["kind"],
                            reference=data["reference"], references={"payment": data["reference"]})
    return verify


def _build(settings: GatewaySettings) -> CommandPool:
    def command(path: str, handler: Callable[[Subject, Response], Any], method: str = "POST") -> GatewayCommand:
        return GatewayCommand(
            builder=[lambda s: {"amount": s.amount.minor if s.amount else None, "source": s.source}],
            transfer_factory=TransferFactory(settings.base_url, method, path, auth=BearerAuth(settings.secret("api_key")),
                                             converter=JSON, idempotency_header="Idempotency-Key"),
            validator=ValidatorComposite([_ok]), error_mapper=ErrorMapper(settings.provider),
            handler=HandlerChain([handler]),
        )

    return CommandPool({
        "authorize": command("/v1/payments", lambda s, r: {"reference": r.data["id"], "state": r.data["status"],
                                                           "references": {"payment": r.data["id"]}}),
        "capture": command("/v1/payments/pay_123/capture", lambda s, r: {"reference": r.data["id"], "amount": s.amount}),
        "fetch": command("/v1/payments/pay_123", _fetched, method="GET"),
    }, gateway=settings.gateway)


class _BenchPlugin:
    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(GatewayDefinition(code="benchpay", title="Bench", build=_build,
                                   capabilities=Capabilities(capture_multiple=True, webhooks=True),
                                   endpoints={"sandbox": "http://127.0.0.1:9"}, webhook=_verifier))


def _gateway(url: str) -> Gateway:
    plugins = Plugins()
    plugins.register(_BenchPlugin(), "benchpay")
    config = MethodConfig(code="benchpay", base_url=url, credentials={"api_key": "bench_key_123"})
    return Gateway([config], plugins=plugins, retry=Retry.never())


def _postgres(stack: ExitStack) -> tuple[PostgresLedger | None, str | None]:
    try:
        import psycopg
    except ImportError:
        return None, "psycopg not installed"
    schema = f"pwbench_{secrets.token_hex(4)}"
    try:
        ledger = PostgresLedger(PG_DSN, schema=schema)
    except psycopg.OperationalError as exc:
        return None, f"no PostgreSQL server ({str(exc).strip().splitlines()[0]})"

    def drop() -> None:
        ledger.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    stack.callback(drop)
    return ledger, None


def _feed(service: PaymentService, count: int) -> Iterator[str]:
    """Authorized payments, made ahead, for timing one capture each."""
    ids = [service.authorize("benchpay", AMOUNT, source="tok_ok").id for _ in range(count)]
    return iter(ids)


@attrs.frozen
class _Setup:
    """Everything the contenders share: the canned server's gateway, the ledgers and the floors."""

    gateway: Gateway
    services: dict[str, PaymentService]
    floors: dict[str, Floor]
    keys: Iterator[int] = attrs.field(factory=lambda: iter(range(10**9)))

    def bare(self, operation: str) -> Callable[[], object]:
        """The gateway command alone, a fresh key per call."""
        def call() -> object:
            key = f"bench-{next(self.keys)}"
            if operation == "authorize":
                subject = Subject(amount=AMOUNT, source="tok_ok", idempotency_key=key)
            else:
                subject = Subject(amount=AMOUNT, reference="pay_123", idempotency_key=key)
            return self.gateway.execute("benchpay", operation, subject)
        return call

    def contenders(self, operation: str, needed: int) -> dict[str, Callable[[], object]]:
        """`operation` by every contender; a capture's payments are authorized first, `needed` each."""
        bare_authorize, bare_capture = self.bare("authorize"), self.bare("capture")
        calls: dict[str, Callable[[], object]] = {
            "bare pipeline": bare_authorize if operation == "authorize" else bare_capture}
        for name, service in self.services.items():
            if operation == "authorize":
                calls[f"{name} ledger"] = lambda service=service: service.authorize("benchpay", AMOUNT, source="tok_ok")
            else:
                feed = _feed(service, needed)
                calls[f"{name} ledger"] = lambda service=service, feed=feed: service.capture(next(feed), AMOUNT)
        for name, floor in self.floors.items():
            if operation == "authorize":
                calls[f"{name} plain-driver floor"] = lambda floor=floor: floor.authorize(bare_authorize)
            else:
                payments = iter([floor.authorize(bare_authorize) for _ in range(needed)])
                calls[f"{name} plain-driver floor"] = (
                    lambda floor=floor, payments=payments: floor.capture(next(payments), bare_capture))
        return calls


def _setup(stack: ExitStack, *, full: bool = True) -> tuple[_Setup, str | None]:
    """The gateway on a canned server, and the ledgers: SQLite, and with `full` SQLite FULL and
    PostgreSQL (when reachable), each with its floor."""
    url = stack.enter_context(canned_server(BODY))
    gateway = _gateway(url)
    stack.callback(gateway.close)
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    ledgers: dict[str, Ledger] = {"SQLite": SQLiteLedger(directory / "bench.db")}  # synchronous=NORMAL, the default
    if full:
        ledgers["SQLite FULL"] = SQLiteLedger(directory / "bench-full.db", synchronous="FULL")
    for ledger in ledgers.values():
        stack.callback(ledger.close)
    floors: dict[str, Floor] = {"SQLite": sqlite_floor(str(SQLiteLedger(directory / "floor.db").path))}
    postgres, why = _postgres(stack) if full else (None, None)
    if postgres is not None:
        ledgers["PostgreSQL"] = postgres
        floor_ledger, _ = _postgres(stack)  # the same schema, in a schema of its own
        assert floor_ledger is not None
        floors["PostgreSQL"] = postgres_floor(PG_DSN, floor_ledger.schema or "public")
    for floor in floors.values():
        stack.callback(floor.close)
    return _Setup(gateway, {name: PaymentService(gateway, ledger) for name, ledger in ledgers.items()}, floors), why


@contextmanager
def contenders(operation: str, needed: int) -> Iterator[dict[str, Callable[[], object]]]:
    """The SQLite contenders of `operation` alone ("bare", "SQLite ledger", "SQLite floor"), for
    bench_instructions."""
    with ExitStack() as stack:
        setup, _ = _setup(stack, full=False)
        calls = setup.contenders(operation, needed)
        yield {"bare": calls["bare pipeline"], "SQLite ledger": calls["SQLite ledger"],
               "SQLite floor": calls["SQLite plain-driver floor"]}


def run() -> list[Row]:
    rows: list[Row] = []
    needed = WARMUP + ROUNDS * PER_ROUND
    with ExitStack() as stack:
        setup, why = _setup(stack)
        for operation in ("authorize", "capture"):
            medians = median_latency(setup.contenders(operation, needed), rounds=ROUNDS, per_round=PER_ROUND,
                                     warmup=WARMUP)
            base = medians["bare pipeline"]
            group = f"{GROUP}: {operation}"
            for name, value in medians.items():
                rows.append(Row(group, name, value * 1e6, "us/op", value / base, "bare pipeline"))
            for name, limit in (("SQLite", "<= 2.0"), ("PostgreSQL", "<= 1.3")):
                if f"{name} plain-driver floor" in medians:
                    ours = medians[f"{name} ledger"] - base
                    floor_cost = medians[f"{name} plain-driver floor"] - base
                    rows.append(Row(group, f"{name}: ledger overhead / floor overhead", ours * 1e6, "us/op",
                                    ours / floor_cost, f"floor {floor_cost * 1e6:.0f} us", limit))
        if why:
            rows.append(Row(f"{GROUP}: note", f"PostgreSQL skipped: {why}", 0.0, "-"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("results-ledger.json"))
    args = parser.parse_args(argv)
    rows = run()
    print(f"{'operation':<58} {'contender':<22} {'median':>14} {'ratio':>7}  target")
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        print(f"{row.group:<58} {row.name:<22} {row.value:>8.1f} {row.unit:<5} {ratio:>7}  {row.target or ''}")
    args.json.write_text(json.dumps([attrs.asdict(row) for row in rows], indent=2) + "\n")
    print(f"results written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
