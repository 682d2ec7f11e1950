"""Secrets of awkward shapes are masked whole wherever text shows them.

Configured credentials are whatever the operator pasted: a key with a shape's prefix and more
after it, regex metacharacters, URL-reserved characters, both quotes, a backslash, a control
character, non-ASCII letters. Redaction must not work only for keys that look like Stripe's.
The search here is independent of the forms redaction knows: any run of the secret's characters,
as written or as a repr writes it, left in the text is a leak.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from paywire import security
from paywire.security import Secret, get_logger, redact

# Prefixes that are themselves shapes redaction recognises: a key that starts like one but goes on
# with characters the shape does not take must still be masked to its end.
PREFIXES = ("", "sk_test_4eC39HqLyj", "rk_live_51Habcd", "whsec_Zm9vYmFy", "pi_3Mtw_secret_abcdef12",
            "Bearer ", "Basic dXNlcjpwYXNz")
AWKWARD = st.characters(blacklist_categories=("Cs",))  # any character a str can hold and UTF-8 can write
TAILS = st.text(AWKWARD, min_size=1, max_size=24) | st.text(st.sampled_from("!#$%&'()*+,/:;=?@[]\\^{|}.-\"~ \t\n"),
                                                            min_size=1, max_size=12)


@st.composite
def secrets(draw: st.DrawFn) -> str:
    secret = draw(st.sampled_from(PREFIXES)) + draw(TAILS) + draw(st.text(AWKWARD, max_size=8))
    assume(len(secret) >= 8 and secret.strip() == secret)  # a credential as settings keep it
    return secret


# How text shows a secret: as written into a message, quoted by a repr, inside a container's repr,
# JSON-encoded, percent-encoded in a URL, in an Authorization header echoed back, as bytes.
CONTEXTS: dict[str, Callable[[str], str]] = {
    "message": lambda s: f"refused the key {s} as given",
    "repr in a message": lambda s: f"refused the key {s!r} as given",
    "repr of a tuple": lambda s: repr(("refused", s)),
    "repr of a mapping": lambda s: repr({"note": s}),
    "JSON": lambda s: json.dumps({"message": f"refused {s}"}),
    "JSON, unicode kept": lambda s: json.dumps({"message": s}, ensure_ascii=False),
    "query": lambda s: f"https://api.example/v1/x?key={quote(s, safe='')}&y=1",
    "form": lambda s: f"grant_type=client_credentials&secret={quote_plus(s)}",
    "echoed header": lambda s: f"you sent Authorization: Bearer {s}, which was refused",
    "bytes": lambda s: repr(b"body " + s.encode()),
}


def leaked(secret: str, shown: str, template: str, width: int = 4) -> list[str]:
    """Runs of `width` characters of the secret (as written, or as a repr writes it) left in
    `shown` that the template around it does not account for."""
    forms = {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]}
    runs = {form[i:i + width] for form in forms for i in range(max(1, len(form) - width + 1))}
    return sorted(run for run in runs if run in shown and run not in template and run not in security._MASK)



@pytest.mark.usefixtures("known_secrets_restored")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=secrets(), context=st.sampled_from(sorted(CONTEXTS)))
def test_a_known_secret_of_any_shape_is_masked_whole(secret: str, context: str) -> None:
    Secret(secret)
    text, template = CONTEXTS[context](secret), CONTEXTS[context]("")
    shown = redact(text)
    assert not leaked(secret, shown, template), (context, shown)


@pytest.mark.usefixtures("known_secrets_restored")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=50)
@given(secret=secrets())
def test_a_log_record_at_debug_shows_no_part_of_an_awkward_secret(secret: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The record's message, its arguments (a string, a tuple, a mapping) and the traceback of
    an error quoting the secret, as a handler formats them."""
    Secret(secret)
    shown, template = _logged(secret, caplog), _logged("", caplog)
    assert not leaked(secret, shown, template), shown


def _logged(secret: str, caplog: pytest.LogCaptureFixture) -> str:
    logger = get_logger("paywire.test_secret_shapes")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        logger.debug("sent %s", secret)
        logger.debug("sent %r and %r", (secret, 1), {"note": secret})
        try:
            raise ValueError(f"the provider refused {secret!r}")
        except ValueError:
            logger.debug("failed", exc_info=True)
    return caplog.text


@pytest.mark.parametrize("secret", [
    "sk_test_4eC39HqLyj!and-the-rest",  # a shape's prefix, then characters the shape does not take
    "Bearer abc,def;ghi-jkl",  # the Bearer shape stops at a comma
    "it's a \"quoted\" secret",  # a repr escapes one of the quotes: neither raw nor JSON form shows
    "control\x01char-secret",  # a repr writes \x01, JSON \u0001
])
@pytest.mark.usefixtures("known_secrets_restored")
def test_the_awkward_secrets_found_before_are_masked_whole(secret: str) -> None:
    Secret(secret)
    for context, render in CONTEXTS.items():
        shown = redact(render(secret))
        assert not leaked(secret, shown, render("")), (context, shown)
