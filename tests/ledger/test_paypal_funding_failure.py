"""PayPal's funding failures at completion, on both ledgers: an approved order whose completion
PayPal answers 422 INSTRUMENT_DECLINED with a `redirect` link waits for its buyer, who picks
another funding source at that link; the same order is then completed, once. Never failed
meanwhile (the order may still be paid), and reconciliation, a retry under the completion's key
and PayPal's events (CHECKOUT.ORDER.APPROVED again, PAYMENT.CAPTURE.COMPLETED) all agree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paywire import Gateway, Money, OutcomeUnknown, PaymentService, Plugins, Retry, Subject
from paywire.ledger import Ledger, Payment, PaymentState, TransactionStatus
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.sandbox import Sandbox, load_sandbox

# The core package's own session installs no plugin.
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")
from paywire_paypal.emulator.sandbox import approve_as_buyer  # noqa: E402
from tests.ledger.support import step_past_life  # noqa: E402

RETURN_URL = "https://shop.example/paypal/return"
AMOUNT = Money.of("30.00", "EUR")
COMPLETING = r"/v2/checkout/orders/[^/]+/(capture|authorize)$"


@pytest.fixture
def paypal() -> Iterator[tuple[Sandbox, str, Gateway]]:
    sandbox = load_sandbox(paywire_paypal.PAYPAL)
    plugins = Plugins()
    plugins.register(paywire_paypal)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("paypal", server.url)], plugins=plugins,
                                                        retry=Retry.never()) as gateway:
        yield sandbox, server.url, gateway


def _declined_at_approval(service: PaymentService, sale: bool, key: str) -> Payment:
    """A checkout the buyer approved with a funding source PayPal will decline."""
    start = service.sale if sale else service.authorize
    payment = start("paypal", AMOUNT, source="paypal", return_url=RETURN_URL, idempotency_key=key)
    assert payment.action is not None
    approve_as_buyer(f"{payment.action.redirect_url}&payer=decline")
    return payment


def _completions(sandbox: Sandbox) -> int:
    """The authorize and capture requests that reached PayPal's orders."""
    return sum(1 for verb, path in sandbox.app.calls
               if verb == "POST" and path.startswith("/v2/checkout/orders/") and path.endswith(("/capture", "/authorize")))


def _paid(sandbox: Sandbox, sale: bool) -> int:
    return len(sandbox.app.captures if sale else sandbox.app.authorizations)


def _deliver_all(sandbox: Sandbox, service: PaymentService, payment_id: str) -> None:
    """Every event PayPal sent about the checkout, each delivered twice: all find the payment."""
    for event in list(sandbox.app.events):
        body, headers = sandbox.app.signed_event(event)
        for _ in range(2):
            assert service.receive_webhook("paypal", headers, body).payment_id == payment_id, event["event_type"]


def _as_paypal_holds(gateway: Gateway, service: PaymentService, payment_id: str) -> Payment:
    report = service.reconcile(payment_id=payment_id)
    assert report.clean and not report.mismatches, report
    payment = service.get_payment(payment_id)
    held = gateway.execute("paypal", "fetch", Subject(reference=payment.reference))
    none = Money.zero("EUR")  # an order waiting for its buyer holds no payment yet, and reads no totals
    assert (payment.authorized, payment.captured) == (held.authorized or none, held.captured or none)
    return payment


@pytest.mark.parametrize("sale", [True, False], ids=["sale", "authorize"])
def test_a_funding_failure_waits_for_the_buyer_who_pays_the_same_order_with_another_source(
    paypal: tuple[Sandbox, str, Gateway], ledger: Ledger, sale: bool,
) -> None:
    sandbox, url, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = _declined_at_approval(service, sale, "ff-start")
    order = payment.reference

    waiting = service.complete(payment.id, idempotency_key="ff-complete-1")
    assert (waiting.state, waiting.authorized, waiting.reference) == (PaymentState.ACTION_REQUIRED,
                                                                       Money.zero("EUR"), order)
    assert waiting.action is not None and waiting.action.redirect_url == f"{url}/checkoutnow?token={order}"
    assert [(t.kind, t.status) for t in service.list_transactions(payment.id)] == [
        ("sale" if sale else "authorize", TransactionStatus.ACTION_REQUIRED),
        ("complete", TransactionStatus.ACTION_REQUIRED),
    ]
    assert _paid(sandbox, sale) == 0
    assert _as_paypal_holds(gateway, service, payment.id).state == PaymentState.ACTION_REQUIRED
    sent = _completions(sandbox)
    again = service.complete(payment.id, idempotency_key="ff-complete-1")  # the same call: its stored outcome
    assert (again.state, _completions(sandbox)) == (PaymentState.ACTION_REQUIRED, sent)

    approve_as_buyer(waiting.action.redirect_url)  # the buyer picks another funding source
    _deliver_all(sandbox, service, payment.id)  # CHECKOUT.ORDER.APPROVED, twice over: complete() finishes it
    assert service.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED

    done = service.complete(payment.id)
    assert (done.state, done.authorized, done.captured) == (
        PaymentState.CAPTURED if sale else PaymentState.AUTHORIZED, AMOUNT, AMOUNT if sale else Money.zero("EUR"))
    _deliver_all(sandbox, service, payment.id)  # PAYMENT.CAPTURE.COMPLETED / AUTHORIZATION.CREATED, once counted
    assert _as_paypal_holds(gateway, service, payment.id) == service.get_payment(payment.id)
    for key in ("ff-complete-1", None):  # the first completion's key, and a call again: nothing sent twice
        assert service.complete(payment.id, idempotency_key=key).authorized == AMOUNT
    assert _paid(sandbox, sale) == 1
    if not sale:
        assert service.capture(payment.id).captured == AMOUNT
    assert len(sandbox.app.captures) == 1
    payment = _as_paypal_holds(gateway, service, payment.id)
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, AMOUNT)
    assert not [t for t in service.list_transactions(payment.id) if t.status == TransactionStatus.FAILED]


def test_a_buyer_whose_next_source_fails_too_is_sent_back_again(paypal: tuple[Sandbox, str, Gateway],
                                                                ledger: Ledger) -> None:
    sandbox, _, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = _declined_at_approval(service, True, "ff-twice")
    first = service.complete(payment.id)
    assert first.action is not None
    approve_as_buyer(f"{first.action.redirect_url}&payer=decline")
    second = service.complete(payment.id)
    assert second.state == PaymentState.ACTION_REQUIRED and second.action == first.action
    approve_as_buyer(first.action.redirect_url)
    assert service.complete(payment.id).captured == AMOUNT
    assert len(sandbox.app.captures) == 1


@pytest.mark.parametrize("sale", [True, False], ids=["sale", "authorize"])
def test_a_lost_answer_to_a_funding_failure_is_resent_under_its_key_and_waits_for_the_buyer(
    paypal: tuple[Sandbox, str, Gateway], ledger: Ledger, sale: bool,
) -> None:
    """Sent, no answer: the order is still approved, so the completion is open (it may yet land),
    never failed; resent under its key, PayPal declines the source again and the buyer is sent back."""
    sandbox, url, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = _declined_at_approval(service, sale, "ff-lost")
    sandbox.app.inject(Fault("drop_after", method="POST", path=COMPLETING))
    with pytest.raises(OutcomeUnknown) as lost:
        service.complete(payment.id, idempotency_key="ff-lost-complete")
    report = service.reconcile(payment_id=payment.id)
    assert [s.status for s in report.unresolved] == [None] and not report.settled, report  # still open
    txn = service.get_transaction(lost.value.transaction_id or "")
    assert txn.status == TransactionStatus.UNKNOWN
    assert service.get_payment(payment.id).state not in PaymentState.FINAL

    waiting = service.complete(payment.id, idempotency_key="ff-lost-complete")
    assert waiting.state == PaymentState.ACTION_REQUIRED
    assert waiting.action is not None and waiting.action.redirect_url == f"{url}/checkoutnow?token={payment.reference}"
    assert service.get_transaction(txn.id).status == TransactionStatus.ACTION_REQUIRED
    approve_as_buyer(waiting.action.redirect_url)
    assert service.complete(payment.id).authorized == AMOUNT
    assert _paid(sandbox, sale) == 1
    _deliver_all(sandbox, service, payment.id)
    assert _as_paypal_holds(gateway, service, payment.id).authorized == AMOUNT


@pytest.mark.parametrize("sale", [True, False], ids=["sale", "authorize"])
def test_a_lost_answer_to_the_completion_after_the_buyer_came_back_takes_the_money_once(
    paypal: tuple[Sandbox, str, Gateway], ledger: Ledger, sale: bool,
) -> None:
    """The second completion took effect and its answer was lost: PayPal's event, the retry under
    its key and reconciliation each find the one capture or authorization it made."""
    sandbox, _, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = _declined_at_approval(service, sale, "ff-paid-lost")
    waiting = service.complete(payment.id)
    assert waiting.action is not None
    approve_as_buyer(waiting.action.redirect_url)
    sandbox.app.inject(Fault("drop_after", method="POST", path=COMPLETING))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id, idempotency_key="ff-paid-lost-complete")
    assert _paid(sandbox, sale) == 1
    _deliver_all(sandbox, service, payment.id)
    paid = service.complete(payment.id, idempotency_key="ff-paid-lost-complete")
    assert (paid.authorized, paid.captured) == (AMOUNT, AMOUNT if sale else Money.zero("EUR"))
    assert _as_paypal_holds(gateway, service, payment.id).authorized == AMOUNT
    assert _paid(sandbox, sale) == 1


def test_a_lost_funding_failure_concluded_not_applied_leaves_the_payment_waiting_for_its_buyer(
    paypal: tuple[Sandbox, str, Gateway], ledger: Ledger, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reconciliation concludes the lost completion not applied once its request can no longer
    land (PayPal still holds the order approved, nothing paid in it): that completion failed, the
    payment still waits, and the buyer pays the same order. The ledger's clock is stepped past the
    request's life, never waited out: every other request must be answered, however loaded the
    machine."""
    sandbox, _, gateway = paypal
    service = PaymentService(gateway, ledger, margin=0)
    payment = _declined_at_approval(service, True, "ff-concluded")
    sandbox.app.inject(Fault("drop_after", method="POST", path=COMPLETING))
    with pytest.raises(OutcomeUnknown) as lost:
        service.complete(payment.id)
    txn = service.get_transaction(lost.value.transaction_id or "")
    step_past_life(service, [txn.id], monkeypatch)
    (settled,) = service.reconcile(payment_id=payment.id).settled
    assert (settled.transaction_id, settled.status) == (txn.id, TransactionStatus.FAILED)
    waiting = service.get_payment(payment.id)
    assert waiting.state == PaymentState.ACTION_REQUIRED and waiting.action is not None
    sent_back = service.complete(payment.id)
    assert sent_back.state == PaymentState.ACTION_REQUIRED and sent_back.action is not None
    approve_as_buyer(sent_back.action.redirect_url)
    assert service.complete(payment.id).captured == AMOUNT
    assert len(sandbox.app.captures) == 1
    assert _as_paypal_holds(gateway, service, payment.id).captured == AMOUNT
