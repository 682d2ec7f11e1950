"""Edge cases of the outcome model found in an audit: what an operation reports when an earlier
attempt may have taken effect, whatever happens to the later attempts."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, PaywireError, ProviderUnavailable, Retry, SQLiteLedger
from paywire.testing.emulator import Fault

TOKEN = "/v1/oauth2/token"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _tokens_expire_at_first_capture(serve_paypal, emulator):
    """The emulator's clock jumps past every token's lifetime once a capture exists; a gateway
    that retries once. Returns (app, paypal, gateway)."""
    holder: dict[str, object] = {}
    base = 1_800_000_000.0

    def clock() -> float:
        app = holder.get("app")
        return base + (10**6 if app is not None and app.captures else 0)

    app = emulator(clock=clock)
    holder["app"] = app
    paypal = serve_paypal(app)
    return app, paypal, paypal.gateway_with(retry=Retry(total=1, backoff_factor=0))


def _holding_a_token(app, paypal, gateway):
    """An authorization to capture, and `gateway` holding a token (from an authorize of its own)."""
    authorization = paypal.authorized("100.00")
    paypal.run("authorize", gateway=gateway, amount=eur("1.00"), source=app.vault_card(),
               idempotency_key=paypal.key())
    return authorization


def test_a_token_outage_while_refreshing_after_a_dropped_capture_leaves_the_outcome_unknown(serve_paypal, emulator):
    # The dropped first attempt captured; its retry (same PayPal-Request-Id) carries a token PayPal refuses.
    app, paypal, gateway = _tokens_expire_at_first_capture(serve_paypal, emulator)
    authorization = _holding_a_token(app, paypal, gateway)
    app.inject(Fault(kind="drop_after", path="/capture$"))
    app.inject(Fault(kind="status", status=503, path=TOKEN, times=10))
    with pytest.raises(PaywireError) as raised:
        paypal.run("capture", gateway=gateway, reference=authorization.reference, amount=eur("30.00"),
                   final=False, idempotency_key=paypal.key())
    assert len(app.captures) == 1  # PayPal did capture on the first attempt
    error = raised.value
    assert isinstance(error, OutcomeUnknown) or error.may_have_been_sent, repr(error)


def test_a_token_expiring_between_attempts_resends_the_same_request_id_and_captures_once(serve_paypal, emulator):
    app, paypal, gateway = _tokens_expire_at_first_capture(serve_paypal, emulator)
    authorization = _holding_a_token(app, paypal, gateway)
    app.inject(Fault(kind="drop_after", path="/capture$"))
    key = paypal.key()
    capture = paypal.run("capture", gateway=gateway, reference=authorization.reference, amount=eur("30.00"),
                         final=False, idempotency_key=key)
    assert capture.succeeded and capture.amount == eur("30.00")
    assert len(app.captures) == 1
    sent = [t for t in paypal.api_sent if t.url.endswith("/capture")]
    assert len(sent) == 3  # dropped, refused with 401, then sent again with the new token
    assert {t.headers["PayPal-Request-Id"] for t in sent} == {key}


def test_a_token_outage_while_refreshing_a_first_attempt_is_still_a_retryable_failure_nothing_sent(paypal):
    authorization = paypal.authorized("100.00")
    paypal.app.expire_tokens()
    paypal.app.inject(Fault(kind="status", status=503, path=TOKEN, times=10))
    with pytest.raises(PaywireError) as raised:
        paypal.run("capture", reference=authorization.reference, amount=eur("30.00"), idempotency_key=paypal.key())
    error = raised.value
    assert isinstance(error, ProviderUnavailable) and error.retryable and not error.may_have_been_sent
    assert not paypal.app.captures


def test_the_ledger_keeps_a_capture_unknown_when_the_token_cannot_be_renewed_after_a_dropped_attempt(
        serve_paypal, emulator, tmp_path):
    app, _, gateway = _tokens_expire_at_first_capture(serve_paypal, emulator)
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key="auth-1")
        app.inject(Fault(kind="drop_after", path="/capture$"))
        app.inject(Fault(kind="status", status=503, path=TOKEN, times=10))
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
        assert len(app.captures) == 1
        capture = next(t for t in service.list_transactions(payment.id) if t.kind == "capture")
        assert capture.status == "unknown"


def test_resending_a_lost_capture_that_meets_paypals_503_keeps_it_unknown(paypal, tmp_path):
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="a-1")
        paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key="c-1")
        assert len(paypal.app.captures) == 1  # PayPal captured
        paypal.app.inject(Fault(kind="status", status=503, path="/capture$"))
        with pytest.raises(PaywireError):
            service.retry(raised.value.transaction_id)
        capture = next(t for t in service.list_transactions(payment.id) if t.kind == "capture")
        assert capture.status == "unknown"



@pytest.mark.parametrize("command", ["void", "capture", "refund"])
def test_a_lost_operation_resent_after_paypal_dropped_its_key_is_never_recorded_failed(paypal, tmp_path, command):
    """The resend meets what the lost attempt did (PREVIOUSLY_VOIDED, AUTHORIZATION_ALREADY_CAPTURED,
    CAPTURE_FULLY_REFUNDED) once PayPal no longer replays it: Payments v2 takes no PayPal-Request-Id
    for a void, which the plugin resends whenever it is unknown (voiding again moves no money), and
    keeps the others' for a while only. That answer is no evidence that the operation failed:
    reconciliation reads what PayPal holds and settles it."""
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        first = service.sale if command == "refund" else service.authorize
        payment = first("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="first-1")
        paypal.app.inject(Fault(kind="drop_after", path=f"/{command}$"))
        with pytest.raises(OutcomeUnknown) as raised:
            getattr(service, command)(payment.id, idempotency_key=f"{command}-1")
        paypal.app.idempotency.ttl = 0  # PayPal no longer holds the request id
        with pytest.raises(OutcomeUnknown):
            service.retry(raised.value.transaction_id)
        lost = service.get_transaction(raised.value.transaction_id)
        assert lost.status == "unknown", f"the {command} PayPal holds is recorded {lost.status} ({lost.error_code})"
        service.reconcile(payment_id=payment.id)
        assert service.get_transaction(lost.id).status == "succeeded"
        assert service.get_payment(payment.id).state == {"void": "voided", "capture": "captured",
                                                         "refund": "refunded"}[command]


def test_a_lost_vaulted_sale_resent_after_its_token_was_deleted_is_never_recorded_failed(paypal, tmp_path):
    """The resend first reads the vault token's kind, and the token is gone (the buyer removed
    it meanwhile): PayPal's "not found" answers that read, not the sale the lost attempt may
    have made. The outcome stays unknown for reconciliation, never failed."""
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        token = paypal.app.vault_card()
        paypal.app.inject(Fault(kind="drop_after", path="/v2/checkout/orders$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.sale("paypal", eur("25.00"), source=token, idempotency_key="sale-1")
        assert len(paypal.app.orders) == 1  # PayPal charged
        del paypal.app.payment_tokens[token]
        with pytest.raises(OutcomeUnknown):
            service.retry(raised.value.transaction_id)
        lost = service.get_transaction(raised.value.transaction_id)
        assert lost.status == "unknown", f"the sale PayPal made is recorded {lost.status} ({lost.error_code})"
