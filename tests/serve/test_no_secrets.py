"""What `paywire serve` shows the network holds no credential, no card number and no raw signature:
each installed provider's emulator over loopback, the served application under uvicorn with the
shop's service counted, genuine webhooks delivered by the emulator, forged ones carrying secrets in
their signature headers and cards in their bodies, paths naming card numbers and keys, /healthz and
/metrics, with every log record at DEBUG kept and searched. /metrics labels are codes only: a name
a caller gave that the gateway does not know is `unknown`, whatever it holds."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from paywire import Gateway, Money, PaymentService, PaywireError, Plugins, Retry, SQLiteLedger, Subject
from paywire.daemon_pool import DEFAULT_SIZE
from paywire.serve.app import serve_app
from paywire.serve.metrics import Metrics
from paywire.testing.emulator import EmulatorServer
from paywire.testing.leaks import LeakWatch
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire.web import IN_HAND_PER_THREAD, handle_webhook
from tests.ledger.support import PATIENT
from tests.serve.servers import uvicorn_server
from tests.serve.test_endpoints import send

PROVIDERS = ("stripe", "paypal", "braintree")
CARDS = ("4242424242424242", "4111111111111111", "4242 4242 4242 4242", "4111-1111-1111-1111")
SHAPED_KEY = "sk_live_51Hx9QzLmNoPqRsTuV"  # a caller's mistake: a key where a method's name goes
UNKNOWN = "unknown"  # the label of a name the gateway does not know
FORGED = "forged-signature-3c9d1e7a5b"  # what a forged delivery carries as its signature


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> tuple[str, ModuleType]:
    name = str(request.param)
    return name, pytest.importorskip(f"paywire_{name}", reason=f"the {name} plugin is not installed")


class Served:
    def __init__(self, name: str, sandbox: Sandbox, service: PaymentService, metrics: Metrics, port: int) -> None:
        self.name, self.sandbox, self.service, self.metrics, self.port = name, sandbox, service, metrics, port

    def secrets(self) -> list[str]:
        return [*self.sandbox.credentials.values(), SHAPED_KEY, FORGED, *CARDS]


@pytest.fixture
def served(provider: tuple[str, ModuleType], tmp_path: Path) -> Iterator[Served]:
    name, module = provider
    plugins = Plugins()
    plugins.register(module, name=name)
    sandbox = load_sandbox(plugins.gateway(name))
    with EmulatorServer(sandbox.app) as emulator, SQLiteLedger(tmp_path / "ledger.db") as ledger:
        # Every call is to be answered: a loaded machine's slow answer is still an answer.
        gateway = Gateway([sandbox.method(name, emulator.url, **PATIENT)], plugins=plugins,
                          retry=Retry.never())
        service = PaymentService(gateway, ledger, margin=0)
        metrics = Metrics()
        metrics.instrument(service)
        try:
            with uvicorn_server(serve_app(service, janitor=None, metrics=metrics)) as port:
                sandbox.app.webhook_url = f"http://127.0.0.1:{port}/webhooks/{name}"
                yield Served(name, sandbox, service, metrics, port)
        finally:
            gateway.close()


def _forgeries(name: str, sandbox: Sandbox) -> list[tuple[dict[str, str], bytes]]:
    """Deliveries no provider signed: secrets in every header a provider signs with, card numbers
    in a body shaped as the provider's."""
    secret = "|".join(sandbox.credentials.values())
    body = json.dumps({"id": "evt_forged", "type": "charge.refunded", "event_type": "PAYMENT.CAPTURE.REFUNDED",
                       "data": {"object": {"id": "pi_x", "card": CARDS[0]}},
                       "resource": {"id": "CAP-1", "note": CARDS[2]}}).encode()
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t=1700000000,v1={FORGED},v0={secret}",
        "PAYPAL-TRANSMISSION-SIG": f"{FORGED}{secret}",
        "PAYPAL-TRANSMISSION-ID": "0b3a5d9e-forged",
        "PAYPAL-TRANSMISSION-TIME": "2026-01-01T00:00:00Z",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "PAYPAL-CERT-URL": f"https://api.sandbox.paypal.com/v1/notifications/certs/CERT?key={quote(secret)}",
        "Authorization": f"Bearer {secret}",
    }
    public = next(iter(sandbox.credentials.values()))
    form = (f"bt_signature={quote(public)}%7C{FORGED}&bt_payload={quote(CARDS[3])}").encode()
    return [(headers, body), ({"Content-Type": "application/x-www-form-urlencoded"}, form),
            ({**headers, "Stripe-Signature": f"garbage {FORGED} {CARDS[1]}"}, b"\xff\xfe not json " + CARDS[1].encode())]


def test_the_served_endpoints_show_no_secret_card_or_signature(served: Served) -> None:
    watch = LeakWatch()
    name, service, sandbox = served.name, served.service, served.sandbox
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    try:
        with watch.watching():
            paid = service.authorize(name, Money.of("10.00", "EUR"), source=sandbox.sources["ok"])
            service.capture(paid.id, Money.of("6.00", "EUR"))
            service.refund(paid.id, Money.of("2.00", "EUR"))
            with pytest.raises(PaywireError):
                service.sale(name, Money.of("5.00", "EUR"), source=sandbox.sources["decline"])
            assert sandbox.app.wait_for_webhooks(30)
            for method in (SHAPED_KEY, CARDS[2], "stripe_eu"):  # names the gateway does not configure
                with pytest.raises(PaywireError):
                    service.gateway.execute(method, "authorize", Subject(amount=Money.of("1.00", "EUR")))
            with pytest.raises(PaywireError):
                service.gateway.execute(name, f"authorize {CARDS[1]}", Subject(amount=Money.of("1.00", "EUR")))
            # A framework's own route handing the method from its URL on: counted, not under that name.
            status, _, _ = handle_webhook(service, SHAPED_KEY, {}, b"{}", observe=served.metrics.webhook)
            assert status in (404, 500)
            answers = []
            for headers, body in _forgeries(name, sandbox):
                status, _, text = send(served.port, "POST", f"/webhooks/{name}", body, headers)
                assert status in (400, 503), (status, text)
                answers.append(text)
            for path in (f"/webhooks/{CARDS[0]}", f"/webhooks/{quote(CARDS[2])}", f"/webhooks/{SHAPED_KEY}"):
                status, _, text = send(served.port, "POST", path, b"{}", {"Stripe-Signature": FORGED})
                assert status == 404, (path, status)
                answers.append(text)
            health_status, _, health = send(served.port, "GET", "/healthz")
            _, _, exposition = send(served.port, "GET", "/metrics")
    finally:
        urllib3.setLevel(level)
    assert health_status == 200 and json.loads(health)["status"] == "ok"
    for text in [*answers, health]:
        watch.note("an answer of the served application", text.decode())
        assert set(json.loads(text)) <= {"error", "status", "ledger", "janitor", "webhooks"}, text  # a code, never a detail
    assert json.loads(health)["webhooks"] == {"in_hand": 0, "max_in_hand": DEFAULT_SIZE * IN_HAND_PER_THREAD}  # counts only
    watch.note("the /metrics exposition", exposition.decode())
    findings = watch.leaks(served.secrets())
    assert not findings, "secrets showed:\n" + "\n".join(findings)
    # The genuine ones were taken: applied (200), or stored to be applied by the unit recording the
    # answer they outran (202), as a busy machine's threads happen to run.
    assert sandbox.app.webhook_deliveries and all(status in (200, 202) for status, _ in sandbox.app.webhook_deliveries)

    labels = [(sample.name, sample.labels) for family in text_string_to_metric_families(exposition.decode())
              for sample in family.samples]
    methods = {values["method"] for _, values in labels if "method" in values}
    assert methods == {name, UNKNOWN}, methods
    commands = {values["command"] for sample, values in labels if sample == "paywire_operations_total"}
    assert commands <= {*service.gateway.method(name).commands, UNKNOWN}, commands
    unknown = [values for sample, values in labels
               if sample == "paywire_operations_total" and UNKNOWN in (values["method"], values["command"])]
    assert len(unknown) == 2  # three unknown methods are one series, and the free-text command another
    for value in {value for _, values in labels for value in values.values()}:
        assert value not in (paid.id, paid.reference) and " " not in value, value


def test_the_webhook_counter_of_a_service_not_instrumented_labels_its_methods(tmp_path: Path) -> None:
    """serve_app takes the service's method codes as labels whether or not its commands are counted."""
    from paywire import EventKind
    from tests.ledger.fakepay import FakePayApp, make_gateway

    app = FakePayApp()
    metrics = Metrics()
    with EmulatorServer(app) as emulator, SQLiteLedger(tmp_path / "ledger.db") as ledger:
        gateway = make_gateway(emulator.url)
        service = PaymentService(gateway, ledger, margin=0)
        try:
            payment = service.sale("fakepay", Money.of("3.00", "EUR"), source="tok_ok")
            headers, body = app.event("evt_counted", EventKind.REFUNDED, payment.reference or "", total=100)
            with uvicorn_server(serve_app(service, janitor=None, metrics=metrics)) as port:
                status, _, _ = send(port, "POST", "/webhooks/fakepay", body, headers)
                _, _, exposition = send(port, "GET", "/metrics")
        finally:
            gateway.close()
    assert status == 200
    webhooks = [sample.labels for family in text_string_to_metric_families(exposition.decode())
                for sample in family.samples if sample.name == "paywire_webhooks_total"]
    assert webhooks == [{"method": "fakepay", "status": "applied"}]
