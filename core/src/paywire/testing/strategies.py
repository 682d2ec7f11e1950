"""Hypothesis strategies for paywire's values, for the contract kit and for plugins' own tests.

Money draws the currency exponent first, so three- and four-decimal currencies come up as often as
two-decimal ones: they are where encodings go wrong. Free text never contains a digit run that
looks like a card number, so generated subjects are requests a shop may legitimately send.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Final

import attrs
import hypothesis.provisional  # noqa: F401 - see _import_lazy_modules
from hypothesis import strategies as st

from paywire.card_numbers import ISSUER_RANGES, luhn_valid
from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.security import find_card_number
from paywire.subject import Address, Customer, LineItem, Order, Subject
from paywire.testing.shop_data import shop_string
from paywire.webhook import EventKind

__all__ = [
    "DEFAULT_MAX_MINOR",
    "WEBHOOK_KINDS",
    "Bounds",
    "Operation",
    "Representable",
    "WebhookPayload",
    "addresses",
    "card_numbers",
    "currencies",
    "customers",
    "idempotency_keys",
    "line_items",
    "metadata",
    "minor_amounts",
    "money",
    "no_card_number",
    "operations",
    "orders",
    "provider_ids",
    "representable_at_most",
    "safe_text",
    "shop_strings",
    "subjects",
    "webhook_payloads",
]

DEFAULT_MAX_MINOR: Final = 99_999_999  # eight digits: within every provider's single-payment limit
Bounds = Callable[[str], tuple[int, int]]
"""The smallest and largest amount a provider takes in a currency, in minor units."""
Representable = Callable[[Money], bool]
"""Whether a provider can hold an amount exactly (Stripe: KWD amounts ending in 0; PayPal: whole HUF)."""


def _import_lazy_modules() -> None:
    """Import what hypothesis would import lazily, deep inside a draw (`from_regex`, `emails`):
    on CPython 3.11 such an import can fail with "AST constructor recursion depth mismatch"."""
    import importlib

    try:
        importlib.import_module("hypothesis.strategies._internal.regex")
    except ImportError:  # a hypothesis that moved it: then it is no longer imported lazily there
        pass


_import_lazy_modules()


def _default_bounds(currency: str) -> tuple[int, int]:
    return 1, DEFAULT_MAX_MINOR


def currencies(
    *, among: Iterable[str] | None = None, exponents: Iterable[int] | None = None
) -> st.SearchStrategy[str]:
    """ISO 4217 codes, optionally only `among` some codes or with some `exponents`."""
    allowed = None if among is None else set(among)
    wanted = None if exponents is None else set(exponents)
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in sorted(CURRENCY_EXPONENTS.items()):
        if (allowed is None or code in allowed) and (wanted is None or exponent in wanted):
            by_exponent.setdefault(exponent, []).append(code)
    if not by_exponent:
        raise ValueError(f"no known currency among {sorted(allowed or ())} with exponents {sorted(wanted or ())}")
    return st.sampled_from(sorted(by_exponent)).flatmap(lambda exponent: st.sampled_from(by_exponent[exponent]))


def minor_amounts(min_minor: int = 1, max_minor: int = DEFAULT_MAX_MINOR) -> st.SearchStrategy[int]:
    """Integers of minor units, favouring the ones that expose rounding (…5, …9, 10**k ± 1)."""
    if min_minor > max_minor:
        raise ValueError(f"empty amount range {min_minor}..{max_minor}")
    special = {min_minor, max_minor}
    for power in range(10):
        special.update({10**power - 1, 10**power, 10**power + 1, 10**power + 5, 5 * 10**power})
    special.update({1234567, 12345678, 98765431})
    edges = sorted(value for value in special if min_minor <= value <= max_minor)
    return st.one_of(st.sampled_from(edges), st.integers(min_minor, max_minor))


def representable_at_most(
    minor: int, currency: str, representable: Representable | None, low: int = 1
) -> Money | None:
    """The largest amount the provider can hold of `minor` units or a little less, dropping trailing
    digits (9876 -> 9870 -> 9800 ...), never below `low`; None when there is none."""
    for power in range(len(str(minor))):
        candidate = Money.minor_units(minor // 10**power * 10**power, currency)
        if candidate.minor < low:
            return None
        if representable is None or representable(candidate):
            return candidate
    return None


def money(
    *,
    currency: st.SearchStrategy[str] | Collection[str] | str | None = None,
    bounds: Bounds | None = None,
    representable: Representable | None = None,
) -> st.SearchStrategy[Money]:
    """Money in any currency (or those given), within `bounds(currency)` minor units, and one the
    provider can hold when `representable` says which."""
    if currency is None:
        codes = currencies()
    elif isinstance(currency, str):
        codes = st.just(currency)
    elif isinstance(currency, st.SearchStrategy):
        codes = currency
    else:
        codes = currencies(among=currency)
    limits = bounds or _default_bounds

    def in_currency(code: str) -> st.SearchStrategy[Money]:
        low, high = limits(code)
        def held(minor: int) -> st.SearchStrategy[Money]:
            amount = representable_at_most(minor, code, representable, low)
            return st.nothing() if amount is None else st.just(amount)

        return minor_amounts(low, high).flatmap(held)

    return codes.flatmap(in_currency)


def no_card_number(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`strategy` without the strings that look like a card number (13-19 digits passing Luhn).

    Ids, keys and emails can hold such digit runs by chance, and the core rightly refuses them.
    """
    return strategy.filter(lambda text: find_card_number(text) is None)


def safe_text(*, min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Printable Unicode text (accents, CJK, emoji, quotes, brackets) holding no card number."""
    alphabet = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn"))
    return no_card_number(st.text(alphabet, min_size=min_size, max_size=max_size))


def provider_ids(prefix: str | None = None) -> st.SearchStrategy[str]:
    """Ids shaped like providers' (`pi_3Nf…`, `5O190127TN364715T`)."""
    body = no_card_number(st.from_regex(r"[A-Za-z0-9]{8,24}", fullmatch=True))
    if prefix is not None:
        return body.map(lambda text: f"{prefix}_{text}")
    return st.one_of(body, st.tuples(st.from_regex(r"[a-z]{2,4}", fullmatch=True), body).map("_".join))


def idempotency_keys() -> st.SearchStrategy[str]:
    return no_card_number(st.one_of(st.uuids().map(str), st.from_regex(r"[A-Za-z0-9_\-:.]{1,64}", fullmatch=True)))


def addresses() -> st.SearchStrategy[Address]:
    return st.builds(
        Address,
        line1=st.none() | safe_text(min_size=1),
        line2=st.none() | safe_text(min_size=1),
        city=st.none() | safe_text(min_size=1, max_size=30),
        state=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
        postal_code=st.none() | st.from_regex(r"[A-Z0-9 \-]{3,10}", fullmatch=True),
        country=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
        name=st.none() | safe_text(min_size=1),
    )


def customers() -> st.SearchStrategy[Customer]:
    phones = st.from_regex(r"\+[1-9][0-9]{6,11}", fullmatch=True)  # short of a card number's length
    return st.builds(
        Customer,
        email=st.none() | no_card_number(st.emails()),
        name=st.none() | safe_text(min_size=1),
        phone=st.none() | phones,
        reference=st.none(),
        id=st.none() | provider_ids("cus"),
    )


def line_items(currency: str) -> st.SearchStrategy[LineItem]:
    return st.builds(
        LineItem,
        name=safe_text(min_size=1),
        quantity=st.integers(1, 20),
        unit_price=money(currency=currency, bounds=lambda code: (1, 1_000_000)),
        sku=st.none() | no_card_number(st.from_regex(r"[A-Z0-9\-]{1,16}", fullmatch=True)),
    )


def orders(currency: str | None = None) -> st.SearchStrategy[Order]:
    """Orders with addresses, a customer and line items, in `currency` (any when None)."""
    codes = currencies() if currency is None else st.just(currency)

    def in_currency(code: str) -> st.SearchStrategy[Order]:
        return st.builds(
            Order,
            id=no_card_number(st.from_regex(r"[A-Za-z0-9\-]{1,32}", fullmatch=True)),
            amount=st.none() | money(currency=code),
            billing=st.none() | addresses(),
            shipping=st.none() | addresses(),
            customer=st.none() | customers(),
            items=st.lists(line_items(code), max_size=3).map(tuple),
            description=st.none() | safe_text(min_size=1),
        )

    return codes.flatmap(in_currency)


def metadata() -> st.SearchStrategy[dict[str, str]]:
    keys = st.from_regex(r"[a-z][a-z0-9_]{0,19}", fullmatch=True)
    return st.dictionaries(keys, safe_text(max_size=30), max_size=4)


_REFERENCED = ("capture", "void", "refund", "fetch", "complete", "unvault")


def subjects(
    command: str,
    *,
    sources: st.SearchStrategy[str] | None = None,
    currency: st.SearchStrategy[str] | Collection[str] | None = None,
    bounds: Bounds | None = None,
    representable: Representable | None = None,
) -> st.SearchStrategy[Subject]:
    """Subjects as the payment service builds them for `command`: every operation carries its
    order (whose total may differ from the operation's amount) and a customer, so a plugin that
    reads the wrong field (the order total instead of the amount) sends the wrong request."""
    amounts = money(currency=currency, bounds=bounds, representable=representable)
    keys = st.none() | idempotency_keys()
    if command in ("authorize", "sale"):
        payment_sources = sources if sources is not None else st.just("tok_ok")
        return amounts.flatmap(
            lambda amount: st.builds(
                Subject,
                amount=st.just(amount),
                source=payment_sources,
                order=_order_of(amount, st.just(amount)),
                customer=customers(),
                metadata=metadata(),
                return_url=st.none() | st.just("https://shop.example/return"),
                idempotency_key=keys,
            )
        )
    if command == "vault":
        payment_sources = sources if sources is not None else st.just("tok_ok")
        return st.builds(Subject, source=payment_sources, customer=customers(), idempotency_key=keys)
    if command not in _REFERENCED:
        raise ValueError(f"no subject strategy for command {command!r}")
    with_amount = command in ("capture", "refund", "complete")

    def follow_up(amount: Money) -> st.SearchStrategy[Subject]:
        return st.builds(
            Subject,
            reference=provider_ids(),
            amount=st.just(amount) if with_amount else st.none(),
            order=_order_of(amount, _totals_above(amount)),
            customer=customers(),
            final=st.booleans(),
            reason=st.none() | st.sampled_from(["requested_by_customer", "duplicate", "fraudulent"]),
            idempotency_key=keys,
        )

    return amounts.flatmap(follow_up)


def _totals_above(amount: Money) -> st.SearchStrategy[Money]:
    """An order total of `amount` or more: a capture or refund is often a part of its order."""
    return st.integers(0, 10 * amount.minor + 1000).map(lambda extra: amount + Money.minor_units(extra, amount.currency))


def _order_of(amount: Money, totals: st.SearchStrategy[Money]) -> st.SearchStrategy[Order]:
    """The order as the payment service sends it with every operation: its id and total, and often
    addresses, a customer and items."""
    return st.builds(
        Order,
        id=no_card_number(st.from_regex(r"[A-Za-z0-9\-]{1,32}", fullmatch=True)),
        amount=totals,
        billing=st.none() | addresses(),
        shipping=st.none() | addresses(),
        customer=st.none() | customers(),
        items=st.lists(line_items(amount.currency), max_size=3).map(tuple),
        description=st.none() | safe_text(min_size=1),
    )


def card_numbers(*, grouped: bool = True, every_form: bool = False) -> st.SearchStrategy[str]:
    """Card numbers the networks could issue (a prefix in an issuer range, a length that network
    issues, a valid Luhn check digit), in one run or, when `grouped`, sometimes in groups (4-4-4-4,
    Amex's 4-6-5) separated by spaces or dashes; with `every_form` also by dots, slashes and
    no-break spaces, in ASCII, full-width or Arabic-Indic digits."""

    def number(data: tuple[tuple[str, str, frozenset[int], str], int, int, str]) -> str:
        (low, _, _, _), length, prefix, rest = data
        body = (str(prefix).zfill(len(low)) + rest)[: length - 1]
        for check in "0123456789":
            if luhn_valid(body + check):
                return body + check
        raise AssertionError("unreachable: one check digit always completes a Luhn number")

    numbers = st.sampled_from(ISSUER_RANGES).flatmap(
        lambda r: st.tuples(
            st.just(r), st.sampled_from(sorted(r[2])), st.integers(int(r[0]), int(r[1])),
            st.text("0123456789", min_size=18, max_size=18),
        )
    ).map(number)
    if not grouped:
        return numbers

    def written(data: tuple[str, str, str]) -> str:
        digits, separator, script = data
        sizes = (4, 6, 5) if len(digits) == 15 else (4,) * 5
        groups, at = [], 0
        for size in sizes:
            if at < len(digits):
                groups.append(digits[at : at + size])
                at += size
        if at < len(digits):
            groups.append(digits[at:])
        text = separator.join(groups)
        return text.translate({48 + i: ord(script) + i for i in range(10)}) if script != "0" else text

    separators = st.sampled_from(["", " ", "-", *((".", "/", "\u00a0", " - ") if every_form else ())])
    scripts = st.sampled_from(["0", *(("\uff10", "\u0660") if every_form else ())])  # ASCII, full-width, Arabic-Indic
    return st.tuples(numbers, separators, scripts).map(written)


def shop_strings(kind: str | None = None) -> st.SearchStrategy[str]:
    """Ordinary shop data that must never be taken for a card number: order ids, keys, provider
    references, dates, phone numbers, IBANs, amounts, addresses, tracking numbers, sentences of
    them (`paywire.testing.shop_data`; `kind` is one of its `SHOP_KINDS`)."""
    return st.randoms(use_true_random=False).map(lambda rng: shop_string(rng, kind))


@attrs.frozen
class Operation:
    """One step after an authorization: `portion` per mille of what that step could take at most."""

    command: str
    portion: int = 1000
    final: bool = True

    def amount_of(self, available: int) -> int:
        return max(1, available * self.portion // 1000)


def operations(
    commands: Collection[str] = ("capture", "refund", "void", "fetch"), *, max_size: int = 6
) -> st.SearchStrategy[list[Operation]]:
    """Sequences of operations on one authorized payment; some are impossible on purpose."""
    step = st.builds(
        Operation,
        command=st.sampled_from(sorted(commands)),
        portion=st.one_of(st.just(1000), st.integers(1, 1000)),
        final=st.booleans(),
    )
    return st.lists(step, max_size=max_size)


@attrs.frozen
class WebhookPayload:
    """What a webhook says, before a plugin renders it in its provider's format."""

    id: str
    kind: str
    reference: str
    amount: Money


WEBHOOK_KINDS: Final = (EventKind.AUTHORIZED, EventKind.CAPTURED, EventKind.REFUNDED, EventKind.VOIDED,
                        EventKind.FAILED, EventKind.REVERSED)
"""The kinds the kit renders by default: the money kinds, and the two that undo money (an event
that failed or was reversed read as anything else counts money the provider never took)."""


def webhook_payloads(
    *,
    kinds: Collection[str] = WEBHOOK_KINDS,
    currency: st.SearchStrategy[str] | Collection[str] | None = None,
    bounds: Bounds | None = None,
    representable: Representable | None = None,
) -> st.SearchStrategy[WebhookPayload]:
    return st.builds(
        WebhookPayload,
        id=provider_ids("evt"),
        kind=st.sampled_from(sorted(kinds)),
        reference=provider_ids(),
        amount=money(currency=currency, bounds=bounds, representable=representable),
    )
