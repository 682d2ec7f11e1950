"""Settlement as Braintree does it: submitted captures settle in a batch (on request here), a
refund waits for settlement, a pending settlement is an "accepted" result decided later, and the
emulator's signed notifications are read by Braintree's own SDK and settle the ledger."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import braintree
import pytest

import paywire_braintree
from paywire import (
    Gateway,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentService,
    Plugins,
    ProviderState,
    SQLiteLedger,
    StateError,
    Subject,
)
from paywire.ledger import PaymentState
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.transfer import BRAINTREE_VERSION

EUR = "EUR"


class Inbox:
    """A loopback endpoint collecting the webhooks the emulator posts."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with inbox.arrived:
                    inbox.bodies.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    inbox.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/braintree"

    def wait(self, count: int) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.bodies) >= count, timeout=10), "no webhook arrived"
            return list(self.bodies)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.server.shutdown()
    box.server.server_close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SQLiteLedger]:
    """The ledger of a test's payment service, closed after the test."""
    ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
    yield ledger
    ledger.close()


def served_gateway(sandbox: Sandbox, settlement: str) -> Iterator[tuple[Gateway, BraintreeEmulator, str]]:
    app = sandbox.app
    assert isinstance(app, BraintreeEmulator)
    app.settlement = settlement
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(app) as server, Gateway([sandbox.method("braintree", server.url)], plugins=plugins) as gateway:
        yield gateway, app, server.url


@pytest.fixture
def batch(sandbox: Sandbox) -> Iterator[tuple[Gateway, BraintreeEmulator, str]]:
    yield from served_gateway(sandbox, "batch")


@pytest.fixture
def pending(sandbox: Sandbox) -> Iterator[tuple[Gateway, BraintreeEmulator, str]]:
    yield from served_gateway(sandbox, "pending")


def _service(served: tuple[Gateway, BraintreeEmulator, str], ledger: SQLiteLedger,
             inbox: Inbox | None = None) -> tuple[PaymentService, BraintreeEmulator]:
    """A payment service on the served gateway and the test's ledger, and the emulator it talks to,
    posting its notifications to `inbox` when one is given."""
    gateway, emulator, _ = served
    if inbox is not None:
        emulator.webhook_url = inbox.url
    return PaymentService(gateway, ledger), emulator


def _settled_sale(service: PaymentService, emulator: BraintreeEmulator, inbox: Inbox, amount: str, order_id: str,
                  key: str) -> Payment:
    """A sale under `key`, settled in the batch, its notification (the inbox's first) received."""
    payment = service.sale("braintree", Money.of(amount, EUR), source="fake-valid-nonce", order_id=order_id,
                           idempotency_key=key)
    emulator.settle(payment.reference or "")
    service.receive_webhook("braintree", *inbox.wait(1)[0])
    return payment


def sale(gateway: Gateway, key: str, amount: str = "50.00") -> Any:
    return gateway.execute("braintree", "sale", Subject(amount=Money.of(amount, EUR), source="fake-valid-nonce",
                                                        idempotency_key=key))


def graphql(url: str, emulator: BraintreeEmulator, query: str, variables: dict[str, Any]) -> Any:
    pair = base64.b64encode(f"{emulator.public_key}:{emulator.private_key}".encode()).decode()
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Authorization": f"Basic {pair}", "Braintree-Version": BRAINTREE_VERSION,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_refund_waits_for_settlement_which_the_sandbox_mutation_brings(
    batch: tuple[Gateway, BraintreeEmulator, str]
) -> None:
    gateway, emulator, url = batch
    sold = sale(gateway, "batch-sale")
    assert sold.state == ProviderState.CAPTURED  # submitted for settlement: Braintree holds the capture
    with pytest.raises(InvalidRequest) as refused:  # a part of it (all of it would be reversed: voided)
        gateway.execute("braintree", "refund", Subject(reference=sold.reference, amount=Money.of("10.00", EUR),
                                                       idempotency_key="early"))
    assert refused.value.code == "91506"
    answer = graphql(url, emulator, "mutation S($input: SandboxSettleTransactionInput!) { sandboxSettleTransaction("
                                    "input: $input) { transaction { id status } } }",
                     {"input": {"transactionId": sold.reference, "settlementState": "SETTLED"}})
    assert answer["data"]["sandboxSettleTransaction"]["transaction"]["status"] == "SETTLED"
    refund = gateway.execute("braintree", "refund", Subject(reference=sold.reference, idempotency_key="after"))
    assert refund.amount == Money.of("50.00", EUR)


def test_the_emulator_refuses_documents_outside_braintrees_schema(batch: tuple[Gateway, BraintreeEmulator, str]) -> None:
    _, emulator, url = batch
    answer = graphql(url, emulator, "query { node(id: \"x\") { ... on Transaction { notAField } } }", {})
    assert answer["data"] is None if "data" in answer else True
    assert answer["errors"][0]["extensions"]["errorClass"] == "VALIDATION"
    assert "notAField" in answer["errors"][0]["message"]


def test_a_pending_settlement_is_accepted_counted_nowhere_and_decided_later(
    pending: tuple[Gateway, BraintreeEmulator, str]
) -> None:
    gateway, emulator, _ = pending
    sold = sale(gateway, "pending-sale")
    assert sold.status == "accepted" and sold.state == ProviderState.PROCESSING
    fetched = gateway.execute("braintree", "fetch", Subject(reference=sold.reference))
    assert (fetched.state, fetched.authorized, fetched.captured) == (
        ProviderState.PROCESSING, Money.zero(EUR), Money.zero(EUR))
    emulator.settle(sold.reference)
    assert gateway.execute("braintree", "fetch", Subject(reference=sold.reference)).captured == Money.of("50.00", EUR)
    declined = sale(gateway, "pending-declined")
    emulator.settle(declined.reference, "SETTLEMENT_DECLINED")
    assert gateway.execute("braintree", "fetch", Subject(reference=declined.reference)).state == ProviderState.FAILED


def test_the_emulators_notifications_are_braintrees_as_its_sdk_reads_them(
    pending: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox
) -> None:
    gateway, emulator, _ = pending
    emulator.webhook_url = inbox.url
    sold = sale(gateway, "sdk-sale")
    emulator.settle(sold.reference)
    headers, body = inbox.wait(1)[0]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    fields = dict(parse_qsl(body.decode()))
    sdk = braintree.BraintreeGateway(braintree.Configuration(braintree.Environment.Sandbox, merchant_id="m",
                                                             public_key=emulator.public_key,
                                                             private_key=emulator.private_key))
    notification = sdk.webhook_notification.parse(fields["bt_signature"], fields["bt_payload"])
    assert notification.kind == "transaction_settled"
    assert notification.transaction.id == emulator.transactions[sold.reference].legacy
    event = gateway.parse_webhook("braintree", headers, body)
    assert (event.kind, event.reference, event.amount) == ("captured", sold.reference, Money.of("50.00", EUR))


def test_the_payment_service_records_a_pending_sale_accepted_and_braintrees_notification_settles_it(
    pending: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger
) -> None:
    service, emulator = _service(pending, ledger, inbox)
    payment = service.sale("braintree", Money.of("25.00", EUR), source="fake-valid-nonce", order_id="B-1",
                           idempotency_key="service-sale")
    assert [t.status for t in service.list_transactions(payment.id)] == ["accepted"]
    assert service.get_payment(payment.id).captured == Money.zero(EUR)
    emulator.settle(payment.reference or "")
    headers, body = inbox.wait(1)[0]
    receipt = service.receive_webhook("braintree", headers, body)
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    for _ in range(2):  # the notification settles it; reconciling afterwards agrees and changes nothing
        settled = service.get_payment(payment.id)
        assert (settled.state, settled.captured) == ("captured", Money.of("25.00", EUR))
        assert [t.status for t in service.list_transactions(payment.id)] == ["succeeded"]
        assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_pending_refund_is_accepted_and_its_notification_settles_it_in_the_ledger(
    pending: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger
) -> None:
    service, emulator = _service(pending, ledger, inbox)
    payment = _settled_sale(service, emulator, inbox, "30.00", "B-2", "refund-sale")
    payment = service.refund(payment.id, Money.of("12.00", EUR))
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.kind, refund.status, payment.refunded) == ("refund", "accepted", Money.zero(EUR))
    emulator.settle(refund.provider_reference or "")
    receipt = service.receive_webhook("braintree", *inbox.wait(2)[1])
    assert receipt.status == "applied"
    settled = service.get_payment(payment.id)
    assert (settled.state, settled.refunded) == ("partially_refunded", Money.of("12.00", EUR))
    assert service.get_transaction(refund.id).status == "succeeded"
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_refund_braintree_failed_is_undone_in_the_ledger_when_notified_as_its_sdk_does(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger
) -> None:
    """Braintree's own refund_failed notification (its SDK's sample, signed with the method's key
    pair) has no `<type>credit</type>`; it is about the refund all the same."""
    service, emulator = _service(batch, ledger, inbox)
    payment = _settled_sale(service, emulator, inbox, "50.00", "B-6", "failed-refund-sale")
    payment = service.refund(payment.id, Money.of("12.00", EUR), idempotency_key="failed-refund")
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.kind, refund.status, payment.refunded) == ("refund", "succeeded", Money.of("12.00", EUR))
    sdk = braintree.BraintreeGateway(braintree.Configuration(braintree.Environment.Sandbox, merchant_id="m",
                                                             public_key=emulator.public_key,
                                                             private_key=emulator.private_key))
    legacy = emulator.transactions[refund.provider_reference or ""].legacy
    notification = sdk.webhook_testing.sample_notification("refund_failed", legacy)
    receipt = service.receive_webhook("braintree", {"content-type": "application/x-www-form-urlencoded"},
                                      urlencode(notification).encode())
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    assert service.get_payment(payment.id).refunded == Money.zero(EUR)


@pytest.mark.parametrize("notified", [True, False])
@pytest.mark.parametrize("operation", ["sale", "capture"])
def test_a_sale_or_capture_braintree_declines_at_settlement_is_undone_in_the_ledger(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger, operation: str, notified: bool
) -> None:
    """Answered SUBMITTED_FOR_SETTLEMENT, which the ledger records as captured, then declined in
    the settlement batch: the notification undoes it, and the ledger agrees with Braintree."""
    service, emulator = _service(batch, ledger, inbox)
    if operation == "sale":
        payment = service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="B-7",
                               idempotency_key="declined-sale")
        expected = (PaymentState.FAILED, Money.zero(EUR), Money.zero(EUR))
    else:
        payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                    order_id="B-8", idempotency_key="declined-auth")
        payment = service.capture(payment.id, Money.of("20.00", EUR), final=False)
        expected = (PaymentState.AUTHORIZED, Money.of("50.00", EUR), Money.zero(EUR))
    submitted = service.list_transactions(payment.id)[-1]
    assert payment.captured == submitted.amount  # counted once submitted
    emulator.settle(submitted.provider_reference or "", "SETTLEMENT_DECLINED")
    if notified:
        receipt = service.receive_webhook("braintree", *inbox.wait(1)[0])
        assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    else:  # the notification lost: reconciliation reads it
        service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == expected
    assert [t.kind for t in service.list_transactions(payment.id)][-1] == "reversal"
    assert not service.reconcile(payment_id=payment.id).mismatches


@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_a_replayed_capture_or_refund_braintree_declined_at_settlement_is_not_recorded_as_moved_money(
    batch: tuple[Gateway, BraintreeEmulator, str], ledger: SQLiteLedger, kind: str
) -> None:
    """The answer lost, the batch declines what the request made after it was submitted: it took
    effect and was undone. The retry under its key answers the success it was, and the payment is
    read: the request is recorded succeeded and reversed, and no money is counted as moved."""
    service, emulator = _service(batch, ledger)
    if kind == "capture":
        payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                    order_id="B-3", idempotency_key="declined-capture-auth")
        operation, path = service.capture, "partialcapture"
    else:
        payment = service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="B-4",
                               idempotency_key="declined-refund-sale")
        emulator.settle(payment.reference or "")
        operation, path = service.refund, "refundtransaction"
    emulator.inject(Fault(kind="drop_after", path=path))
    with pytest.raises(OutcomeUnknown):  # Braintree made it; its answer was lost
        operation(payment.id, Money.of("20.00", EUR), idempotency_key=f"lost-{kind}")
    made = [t for t in emulator.transactions.values() if t.order_id == f"lost-{kind}"]
    assert len(made) == 1 and made[0].status == "SUBMITTED_FOR_SETTLEMENT"
    emulator.settle(made[0].id, "SETTLEMENT_DECLINED")  # the processor refused it at settlement
    # the retry under its key finds it made, then declined: it took effect, and is undone
    recorded = operation(payment.id, Money.of("20.00", EUR), idempotency_key=f"lost-{kind}")
    assert (recorded.captured, recorded.refunded) == (
        (Money.zero(EUR), Money.zero(EUR)) if kind == "capture" else (Money.of("50.00", EUR), Money.zero(EUR)))
    assert recorded == service.get_payment(payment.id)
    *_, lost, reversal = service.list_transactions(payment.id)
    assert (lost.idempotency_key, lost.status, lost.provider_reference) == (f"lost-{kind}", "succeeded", made[0].id)
    assert (reversal.kind, reversal.parent_id) == ("reversal", lost.id)
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_replayed_sale_braintree_declined_at_settlement_is_undone_not_a_capture(
    batch: tuple[Gateway, BraintreeEmulator, str], ledger: SQLiteLedger
) -> None:
    """The sale's answer lost, the batch declines it after it was submitted: the retry under its
    key answers the sale it was, and the payment is read: the sale recorded succeeded and
    reversed, the payment failed, nothing authorized or captured."""
    service, emulator = _service(batch, ledger)
    emulator.inject(Fault(kind="drop_after", path="chargePaymentMethod"))
    with pytest.raises(OutcomeUnknown):  # Braintree charged; its answer was lost
        service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="B-5",
                     idempotency_key="lost-sale")
    (made,) = emulator.transactions.values()
    emulator.settle(made.id, "SETTLEMENT_DECLINED")  # the processor refused it at settlement
    # the retry under its key finds it made, then declined: it took effect, and is undone
    payment = service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="B-5",
                           idempotency_key="lost-sale")
    txn, reversal = service.list_transactions()
    assert (txn.status, reversal.kind, reversal.parent_id) == ("succeeded", "reversal", txn.id)
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.FAILED, Money.zero(EUR),
                                                                     Money.zero(EUR))
    assert payment == service.get_payment(txn.payment_id or "")
    assert not service.reconcile(payment_id=payment.id).mismatches


@pytest.mark.parametrize("notified", [True, False])
def test_a_whole_capture_declined_at_settlement_leaves_nothing_held(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger, notified: bool
) -> None:
    """A capture of all that was authorized declined in the settlement batch: nothing is captured,
    and the authorization it consumed can be neither captured again nor voided (Braintree refuses
    both). Its notification, which says only that the capture was declined, makes the service
    read the payment, as reconciliation does: released, as an expired authorization, and no
    capture or void is sent for a hold Braintree no longer has."""
    service, emulator = _service(batch, ledger, inbox)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-9", idempotency_key="declined-whole-auth")
    payment = service.capture(payment.id)
    submitted = service.list_transactions(payment.id)[-1]
    emulator.settle(submitted.provider_reference or "", "SETTLEMENT_DECLINED")
    if notified:  # the only word of it: no reconciliation runs
        receipt = service.receive_webhook("braintree", *inbox.wait(1)[0])
        assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    else:
        service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    fetched = service.gateway.execute("braintree", "fetch", Subject(reference=payment.reference))
    assert (fetched.state, fetched.captured) == (ProviderState.VOIDED, Money.zero(EUR))
    count = len(service.list_transactions(payment.id))
    for operation in (lambda: service.capture(payment.id), lambda: service.void(payment.id)):
        with pytest.raises(StateError):  # refused before sending: Braintree holds nothing to act on
            operation()
    assert len(service.list_transactions(payment.id)) == count
    assert not service.reconcile(payment_id=payment.id).mismatches
    assert service.get_payment(payment.id).state == PaymentState.VOIDED


def test_a_declined_capture_whose_notification_read_failed_is_read_by_the_next_reconcile(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger
) -> None:
    """As above, but Braintree cannot be read when the notification arrives: the event stands
    applied and the payment, as recorded, offers to capture a hold Braintree no longer has. The
    payment owes a read, and the next `reconcile()`, which names no payment, makes it."""
    service, emulator = _service(batch, ledger, inbox)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-10", idempotency_key="declined-unread")
    payment = service.capture(payment.id)
    emulator.settle(service.list_transactions(payment.id)[-1].provider_reference or "", "SETTLEMENT_DECLINED")
    emulator.inject(Fault(kind="status", status=500, path="/graphql", contains="node(id", times=100))
    receipt = service.receive_webhook("braintree", *inbox.wait(1)[0])
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    assert service.get_payment(payment.id).capturable == Money.of("50.00", EUR)  # not read: as recorded
    emulator.clear_faults()
    report = service.reconcile()
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    assert report.caught_up == (payment.id,) and report.clean, report


@pytest.mark.parametrize(("outcomes", "expected"), [
    (("SETTLEMENT_DECLINED", "SETTLEMENT_DECLINED"), (PaymentState.VOIDED, "0.00", "0.00")),
    (("SETTLED", "SETTLEMENT_DECLINED"), (PaymentState.CAPTURED, "20.00", "0.00")),
])
def test_captures_that_asked_for_all_of_an_authorization_the_last_declined_are_read_as_reconciliation_does(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger, outcomes: tuple[str, str],
    expected: tuple[str, str, str],
) -> None:
    """Two captures of an authorization, the second of what the first left, the second declined
    at settlement: its notification alone brings the ledger to what reconciliation reads. Both
    declined, they consumed the authorization: nothing held, nothing to capture. The first
    settled, it stands, and nothing is left to capture: the second, of all that was left, closed
    the authorization, which Braintree then refuses to capture again (91507)."""
    service, emulator = _service(batch, ledger, inbox)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-11", idempotency_key=f"asked-all-{outcomes[0]}")
    for number, (amount, outcome) in enumerate(zip(("20.00", "30.00"), outcomes, strict=True), 1):
        payment = service.capture(payment.id, Money.of(amount, EUR), final=False)
        emulator.settle(service.list_transactions(payment.id)[-1].provider_reference or "", outcome)
        receipt = service.receive_webhook("braintree", *inbox.wait(number)[-1])
        assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    state, captured, capturable = expected
    if state == PaymentState.CAPTURED:
        assert emulator.transactions[payment.reference or ""].closed  # Braintree takes no more
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        state, Money.of(captured, EUR), Money.of(capturable, EUR))
    assert not service.reconcile(payment_id=payment.id).mismatches
    reconciled = service.get_payment(payment.id)
    assert (reconciled.state, reconciled.captured, reconciled.capturable) == (
        payment.state, payment.captured, payment.capturable)



def test_a_replayed_whole_capture_braintree_declined_at_settlement_leaves_nothing_held(
    batch: tuple[Gateway, BraintreeEmulator, str], ledger: SQLiteLedger
) -> None:
    """A capture of all that was authorized whose answer was lost, then declined at settlement
    after it was submitted: the retry under its key answers the capture it was (it took effect),
    and the service reads the payment, as reconciliation does: the capture is reversed, it
    consumed the authorization, nothing is held or left to capture."""
    service, emulator = _service(batch, ledger)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-12", idempotency_key="lost-whole-capture-auth")
    emulator.inject(Fault(kind="drop_after", path="partialcapture"))
    with pytest.raises(OutcomeUnknown):  # Braintree made it; its answer was lost
        service.capture(payment.id, idempotency_key="lost-whole-capture")
    (made,) = [t for t in emulator.transactions.values() if t.order_id == "lost-whole-capture"]
    emulator.settle(made.id, "SETTLEMENT_DECLINED")  # the processor refused it at settlement
    # the retry under its key finds it made, then declined: it took effect, and is undone
    answered = service.capture(payment.id, idempotency_key="lost-whole-capture")
    *_, lost, reversal = service.list_transactions(payment.id)
    assert (lost.status, reversal.kind, reversal.parent_id) == ("succeeded", "reversal", lost.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    assert answered == payment  # read from Braintree before the call returned
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_an_authorization_the_control_panel_captured_and_braintree_declined_at_settlement_is_not_captured_once_notified(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger
) -> None:
    """The merchant submits the authorization for settlement in the Control Panel (no word to
    the ledger, which reads it captured when reconciling), and the batch declines it: its
    notification names the authorization itself, which no capture of the ledger's made. The
    service reads the payment, as reconciliation does: nothing was captured, nor is anything left
    to capture."""
    service, emulator = _service(batch, ledger, inbox)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-13", idempotency_key="panel-captured-auth")
    with emulator.lock:  # the Control Panel's capture of all of it
        emulator.operations.capture({"transactionId": payment.reference})
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).captured == Money.of("50.00", EUR)
    emulator.settle(payment.reference or "", "SETTLEMENT_DECLINED")
    receipt = service.receive_webhook("braintree", *inbox.wait(1)[0])
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capturable) == (Money.zero(EUR), Money.zero(EUR))
    service.reconcile(payment_id=payment.id)  # reads what the notification made the service read
    reconciled = service.get_payment(payment.id)
    assert (reconciled.state, reconciled.captured, reconciled.capturable) == (
        payment.state, payment.captured, payment.capturable)


@pytest.mark.parametrize(("outcome", "notified"), [
    ("SETTLEMENT_DECLINED", True), ("SETTLEMENT_DECLINED", False), ("VOIDED", False)])
def test_an_authorization_the_control_panel_captured_whole_and_braintree_declined_at_settlement_is_released(
    batch: tuple[Gateway, BraintreeEmulator, str], inbox: Inbox, ledger: SQLiteLedger, outcome: str,
    notified: bool,
) -> None:
    """The authorization itself submitted for settlement (the Control Panel's capture of all of
    it, no child capture), then declined in the batch or voided in the Control Panel before it:
    it reads as a sale so would (its status and history are a sale's), but the payment was
    authorized, and Braintree released the hold: voided, nothing captured, and reconciliation
    agrees, run after run."""
    service, emulator = _service(batch, ledger, inbox)
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-14", idempotency_key=f"panel-whole-auth-{outcome}-{notified}")
    with emulator.lock:  # the Control Panel's capture of all of it
        emulator.operations.capture({"transactionId": payment.reference})
    assert not service.reconcile(payment_id=payment.id).mismatches
    if outcome == "VOIDED":  # the Control Panel's void before the batch: Braintree notifies nothing
        with emulator.lock:
            emulator.operations.reverse({"transactionId": payment.reference})
    else:
        emulator.settle(payment.reference or "", outcome)
    if notified:
        receipt = service.receive_webhook("braintree", *inbox.wait(1)[0])
        assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    else:  # the notification lost: reconciliation reads it
        assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    fetched = service.gateway.execute("braintree", "fetch", Subject(reference=payment.reference, flow="authorize"))
    assert (fetched.state, fetched.authorized, fetched.captured) == (
        ProviderState.VOIDED, Money.of("50.00", EUR), Money.zero(EUR))
    # The same transaction read as a sale's (created submitted) is that sale declined.
    sold = service.gateway.execute("braintree", "fetch", Subject(reference=payment.reference, flow="sale"))
    assert (sold.state, sold.authorized, sold.captured) == (ProviderState.FAILED, Money.zero(EUR), Money.zero(EUR))
    for _ in range(2):
        assert not service.reconcile(payment_id=payment.id).mismatches
        assert service.get_payment(payment.id).state == PaymentState.VOIDED


def test_a_replayed_authorization_the_control_panel_captured_whole_and_braintree_declined_is_authorized_then_released(
    batch: tuple[Gateway, BraintreeEmulator, str], ledger: SQLiteLedger
) -> None:
    """The authorization's answer lost, then the merchant captures all of it in the Control Panel
    and the batch declines it: the retry under its key finds a transaction declined at settlement,
    which for a sale would be the sale's decline. This one was authorized first: the authorize is
    not recorded failed, and the payment reads as reconciliation does, released."""
    service, emulator = _service(batch, ledger)
    emulator.inject(Fault(kind="drop_after", path="authorizePaymentMethod"))
    with pytest.raises(OutcomeUnknown):  # Braintree authorized; its answer was lost
        service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="B-15",
                          idempotency_key="lost-panel-auth")
    (made,) = emulator.transactions.values()
    with emulator.lock:  # the Control Panel's capture of all of it
        emulator.operations.capture({"transactionId": made.id})
    emulator.settle(made.id, "SETTLEMENT_DECLINED")
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="B-15", idempotency_key="lost-panel-auth")
    (txn,) = service.list_transactions(payment.id)
    assert txn.status == "succeeded"
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    assert not service.reconcile(payment_id=payment.id).mismatches
    assert service.get_payment(payment.id).state == PaymentState.VOIDED
