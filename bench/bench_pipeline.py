"""Pipeline overhead: one command through the whole paywire pipeline, next to raw urllib3
sending the same bytes to the same canned local server, in one run."""

from __future__ import annotations

import json
from collections.abc import Callable

import urllib3

from bench.canned_server import canned_server
from bench.timing import Row, median_latency, ratio_rows
from paywire import (
    JSON,
    BearerAuth,
    CommandContext,
    ErrorMapper,
    GatewayCommand,
    HandlerChain,
    Money,
    Plugins,
    Response,
    Result,
    Retry,
    Secret,
    Subject,
    TransferFactory,
    ValidatorComposite,
)
from paywire.http.client import Urllib3Client

BODY = json.dumps({"id": "pay_123", "status": "authorized", "amount": 1999, "currency": "EUR"}).encode()


def ok(subject: Subject, response: Response) -> Result:
    return Result.success() if response.ok else Result.failure("failed", "error")


def pipeline_call(url: str) -> Callable[[], object]:
    """A JSON POST with auth, an idempotency key, a validator and a handler, through paywire."""
    command = GatewayCommand(
        builder=[lambda s: {"amount": s.amount.minor, "currency": s.amount.currency, "source": s.source}],  # type: ignore[union-attr]
        transfer_factory=TransferFactory(url, "POST", "/v1/payments", auth=BearerAuth(Secret("bench_key_123")),
                                         converter=JSON, idempotency_header="Idempotency-Key"),
        validator=ValidatorComposite([ok]),
        error_mapper=ErrorMapper("bench"),
        handler=HandlerChain([lambda s, r: {"reference": r.data["id"], "state": r.data["status"]}]),
    )
    context = CommandContext("bench", "bench", "authorize", Urllib3Client(pool_size=32), Plugins(), Retry())
    subject = Subject(amount=Money.of("19.99", "EUR"), source="tok_ok", idempotency_key="bench-key")
    return lambda: command.execute(subject, context)


def raw_call(url: str) -> Callable[[], object]:
    """The same request with urllib3 alone, as an application without paywire would send it."""
    pool = urllib3.PoolManager(retries=False, maxsize=32)
    payload = JSON.encode({"amount": 1999, "currency": "EUR", "source": "tok_ok"})
    headers = {"Authorization": "Bearer bench_key_123", "Content-Type": "application/json",
               "Accept": "application/json", "Idempotency-Key": "bench-key"}

    def raw() -> object:
        response = pool.urlopen("POST", url + "/v1/payments", body=payload, headers=headers, retries=False)
        return json.loads(response.data)

    return raw


def run() -> list[Row]:
    with canned_server(BODY) as url:
        medians = median_latency({"raw urllib3": raw_call(url), "paywire pipeline": pipeline_call(url)})
    return ratio_rows("pipeline (one command, canned server)", medians, "raw urllib3", {"paywire pipeline": "<= 1.10"})


if __name__ == "__main__":
    for row in run():
        print(row)
