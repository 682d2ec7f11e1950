"""`python -m paywire_paypal.emulator` serves the emulator, over HTTP or HTTPS."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys

import pytest
import urllib3

from paywire.testing.emulator import failed_starts

pytestmark = pytest.mark.slow


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "paywire_paypal.emulator", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(4)]  # client id, client secret, webhook id, then the URL
    assert "listening on" in lines[-1], lines
    return process, lines[-1].rsplit(" ", 1)[-1].strip()


def token(pool: urllib3.PoolManager, url: str, client_id: str, secret: str) -> urllib3.BaseHTTPResponse:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return pool.request(
        "POST",
        f"{url}/v1/oauth2/token",
        body=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_cli_serves_with_credentials_from_the_environment():
    process, url = start(env={"PAYPAL_CLIENT_ID": "cli-id", "PAYPAL_CLIENT_SECRET": "cli-secret"})
    try:
        pool = urllib3.PoolManager()
        assert token(pool, url, "cli-id", "wrong").status == 401
        response = token(pool, url, "cli-id", "cli-secret")
        assert response.status == 200
        assert json.loads(response.data)["token_type"] == "Bearer"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_serves_https_with_https_links(tmp_path, tls_ca):
    cert = tls_ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    process, url = start(
        "--certfile", str(cert_file), "--keyfile", str(key_file), "--client-id", "a", "--client-secret", "b"
    )
    try:
        assert url.startswith("https://")
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        pool = urllib3.PoolManager(ssl_context=context)
        access = json.loads(token(pool, url, "a", "b").data)["access_token"]
        order = pool.request(
            "POST",
            f"{url}/v2/checkout/orders",
            body=json.dumps(
                {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": "1.00"}}]}
            ),
            headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"},
        )
        assert order.status == 201
        assert all(link["href"].startswith("https://127.0.0.1:") for link in json.loads(order.data)["links"])
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_prints_the_credentials_and_webhook_id_it_accepts_at_start():
    process = subprocess.Popen(
        [sys.executable, "-m", "paywire_paypal.emulator", "--port", "0", "--client-id", "cid", "--webhook-id", "WH-7"],
        stdout=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("PAYPAL_")},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert lines[:3] == ["client id: cid", "client secret: emulator-client-secret", "webhook id: WH-7"]
    assert "listening on http://127.0.0.1:" in lines[3]


def test_cli_help_lists_every_option_and_nothing_comes_before_it():
    result = subprocess.run([sys.executable, "-m", "paywire_paypal.emulator", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m paywire_paypal.emulator")
    for option in ("--host", "--port", "--certfile", "--keyfile", "--webhook-url", "--client-id", "--client-secret",
                   "--webhook-id", "--token-ttl"):
        assert option in result.stdout


def test_cli_a_port_in_use_or_a_missing_certificate_is_one_line():
    for message, result in failed_starts("paywire_paypal.emulator"):
        assert result.returncode == 1 and message in result.stderr and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
