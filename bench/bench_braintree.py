"""Braintree authorize through paywire next to raw urllib3 posting the same GraphQL document,
against one canned authorizePaymentMethod answer, in one run.

Two paywire rows: without an idempotency key the command sends the mutation alone; with one it
first searches for a transaction carrying that key (Braintree's published API deduplicates no
mutation), so it sends two requests where raw urllib3 sends one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import urllib3

import paywire_braintree
from bench.canned_server import canned_server
from bench.timing import Row, median_latency, ratio_rows
from paywire import Gateway, Money, Order, Plugins, Retry, Subject
from paywire_braintree.documents import AUTHORIZE
from paywire_braintree.transfer import BRAINTREE_VERSION

PUBLIC, PRIVATE = "bench_public", "bench_private_key"
TRANSACTION = {
    "id": "dHJhbnNhY3Rpb25fYmVuY2g", "legacyId": "bench", "orderId": "A-1001", "status": "AUTHORIZED",
    "createdAt": "2026-01-01T00:00:00.000Z", "amount": {"value": "19.99", "currencyCode": "EUR"},
    "merchantAccountId": "paywire_eur", "customFields": [], "paymentMethod": None, "customer": None,
    "statusHistory": [{"__typename": "AuthorizedEvent", "status": "AUTHORIZED", "timestamp": "2026-01-01T00:00:00Z",
                       "amount": {"value": "19.99", "currencyCode": "EUR"},
                       "processorResponse": {"legacyCode": "1000", "message": "Approved"}}],
    "refunds": [], "partialCaptureDetails": None,
}
BODY = json.dumps({"data": {"authorizePaymentMethod": {"transaction": TRANSACTION}},
                   "extensions": {"requestId": "bench"}}).encode()


def paywire_call(url: str, key: str | None) -> Callable[[], object]:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    method = {"provider": "braintree", "environment": "sandbox", "base_url": url,
              "credentials": {"public_key": PUBLIC, "private_key": PRIVATE},
              "options": {"merchant_accounts": {"EUR": "paywire_eur"}}}
    gateway = Gateway.from_config({"methods": {"braintree": method}}, plugins=plugins, retry=Retry.never())
    subject = Subject(amount=Money.of("19.99", "EUR"), source="fake-valid-nonce", order=Order(id="A-1001"),
                      idempotency_key=key)
    return lambda: gateway.execute("braintree", "authorize", subject)


def raw_call(url: str) -> Callable[[], object]:
    """The same mutation with urllib3 alone, as an application without paywire would send it."""
    pool = urllib3.PoolManager(retries=False, maxsize=32)
    variables = {"input": {"paymentMethodId": "fake-valid-nonce",
                           "transaction": {"amount": "19.99", "merchantAccountId": "paywire_eur", "orderId": "A-1001"}}}
    payload = json.dumps({"query": AUTHORIZE, "variables": variables}, separators=(",", ":")).encode()
    pair = base64.b64encode(f"{PUBLIC}:{PRIVATE}".encode()).decode()
    headers = {"Authorization": f"Basic {pair}", "Braintree-Version": BRAINTREE_VERSION,
               "Content-Type": "application/json", "Accept": "application/json"}

    def raw() -> object:
        response = pool.urlopen("POST", url + "/graphql", body=payload, headers=headers, retries=False)
        return json.loads(response.data)["data"]["authorizePaymentMethod"]["transaction"]["id"]

    return raw


@contextmanager
def contenders() -> Iterator[dict[str, Callable[[], object]]]:
    """Each contender's call, against one canned server (bench_instructions counts them too)."""
    with canned_server(BODY) as url:
        yield {
            "raw urllib3": raw_call(url),
            "paywire": paywire_call(url, None),
            "paywire, keyed (search, then the mutation)": paywire_call(url, "order-A-1001-auth"),
        }


def run() -> list[Row]:
    with contenders() as calls:
        assert {call() if name == "raw urllib3" else call().reference  # type: ignore[attr-defined]
                for name, call in calls.items()} == {TRANSACTION["id"]}
        medians = median_latency(calls, rounds=11, per_round=200)
    return ratio_rows("Braintree authorize (canned GraphQL answer)", medians, "raw urllib3", {"paywire": "<= 1.10"})


if __name__ == "__main__":
    for row in run():
        print(row)
