"""Properties: any sequence of captures, voids and refunds keeps PayPal's money rules.

A small reference model of PayPal's rules predicts each answer; the emulator must agree on every
step, and whatever happens, captures never exceed the overage limit and no capture is refunded
beyond its amount.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AUTHORIZED = 10_000  # cents of the authorization every example starts from
LIMIT = AUTHORIZED * 115 // 100

operations = st.lists(
    st.one_of(
        st.tuples(st.just("capture"), st.integers(1, 12_000), st.booleans()),
        st.tuples(st.just("refund"), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 6_000))),
        st.tuples(st.just("void")),
    ),
    max_size=12,
)


def cents(value: int) -> dict[str, str]:
    return {"currency_code": "USD", "value": f"{Decimal(value) / 100:.2f}"}


class Model:
    """PayPal's rules for one authorization and its captures, in the simplest terms."""

    def __init__(self) -> None:
        self.status = "CREATED"
        self.captures: list[list[int]] = []  # [amount, refunded]

    def capture(self, amount: int, final: bool) -> str | None:
        if self.status == "VOIDED":
            return "AUTHORIZATION_VOIDED"
        if self.status == "CAPTURED":
            return "AUTHORIZATION_ALREADY_CAPTURED"
        captured = sum(c[0] for c in self.captures)
        if captured + amount > LIMIT:
            return "MAX_CAPTURE_AMOUNT_EXCEEDED"
        self.captures.append([amount, 0])
        self.status = "CAPTURED" if final or captured + amount >= AUTHORIZED else "PARTIALLY_CAPTURED"
        return None

    def void(self) -> str | None:
        if self.status == "CAPTURED":
            return "PREVIOUSLY_CAPTURED"
        if self.status == "VOIDED":
            return "PREVIOUSLY_VOIDED"
        self.status = "VOIDED"
        return None

    def refund(self, index: int, amount: int | None) -> str | None:
        capture = self.captures[index]
        remaining = capture[0] - capture[1]
        if remaining == 0:
            return "CAPTURE_FULLY_REFUNDED"
        amount = remaining if amount is None else amount
        if amount > remaining:
            return "REFUND_AMOUNT_EXCEEDED"
        capture[1] += amount
        return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_captures_and_refunds_follow_paypals_rules(shared_api, steps):
    api = shared_api
    auth_id = api.authorization(f"{AUTHORIZED // 100}.00")["id"]
    model = Model()
    capture_ids: list[str] = []
    for step in steps:
        if step[0] == "capture":
            _, amount, final = step
            expected = model.capture(amount, final)
            response = api.post(
                f"/v2/payments/authorizations/{auth_id}/capture", {"amount": cents(amount), "final_capture": final}
            )
            if response.status == 201:
                capture_ids.append(response.json()["id"])
        elif step[0] == "void":
            expected = model.void()
            response = api.post(f"/v2/payments/authorizations/{auth_id}/void")
        else:
            _, index, amount = step
            if not capture_ids:
                continue
            index %= len(capture_ids)
            expected = model.refund(index, amount)
            body = {} if amount is None else {"amount": cents(amount)}
            response = api.post(f"/v2/payments/captures/{capture_ids[index]}/refund", body)
        assert response.status < 300 if expected is None else (response.status, response.issue) == (422, expected), (
            step,
            response,
        )

    auth = api.get(f"/v2/payments/authorizations/{auth_id}").json()
    assert auth["status"] == model.status
    captured = 0
    for capture_id, (amount, refunded) in zip(capture_ids, model.captures, strict=True):
        capture = api.get(f"/v2/payments/captures/{capture_id}").json()
        assert Decimal(capture["amount"]["value"]) * 100 == amount
        captured += amount
        state = api.app.captures[capture_id]
        emulator_refunded = sum(api.app.refunds[r].amount_minor for r in state.refund_ids)
        assert emulator_refunded == refunded <= amount
        expected_status = "COMPLETED" if refunded == 0 else "REFUNDED" if refunded == amount else "PARTIALLY_REFUNDED"
        assert capture["status"] == expected_status
    assert captured <= LIMIT
