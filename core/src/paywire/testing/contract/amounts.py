"""Amounts survive the plugin's wire encoding exactly, in currencies of every exponent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given

from paywire.errors import InvalidRequest
from paywire.http.transfer import Transfer
from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.profiles import contract_settings
from paywire.testing.strategies import Bounds, money

__all__ = ["AmountContract"]

_PAYMENT_COMMANDS = ("authorize", "sale")


def representative_amounts(supported: frozenset[str] | None, bounds: Bounds) -> list[Money]:
    """One amount per exponent the provider takes, every digit significant and ending in 5."""
    firsts: dict[int, str] = {}
    for code in sorted(supported if supported is not None else CURRENCY_EXPONENTS):
        firsts.setdefault(CURRENCY_EXPONENTS[code], code)
    amounts = []
    for _, code in sorted(firsts.items()):
        low, high = bounds(code)
        amounts.append(Money.minor_units(max(low, min(high, 1_234_565)), code))
    return amounts


class AmountContract(ContractFixtures):
    """What goes on the wire is exactly the `Money` asked for: no rounding, no 100x errors."""

    def test_amounts_of_every_exponent_survive_the_wire_exactly(
        self,
        harness: ContractHarness,
        wire_amount: Callable[[Transfer], Money],
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
    ) -> None:
        def survives(amount: Money) -> None:
            mark = harness.sent()
            result = harness.authorize(amount)
            sent = [record.transfer for record in harness.sent_since(mark) if record.command in _PAYMENT_COMMANDS]
            assert sent, f"authorize of {amount!r} sent no request"
            on_wire = wire_amount(sent[0])
            assert on_wire == amount, f"authorize of {amount!r} put {on_wire!r} on the wire"
            if result.amount is not None:
                assert result.amount == amount, f"authorize of {amount!r} reports {result.amount!r} applied"
            fetched = harness.fetch(payment_reference(result))
            assert fetched.authorized == amount, f"authorize of {amount!r}: the provider holds {fetched.authorized!r}"

        for amount in representative_amounts(supported_currencies, amount_bounds):
            survives(amount)
        currencies = supported_currencies if supported_currencies is not None else None
        contract_settings()(given(money(currency=currencies, bounds=amount_bounds))(survives))()

    def test_an_unsupported_currency_is_refused_before_sending(
        self, harness: ContractHarness, supported_currencies: frozenset[str] | None, amount_bounds: Bounds
    ) -> None:
        if supported_currencies is None:
            pytest.skip(f"{harness.provider} accepts every currency (GatewayDefinition.currencies is None)")
        unsupported = sorted(set(CURRENCY_EXPONENTS) - supported_currencies)
        if not unsupported:
            pytest.skip(f"{harness.provider} lists every ISO 4217 currency")

        def refused(amount: Money) -> None:
            calls, mark = harness.calls(), harness.sent()
            outcome = harness.attempt("authorize", harness.payment_subject(amount))
            assert isinstance(outcome, InvalidRequest), f"authorize in {amount.currency} gave {outcome!r}"
            assert not outcome.may_have_been_sent
            assert not harness.sent_since(mark) and harness.calls() == calls, f"authorize in {amount.currency} was sent"

        contract_settings()(given(money(currency=unsupported, bounds=amount_bounds))(refused))()
