"""Security rules in one place: hidden secrets, no raw card numbers, https only, redaction.

These checks run on every request the pipeline builds, so a plugin cannot forget them.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from paywire.errors import ConfigurationError, InvalidRequest

__all__ = [
    "RedactingFilter",
    "Secret",
    "check_endpoint",
    "find_card_number",
    "get_logger",
    "is_loopback",
    "luhn_valid",
    "redact",
    "refuse_card_numbers",
]

_MASK = "***"
# Every secret value ever wrapped, so redaction also masks secrets of no recognisable shape
# (a PayPal client secret, an OAuth access token).
_known_secrets: set[str] = set()


class Secret:
    """A credential that never shows itself: repr, str and format print a mask.

    Call `reveal()` at the one place that must send it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigurationError("a secret must be a non-empty string")
        self._value = value
        if len(value) >= 6:
            _known_secrets.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


# -- card numbers -------------------------------------------------------------------------------
# A card number as people write it: 13-19 digits in one run, or in groups of four (4-4-4-4-3)
# or Amex's 4-6-5 separated by one kind of space or dash. Other digit groupings (UUIDs, phone
# numbers, dates) are not card numbers and are left alone.
_DIGIT_RUN = re.compile(
    r"(?<![0-9])[0-9]{13,19}(?![0-9])"
    r"|(?<![0-9A-Za-z-])[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}(?:\1[0-9]{4})?(?:\1[0-9]{1,4})?(?![0-9A-Za-z-])"
    r"|(?<![0-9A-Za-z-])[0-9]{4}([ -])[0-9]{6}\2[0-9]{4,5}(?![0-9A-Za-z-])"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def find_card_number(text: str) -> str | None:
    """The first 13-19 digit run (spaces or dashes allowed) passing Luhn, or None."""
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return digits
    return None


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, str(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


# A run of 13+ digits in encoded bytes, separators possibly percent- or plus-encoded.
# (a character class rather than alternatives: this runs over every request body, and candidates
# are decoded and checked properly afterwards)
_WIRE_RUN = re.compile(rb"[0-9][0-9 +%dD-]{11,}[0-9]")


def refuse_card_numbers(request: Mapping[str, Any], *wire: bytes | str | None) -> None:
    """Refuse a request that carries anything that looks like a raw card number (PAN).

    The backend must only ever see tokens; the error names the field, never the number. Given the
    encoded body and URL (`wire`), a cheap scan of those bytes comes first and the request tree
    is walked only when it finds a candidate.
    """
    if wire and not any(_wire_candidate(part) for part in wire if part):
        return
    for path, text in _strings(request, ""):
        if len(text) >= 13 and find_card_number(text) is not None:
            raise InvalidRequest(
                f"field {path!r} holds what looks like a raw card number; send a payment "
                "method token from the provider's client-side library instead",
                param=path,
                code="raw_card_number",
            )
    for part in wire:
        if part and find_card_number(_unquote(part)) is not None:
            raise InvalidRequest(
                "the request holds what looks like a raw card number; send a payment method token "
                "from the provider's client-side library instead",
                code="raw_card_number",
            )


def _wire_candidate(part: bytes | str) -> bool:
    for match in _WIRE_RUN.finditer(part.encode() if isinstance(part, str) else part):
        if find_card_number(_unquote(match.group())) is not None:
            return True
    return False


def _unquote(part: bytes | str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(part.decode("utf-8", "replace") if isinstance(part, bytes) else part)


# -- endpoints ----------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, *, environment: str) -> None:
    """https only; plain http and loopback only in the sandbox environment (emulators)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"endpoint {url!r} is not an absolute http(s) URL")
    loopback = is_loopback(parts.hostname)
    if environment == "live" and loopback:
        raise ConfigurationError(
            f"endpoint {url!r} is a loopback address in the live environment; "
            "set environment = 'sandbox' to use a local emulator"
        )
    if parts.scheme == "http" and not (loopback and environment == "sandbox"):
        raise ConfigurationError(
            f"endpoint {url!r} uses plain http; use https (http is allowed only for loopback "
            "emulators in the sandbox environment)"
        )


# -- redaction ----------------------------------------------------------------------------------
_SENSITIVE_KEY = re.compile(
    r"(authorization|secret|password|passwd|token|api[_-]?key|client[_-]?secret|cvc|cvv|"
    r"card[_-]?number|signature|cookie)",
    re.IGNORECASE,
)
_SECRET_SHAPES = re.compile(
    r"\b(?:(?:sk|rk|pk)_(?:test|live)_[0-9A-Za-z]{6,}|whsec_[0-9A-Za-z+/=]{6,}"
    r"|Bearer\s+[^\s,;\"']+|Basic\s+[A-Za-z0-9+/=]{6,})"
)


def redact(value: Any) -> Any:
    """A copy of `value` with secrets and card numbers masked, for logs and the ledger."""
    if isinstance(value, Mapping):
        return {
            key: (_MASK if isinstance(key, str) and _SENSITIVE_KEY.search(key) else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, Secret):
        return _MASK
    if isinstance(value, str):
        masked = _SECRET_SHAPES.sub(_MASK, value)
        for secret in _known_secrets:
            if secret in masked:
                masked = masked.replace(secret, _MASK)
        if len(masked) >= 13 and find_card_number(masked):
            masked = _DIGIT_RUN.sub(lambda m: _MASK if find_card_number(m.group()) else m.group(), masked)
        return masked
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets and card numbers in messages and arguments.

    Every paywire logger comes from `get_logger`, which installs it; add it to any handler of
    your own that sees payment data.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = redact(record.args)
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def get_logger(name: str) -> logging.Logger:
    """A `paywire.*` logger whose records are redacted before any handler sees them."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
