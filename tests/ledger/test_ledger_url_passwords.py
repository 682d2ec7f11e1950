"""A ledger URL's password shows nowhere when the URL cannot be opened: not in the error, its
arguments, the errors chained to it or its traceback (what the command line prints: tests/cli).

Among the URLs, server URLs given the sqlite: scheme by mistake (a user and password before the
host, a `password` query parameter), and PostgreSQL URLs libpq refuses or cannot connect with.
"""

from __future__ import annotations

import traceback

import pytest

from paywire.errors import ConfigurationError
from paywire.ledger.url import open_ledger

PASSWORD = "Pw0rd-Zq9xK7"

URLS = [
    f"sqlite://shop:{PASSWORD}@db.internal/ledger.db",
    f"sqlite://shop:{PASSWORD}@/ledger.db",
    f"sqlite:///ledger.db?password={PASSWORD}",
    f"sqlite:///?password={PASSWORD}",
    f"postgresql://nobody_{PASSWORD[:3]}:{PASSWORD}@127.0.0.1:5432/test",  # a role that does not exist
    f"postgresql://shop:{PASSWORD}@127.0.0.1:1/test",  # nothing listens
    f"postgresql://shop:{PASSWORD}@127.0.0.1:5432/test?bogus=1",
    f"postgresql://shop:{PASSWORD}@127.0.0.1:5432/test?sslmode=bogus",
    f"postgresql://shop:{PASSWORD}%ZZ@127.0.0.1:5432/test",
    f"postgresql://127.0.0.1:1/test?password={PASSWORD}",
    f"mysql://shop:{PASSWORD}@127.0.0.1/ledger",
    f"host=127.0.0.1 password={PASSWORD} dbname=test",
    # libpq's sslpassword: the passphrase of the client certificate's key, as secret as a password
    f"postgresql://shop@127.0.0.1:1/test?sslmode=require&sslpassword={PASSWORD}",
    f"postgresql://shop@127.0.0.1:5432/test?sslpassword={PASSWORD}&bogus=1",
    f"host=127.0.0.1 sslpassword={PASSWORD} dbname=test",
]


def shown(error: BaseException) -> str:
    """Everything an error and those chained to it show: message, repr, arguments, traceback."""
    texts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args),
                  "".join(traceback.format_exception(type(current), current, current.__traceback__))]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


@pytest.mark.parametrize("url", URLS)
def test_an_unopenable_ledger_url_shows_no_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_ledger(url)
    assert PASSWORD not in shown(raised.value)
    assert "***" in str(raised.value)  # the URL is still shown, its password masked
