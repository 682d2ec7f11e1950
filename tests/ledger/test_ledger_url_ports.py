"""A PostgreSQL ledger URL's port as written: one that is no port (letters, out of range) is a
`ConfigurationError` naming the URL, its password masked, before anything is opened; a URL naming
several hosts (libpq's `host1:port1,host2:port2`) that cannot be reached is one too, not the
`ValueError` urllib raises for its port."""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote, urlsplit

import pytest

from paywire.errors import ConfigurationError
from paywire.ledger.url import open_ledger
from tests.ledger.test_ledger_url_passwords import PASSWORD, shown


@pytest.mark.parametrize(("netloc", "said"), [
    ("127.0.0.1:abc", "'abc'"),
    ("127.0.0.1:99999", "'99999'"),
    ("127.0.0.1:-1", "'-1'"),
    ("127.0.0.1:0", "'0'"),
    ("127.0.0.1:\uff15\uff14\uff13\uff12", "'\uff15\uff14\uff13\uff12'"),  # full-width 5432
    ("[::1]:x", "'x'"),
    ("127.0.0.1:5432,127.0.0.1:abc", "'abc'"),
])
def test_a_port_that_is_no_port_is_a_configuration_error(netloc: str, said: str) -> None:
    url = f"postgresql://shop:{PASSWORD}@{netloc}/test"
    with pytest.raises(ConfigurationError) as raised:
        open_ledger(url)
    message = str(raised.value)
    assert "port" in message and said in message and "65535" in message, message
    assert "shop:***@" in message
    assert PASSWORD not in shown(raised.value)


def test_several_hosts_out_of_reach_are_a_configuration_error() -> None:
    url = f"postgresql://shop:{PASSWORD}@127.0.0.1:1,127.0.0.1:2/test"
    with pytest.raises(ConfigurationError) as raised:
        open_ledger(url)
    message = str(raised.value)
    assert "127.0.0.1:1,127.0.0.1:2" in message and "shop:***@" in message, message
    assert PASSWORD not in shown(raised.value)


@pytest.mark.postgres
def test_a_url_without_a_host_part_gives_libpq_its_query(postgres_dsn: str) -> None:
    """`postgresql:///dbname?host=...` (libpq's form for a Unix socket's directory, or the host as a
    parameter) reaches libpq as written: rebuilt without its `//`, libpq read it as a keyword string."""
    parts = urlsplit(postgres_dsn)
    query = {"host": parts.hostname or "", "port": str(parts.port or 5432), "user": parts.username or "",
             "schema": f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"}
    url = f"postgresql://{parts.path}?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
    assert url.startswith("postgresql:///")
    ledger = open_ledger(url)
    try:
        assert ledger.list_payments() == []
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_url_naming_several_hosts_opens_the_one_that_answers(postgres_dsn: str) -> None:
    """libpq's `host1:port1,host2:port2`: the first refuses, the second is the server."""
    parts = urlsplit(postgres_dsn)
    hosts = f"127.0.0.1:1,{parts.hostname}:{parts.port or 5432}"
    user = f"{parts.username}@" if parts.username else ""
    ledger = open_ledger(f"postgresql://{user}{hosts}{parts.path}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        assert ledger.list_payments() == []
    finally:
        ledger.close()
