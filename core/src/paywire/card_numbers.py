"""Card numbers (PANs) as the card networks define them, found in text however they are written.

A digit string is a card number only when an issuer prefix range of some network covers it, its
length is one that network issues, and its Luhn check digit is right; so an order id, a date, a
phone number or a provider's reference that no network could have issued is never taken for one.

People write card numbers in one run or in groups: separated by spaces, dashes, dots or slashes
(one kind per number; invisible characters such as zero-width spaces count as space), in any
script's decimal digits (full-width, Arabic-Indic, ...), and next to other text or digits. All of those are found. What is deliberately not read as a card:

- a digit run longer than 19 digits, or written in regular blocks of four longer than 19 digits
  (a tracking or bank reference is one number, not a card number beside other digits);
- digits glued to a letter or underscore (`JJD0012345678901234567`, `pay_01931234...`): they
  belong to that identifier;
- digits after a `+` (a phone number in international form);
- a UUID, and a valid IBAN (its mod-97 check passes), whatever digits they hold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = [
    "ISSUER_RANGES", "MIN_DIGITS", "brand_of", "find_card_number", "find_card_span", "luhn_valid", "mask_card_numbers",
    "may_hold_card_numbers",
]

# (first prefix, last prefix, lengths issued, network), from the networks' published IIN ranges
# (ISO/IEC 7812 issuer identification numbers as each network assigns them).
ISSUER_RANGES: Final[tuple[tuple[str, str, frozenset[int], str], ...]] = tuple(
    (low, high, frozenset(lengths), brand)
    for low, high, lengths, brand in (
        ("4", "4", (13, 16, 19), "Visa"),
        ("51", "55", (16,), "Mastercard"),
        ("2221", "2720", (16,), "Mastercard"),
        ("34", "34", (15,), "American Express"),
        ("37", "37", (15,), "American Express"),
        ("300", "305", (14, 16, 17, 18, 19), "Diners Club"),
        ("36", "36", (14, 15, 16, 17, 18, 19), "Diners Club"),
        ("38", "39", (16, 17, 18, 19), "Diners Club"),
        ("3528", "3589", (16, 17, 18, 19), "JCB"),
        ("6011", "6011", (16, 17, 18, 19), "Discover"),
        ("644", "649", (16, 17, 18, 19), "Discover"),
        ("65", "65", (16, 17, 18, 19), "Discover"),
        ("622126", "622925", (16, 17, 18, 19), "Discover"),
        ("62", "62", (16, 17, 18, 19), "UnionPay"),
        ("8100", "8171", (16, 17, 18, 19), "UnionPay"),
        ("31", "31", (19,), "China T-Union"),
        ("5018", "5018", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("5020", "5020", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("5038", "5038", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("5893", "5893", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("6304", "6304", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("6759", "6759", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("6761", "6763", (13, 14, 15, 16, 17, 18, 19), "Maestro"),
        ("5019", "5019", (16,), "Dankort"),
        ("2200", "2204", (16, 17, 18, 19), "Mir"),
        ("2205", "2205", (16,), "BORICA"),
        ("60", "60", (16,), "RuPay"),
        ("81", "82", (16,), "RuPay"),
        ("508", "508", (16,), "RuPay"),
        ("353", "353", (16,), "RuPay"),
        ("356", "356", (16,), "RuPay"),
        ("9792", "9792", (16,), "Troy"),
        ("1", "1", (15,), "UATP"),
        ("506099", "506198", (16, 18, 19), "Verve"),
        ("507865", "507964", (16, 18, 19), "Verve"),
        ("650002", "650027", (16, 18, 19), "Verve"),
        ("1946", "1946", (16, 18, 19), "GPN"),
        ("50", "50", (16, 18, 19), "GPN"),
        ("56", "56", (16, 18, 19), "GPN"),
        ("58", "58", (16, 18, 19), "GPN"),
        ("60", "63", (16, 18, 19), "GPN"),
        ("636", "636", (16, 17, 18, 19), "InterPayment"),
        ("637", "639", (16,), "InstaPayment"),
        ("357111", "357111", (16,), "LankaPay"),
        ("8600", "8600", (16,), "UzCard"),
        ("9860", "9860", (16,), "Humo"),
    )
)
MIN_DIGITS, _MAX_DIGITS = 13, 19  # the shortest and longest card numbers any network issues


def luhn_valid(digits: str) -> bool:
    """Whether an ASCII digit string passes the Luhn (mod 10) check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str | None:
    """The network that issues card numbers like `digits` (ASCII digits), or None: a prefix range
    covering it, a length that network issues, and a valid Luhn check digit."""
    if not (MIN_DIGITS <= len(digits) <= _MAX_DIGITS) or not luhn_valid(digits):
        return None
    for low, high, lengths, brand in ISSUER_RANGES:
        if len(digits) in lengths and low <= digits[: len(low)] <= high:
            return brand
    return None


# -- finding them in text ---------------------------------------------------------------------
_SEPARATOR_CLASSES: Final = {
    # Invisible characters (zero-width spaces and joiners, soft hyphen, word joiner, byte order
    # mark): text copied from a page or a PDF carries them between the groups; they count as space.
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", "s"),
    **dict.fromkeys("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys(".\u00b7\u2024\u2027\u3002\uff0e\uff61\u30fb", "."),
    **dict.fromkeys("/\u2044\u2215\uff0f", "/"),
}
_SEPARATORS = "".join(re.escape(char) for char in _SEPARATOR_CLASSES)
# Digits joined by short separator runs; `\d` and `\s` are Unicode-aware.
_CHAIN = re.compile(rf"\d+(?:(?:\s|[{_SEPARATORS}]){{1,3}}\d+)*")
_GROUP = re.compile(r"\d+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_GAP = rf"(?:\s|[{_SEPARATORS}])"
# A necessary condition for a card number: 13 digits, each gap a separator run a chain allows.
# Separators and digits are disjoint, so giving a gap back can never let a digit match: the gap
# runs are possessive, and nothing is retried; most fields (ids, keys, amounts, URLs) fail it at
# once and are not split into chains at all.
_CANDIDATE = re.compile(rf"\d(?:{_GAP}{{0,3}}+\d){{{MIN_DIGITS - 1}}}")


def _ascii_class(pattern: str) -> str:
    """The ASCII characters `pattern` matches, as a character class."""
    return "[" + "".join(f"\\x{code:02x}" for code in range(128) if re.fullmatch(pattern, chr(code))) + "]"


# The same condition for ASCII text, with the very characters `\d` and the gap match there
# spelt out: a plain character class is scanned several times faster than Unicode categories.
_ASCII_DIGIT = _ascii_class(r"\d")
_ASCII_CANDIDATE = re.compile(rf"{_ASCII_DIGIT}(?:{_ascii_class(_GAP)}{{0,3}}+{_ASCII_DIGIT}){{{MIN_DIGITS - 1}}}")
# Every candidate is at least 13 digits and gap characters in a row. In ASCII text that is found
# by mapping each byte to 1 (a digit or a gap) or 0 and looking for thirteen 1s: a translation and
# a substring search, in C, several times cheaper than the expression's scan over the hex ids and
# keys most texts hold. Only text that passes it is scanned.
_DIGIT_OR_GAP = bytes(49 if code < 128 and re.fullmatch(rf"\d|{_GAP}", chr(code)) else 48 for code in range(256))
_RUN = b"1" * MIN_DIGITS


def _has_candidate(text: str) -> bool:
    """Whether `text` passes the necessary condition (`_CANDIDATE`)."""
    if len(text) < MIN_DIGITS:
        return False
    if text.isascii():
        return _RUN in text.encode("ascii").translate(_DIGIT_OR_GAP) and _ASCII_CANDIDATE.search(text) is not None
    return _CANDIDATE.search(text) is not None


def _kind(gap: str) -> str:
    """A gap's separators by class ('s' for any space), so '4111 1111' and '4111\u00a01111' match."""
    return "".join(_SEPARATOR_CLASSES.get(char, "s") for char in gap)


def _ascii(group: str) -> str:
    if group.isascii():
        return group
    return "".join(str(unicodedata.decimal(char)) for char in group)


def _masked_ids(text: str) -> str:
    """`text` with UUIDs and valid IBANs blanked out (same length), as they are never cards."""
    if "-" in text:
        text = _UUID.sub(lambda m: "x" * len(m.group()), text)
    for match in _IBAN.finditer(text):
        if _iban_valid(match.group().replace(" ", "")):
            start, end = match.span()
            text = text[:start] + "x" * (end - start) + text[end:]
    return text


def _iban_valid(iban: str) -> bool:
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _regular_blocks(groups: list[str]) -> bool:
    """Blocks of four digits, the last possibly shorter: how long references are written."""
    return len(groups) > 1 and all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4


def _long_references(groups: list[str], kinds: list[str]) -> list[bool]:
    """For each gap, whether it joins a number written in regular blocks of four that is longer
    than any card (a tracking or bank reference): such a number is one number, not a card beside
    other digits."""
    blocked = [False] * len(kinds)
    start = 0
    while start < len(kinds):
        end = start
        while end + 1 < len(kinds) and kinds[end + 1] == kinds[start]:
            end += 1
        segment = groups[start : end + 2]
        if _regular_blocks(segment) and sum(map(len, segment)) > _MAX_DIGITS:
            blocked[start : end + 1] = [True] * (end + 1 - start)
        start = end + 1
    return blocked


def may_hold_card_numbers(texts: Iterable[str]) -> bool:
    """Whether any of `texts` passes the necessary condition `find_card_span` starts with; False
    means none of them holds a card number. One search screens them all: joined by NUL, which is
    neither a digit, a space nor a separator, they admit a candidate exactly when one of them does."""
    return _has_candidate("\0".join(texts))


def find_card_span(text: str) -> tuple[int, int] | None:
    """Where the first card number in `text` is written (start, end), or None."""
    if not _has_candidate(text):
        return None
    scanned = _masked_ids(text)
    for chain in _CHAIN.finditer(scanned):
        found = _in_chain(scanned, chain.start(), chain.group())
        if found is not None:
            return chain.start() + found[0], chain.start() + found[1]
    return None


def _in_chain(text: str, offset: int, chain: str) -> tuple[int, int] | None:
    """The first card number among a chain's digit groups: one group, or consecutive groups
    joined by one kind of separator."""
    spans = [m.span() for m in _GROUP.finditer(chain)]
    groups = [_ascii(chain[a:b]) for a, b in spans]
    if sum(map(len, groups)) < MIN_DIGITS:
        return None
    kinds = [_kind(chain[spans[i][1] : spans[i + 1][0]]) for i in range(len(spans) - 1)]
    before = text[offset - 1] if offset else ""
    after_at = offset + len(chain)
    after = text[after_at] if after_at < len(text) else ""
    glued_left = before.isalnum() or before == "_"
    glued_right = after.isalnum() or after == "_"
    last = len(groups) - 1
    blocked = _long_references(groups, kinds)
    for first in range(len(groups)):
        if first == 0 and before == "+":
            continue  # a phone number in international form
        digits, found = "", None
        for stop in range(first, last + 1):
            if stop > first and (blocked[stop - 1] or kinds[stop - 1] != kinds[first]):
                break  # one kind of separator per number; never inside a long reference
            digits += groups[stop]
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) < MIN_DIGITS:
                continue
            if (first == 0 and glued_left) or (stop == last and glued_right):
                continue  # digits glued to a word belong to that word: an id, a tracking number
            if brand_of(digits) is not None:
                found = spans[first][0], spans[stop][1]  # the longest from here: mask all of it
        if found is not None:
            return found
    return None


def find_card_number(text: str) -> str | None:
    """The first card number in `text` as ASCII digits, or None."""
    span = find_card_span(text)
    if span is None:
        return None
    return "".join(_ascii(g) for g in _GROUP.findall(text[span[0] : span[1]]))


def mask_card_numbers(text: str, mask: str = "***") -> str:
    """`text` with every card number replaced by `mask`."""
    while (span := find_card_span(text)) is not None:
        text = text[: span[0]] + mask + text[span[1] :]
    return text
