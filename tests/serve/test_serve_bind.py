"""`paywire serve` on an address it cannot listen on fails before it opens the ledger: a failed
start leaves nothing behind (no ledger schema created), in one line and the setup-error exit code."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from tests.serve.support import CountingFakePay, ServeProcess, write_config


def _schema_exists(pg_url: str) -> bool:
    dsn, schema = pg_url.split("?schema=")
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["unresolvable host", "port in use"])
def test_serve_on_an_address_it_cannot_listen_on_creates_no_ledger(
        provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path, tmp_path: Path, where: str) -> None:
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        args = ["--host", "exa mple"] if where == "unresolvable host" else ["--port", str(taken.getsockname()[1])]
        server = ServeProcess(config, plugin_path, args)
        assert server.exit_code() == 3, server.stderr
    assert not _schema_exists(pg_url), "a failed start created the ledger"
    assert len(server.stderr) == 1 and server.stderr[0].startswith(
        "paywire: ConfigurationError: paywire serve cannot listen on "), server.stderr


@pytest.mark.postgres
def test_serve_without_uvicorn_creates_no_ledger(provider: tuple[CountingFakePay, str], pg_url: str,
                                                  plugin_path: Path, tmp_path: Path) -> None:
    """uvicorn not installed (an `import uvicorn` that fails, first on the path): refused in one
    line, exit 3, before the ledger is opened."""
    import subprocess

    shadow = tmp_path / "shadow" / "uvicorn"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'uvicorn\'")\n')
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    command, env = ServeProcess.command(config, plugin_path, ["--port", "0"])
    env["PYTHONPATH"] = f"{shadow.parent}:{env['PYTHONPATH']}"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert not _schema_exists(pg_url), "a failed start created the ledger"
    assert (done.returncode, done.stderr) == (
        3, "paywire: ConfigurationError: paywire serve needs uvicorn: pip install 'paywire[server]'\n"), done.stderr


@pytest.mark.parametrize(("host", "family"), [("localhost", socket.AF_INET), ("127.0.0.1", socket.AF_INET),
                                              ("::1", socket.AF_INET6)])
def test_serve_binds_the_address_family_uvicorn_would(host: str, family: socket.AddressFamily) -> None:
    """An IPv6 address when the host has a colon, IPv4 otherwise, as uvicorn binds its own."""
    from paywire.errors import ConfigurationError
    from paywire.serve.server import ServeOptions, bind

    try:
        sock = bind(ServeOptions(host=host, port=0))
    except ConfigurationError as exc:  # a machine without IPv6 loopback
        pytest.skip(f"cannot bind {host}: {exc}")
    with sock:
        assert sock.family == family
