"""Amounts survive the plugin's wire encoding exactly, in currencies of every exponent, and a
result reports the amount the provider applied, not the one asked for."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire.errors import InvalidRequest
from paywire.gateway_definition import Capabilities
from paywire.http.transfer import Transfer
from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Bounds, Representable, money, representable_at_most

__all__ = ["AmountContract"]

_PAYMENT_COMMANDS = ("authorize", "sale")


def representative_amounts(
    supported: frozenset[str] | None, bounds: Bounds, representable: Representable | None
) -> list[Money]:
    """One amount per exponent the provider takes, with as many significant digits as it holds."""
    firsts: dict[int, str] = {}
    for code in sorted(supported if supported is not None else CURRENCY_EXPONENTS):
        firsts.setdefault(CURRENCY_EXPONENTS[code], code)
    amounts = []
    for _, code in sorted(firsts.items()):
        low, high = bounds(code)
        amount = representable_at_most(max(low, min(high, 1_234_565)), code, representable, low)
        if amount is not None:
            amounts.append(amount)
    return amounts


def _probes(bounds: tuple[int, int]) -> range:
    low, high = bounds
    return range(low, min(high, low + 200) + 1)


class AmountContract(ContractFixtures):
    """What goes on the wire is exactly the `Money` asked for: no rounding, no 100x errors."""

    def test_amounts_of_every_exponent_survive_the_wire_exactly(
        self,
        harness: ContractHarness,
        wire_amount: Callable[[Transfer], Money | None],
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
        amount_representable: Representable | None,
    ) -> None:
        """Per exponent, a sale too where the plugin offers one: its request is often built apart,
        and a sale sent in the wrong scale charges another amount than the ledger records."""

        def survives(amount: Money, command: str) -> None:
            mark = harness.sent()
            result = harness.authorize(amount, sale=command == "sale")
            sent = [record.transfer for record in harness.sent_since(mark) if record.command in _PAYMENT_COMMANDS]
            on_wire = [found for transfer in sent if (found := wire_amount(transfer)) is not None]
            assert on_wire, f"{command} of {amount!r} sent no amount wire_amount can read"
            assert all(found == amount for found in on_wire), f"{command} of {amount!r} put {on_wire!r} on the wire"
            if result.amount is not None:
                assert result.amount == amount, f"{command} of {amount!r} reports {result.amount!r} applied"
            fetched = harness.fetch(payment_reference(result))
            held = fetched.authorized if command == "authorize" else fetched.captured
            assert held == amount, f"{command} of {amount!r}: the provider holds {held!r}"

        commands = [name for name in _PAYMENT_COMMANDS if name == "authorize"
                    or (harness.capabilities.sale and name in harness.commands)]
        for amount in representative_amounts(supported_currencies, amount_bounds, amount_representable):
            for command in commands:
                survives(amount, command)
        def authorized(amount: Money) -> None:
            survives(amount, "authorize")

        amounts = money(currency=supported_currencies, bounds=amount_bounds, representable=amount_representable)
        run_property(given(amounts)(authorized))

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

        run_property(given(money(currency=unsupported, bounds=amount_bounds))(refused))

    def test_an_amount_the_provider_cannot_hold_is_refused_not_rounded(
        self,
        harness: ContractHarness,
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
        amount_representable: Representable | None,
    ) -> None:
        if amount_representable is None:
            pytest.skip(f"{harness.provider} holds every amount within its bounds (amount_representable is None)")
        held = amount_representable
        unheld_somewhere = [code for code in sorted(supported_currencies or CURRENCY_EXPONENTS)
                            if any(not held(Money.minor_units(minor, code)) for minor in _probes(amount_bounds(code)))]
        if not unheld_somewhere:
            pytest.skip(f"{harness.provider} holds every amount within its bounds")

        def refused(amount: Money) -> None:
            calls, mark = harness.calls(), harness.sent()
            outcome = harness.attempt("authorize", harness.payment_subject(amount))
            assert isinstance(outcome, InvalidRequest), f"authorize of {amount!r}, which it cannot hold, gave {outcome!r}"
            assert not harness.sent_since(mark) and harness.calls() == calls, f"authorize of {amount!r} was sent"

        near_held = st.tuples(money(currency=unheld_somewhere, bounds=amount_bounds, representable=held), st.integers(1, 99))
        unheld = near_held.map(lambda pair: Money.minor_units(pair[0].minor + pair[1], pair[0].currency))
        run_property(given(unheld.filter(lambda amount: not held(amount)))(refused))

    def test_a_partial_authorization_reports_what_the_provider_holds(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        partial_authorization_source: str | None,
    ) -> None:
        """The ledger records a first operation's `amount` as what the payment holds: the amount
        asked for, reported when the provider authorized less, makes it claim more than the
        provider holds (and capture or refund money that is not there)."""
        source = partial_authorization_source
        if source is None:
            pytest.skip("the sandbox declares no 'partial_authorization' source (Sandbox.sources"
                        "['partial_authorization']): the provider authorizes all or nothing")
        commands = [name for name, wanted in (("authorize", True), ("sale", capabilities.sale)) if wanted
                    and name in harness.commands]
        problems = []
        for command in commands:
            result = harness.authorize(example_amount, sale=command == "sale", source=source)
            assert result.succeeded, f"{command} of {example_amount!r} with {source!r} gave {result!r}"
            fetched = harness.fetch(payment_reference(result))
            held = fetched.captured if command == "sale" else fetched.authorized
            assert held is not None and 0 < held.minor < example_amount.minor, (
                f"{command} of {example_amount!r} with the 'partial_authorization' source {source!r}: the "
                f"provider holds {held!r}, not part of it (the sandbox's source is not partial)"
            )
            for field in ("amount", "authorized" if command == "authorize" else "captured"):
                reported = getattr(result, field)
                if reported is not None and reported != held:
                    problems.append(f"{command} of {example_amount!r} reports {field} {reported!r}; the provider "
                                    f"holds {held!r}")
            if result.amount is None:
                problems.append(f"{command} of {example_amount!r} reports no amount; the provider holds {held!r} "
                                "(less than asked, which the ledger would record as held)")
        assert not problems, "a partial authorization was reported wrongly:\n" + "\n".join(problems)
