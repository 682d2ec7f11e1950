"""docs/serving.md's FastAPI and Flask examples, executed as written and served by real servers
(uvicorn, waitress): the mounted endpoint applies a signed webhook and the app's own route works."""

from __future__ import annotations

import json
import re
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from paywire import EventKind, Money
from paywire.service import PaymentService
from tests.serve.servers import uvicorn_server, waitress_server
from tests.serve.support import CountingFakePay
from tests.serve.test_endpoints import send

pytestmark = [pytest.mark.postgres, pytest.mark.patient]  # its requests need answers, not a short life
DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def _example(framework: str) -> Any:
    (block,) = [b for b in BLOCKS if f"from {framework} import" in b]
    namespace: dict[str, Any] = {"__name__": f"serving_{framework}"}
    exec(compile(block, f"docs/serving.md ({framework})", "exec"), namespace)
    return namespace["create_app"]


@pytest.mark.parametrize(("framework", "server"), [("fastapi", uvicorn_server), ("flask", waitress_server)])
def test_the_documented_app_serves_webhooks_and_its_own_routes(
        framework: str, server: Any, shop: PaymentService, provider: tuple[CountingFakePay, str]) -> None:
    pytest.importorskip(framework, reason=f"{framework} is a test tool of the core and all sessions only")
    app, _ = provider
    payment = shop.sale("fakepay", Money.of("12.00", "EUR"), source="tok_ok")
    headers, body = app.event(f"evt_{framework}", EventKind.REFUNDED, payment.reference or "", total=200)
    context: AbstractContextManager[int] = server(_example(framework)(shop))
    before = set(threading.enumerate())
    with context as port:
        status, _, text = send(port, "POST", "/payments/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)["status"]) == (200, "applied")
        assert send(port, "POST", "/payments/webhooks/fakepay", body, headers)[0] == 200  # duplicate
        assert send(port, "GET", "/payments/webhooks/fakepay")[0] == 405
        assert send(port, "POST", "/payments/webhooks/fakepay", b"{" + b" " * 300_000 + b"}")[0] == 413
        status, _, text = send(port, "GET", f"/orders/{payment.id}")
        assert (status, json.loads(text)) == (200, {"state": "partially_refunded"})
        workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("paywire-webhook")]
        # The ASGI endpoint's threads (a second when the first has not yet gone back to waiting as
        # the next delivery comes); WSGI runs in the server's.
        assert bool(workers) == (framework == "fastapi")
    assert shop.get_payment(payment.id).refunded == Money.of("2.00", "EUR")
    for worker in workers:  # ended by the app's lifespan, with its ledger connection
        worker.join(30)
        assert not worker.is_alive()
