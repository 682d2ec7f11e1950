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

pytestmark = pytest.mark.slow


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "paywire_paypal.emulator", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, line.rsplit(" ", 1)[-1].strip()


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
