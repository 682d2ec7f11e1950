"""Which PAYPAL-CERT-URL to trust, and the certificates fetched from there.

A webhook names the URL of the certificate whose key signed it. Anyone can send a webhook, so
the URL is the trust decision: it must be https on one of PayPal's own API hosts for the
environment (`api.paypal.com`, `api-m.paypal.com` live; `api.sandbox.paypal.com`,
`api-m.sandbox.paypal.com` in the sandbox), at PayPal's certificate path, without credentials,
query or fragment. The certificate is fetched with TLS verified, cached by URL (PayPal's cert URLs
name one certificate each), and its validity dates are checked on every use. A fetch that failed
is remembered for `FAILED_FOR` seconds, and its refusal repeated without asking again: anyone may
send a delivery naming a made-up certificate at PayPal's host, unsigned, and each would otherwise
cost a request to PayPal. Made-up ids are free to vary, so while `FAILING` fetches have failed in
the last `FAILED_FOR` seconds no new URL is fetched either: the delivery is refused as retryable
(PayPal delivers a genuine event again later), and PayPal is asked at most `FAILING` times a
minute whatever the deliveries name. A certificate already fetched is answered from the cache
meanwhile. After that time a URL is fetched again, so a certificate PayPal could not serve for a
moment is trusted once it can.

The sandbox environment (never live) also trusts:

- the host of the configured API endpoint (`base_url`): an emulator or a proxy standing in for
  PayPal, which the method already trusts with its credentials and every payment answer;
- the hosts in the `webhook_cert_hosts` option ("host" for any port, "host:port" for one);
- plain http to those hosts when they are loopback addresses (the core's rule for emulators),
  and the CA bundle in the `webhook_ca_certs` option for their https.

In the live environment these options are refused when the verifier is built, rather than
ignored: a configuration that widens trust must not appear to work.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Final
from urllib.parse import SplitResult, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from paywire import (
    Client,
    ConfigurationError,
    GatewaySettings,
    PaywireError,
    Timeout,
    Transfer,
    Urllib3Client,
    WebhookVerificationError,
)
from paywire.security import is_loopback

__all__ = ["FAILED_FOR", "FAILING", "PAYPAL_CERT_HOSTS", "CertificateStore", "CertificateTrust"]

PAYPAL_CERT_HOSTS: Final = {
    "live": frozenset({"api.paypal.com", "api-m.paypal.com"}),
    "sandbox": frozenset({"api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}),
}
CERT_HOSTS_OPTION: Final = "webhook_cert_hosts"
CA_CERTS_OPTION: Final = "webhook_ca_certs"
_CERT_PATH: Final = re.compile(r"/v1/notifications/certs/[0-9A-Za-z_-]{1,100}")
_MAX_PEM: Final = 64 * 1024
_CACHED: Final = 32
FAILED_FOR: Final = 60.0  # seconds a failed fetch is answered from memory
FAILING: Final = 16  # failed fetches in the last FAILED_FOR seconds past which no new URL is fetched


def _refuse(message: str, code: str = "untrusted_certificate", *, retryable: bool = False) -> WebhookVerificationError:
    return WebhookVerificationError(message, provider="paypal", code=code, retryable=retryable)


def _host_entry(entry: str) -> tuple[str, int | None]:
    """("host", port or None) of a trusted-host entry ("host" or "host:port")."""
    parts = urlsplit(f"//{entry.strip()}")
    if not parts.hostname or parts.path or parts.username or parts.password:
        raise ConfigurationError(f"{CERT_HOSTS_OPTION} entry {entry!r} is not a host or host:port")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{CERT_HOSTS_OPTION} entry {entry!r} has an invalid port") from None
    return parts.hostname.lower(), port


def _utc(certificate: x509.Certificate, name: str) -> datetime:
    """A validity date, timezone-aware (cryptography before 42 has only naive UTC dates)."""
    aware = getattr(certificate, f"{name}_utc", None)
    if isinstance(aware, datetime):
        return aware
    naive: datetime = getattr(certificate, name)
    return naive.replace(tzinfo=UTC)


class CertificateTrust:
    """Decides whether a PAYPAL-CERT-URL may be fetched (see the module docstring)."""

    def __init__(self, environment: str, extra_hosts: Iterable[tuple[str, int | None]] = ()) -> None:
        self.environment = environment
        self._paypal = PAYPAL_CERT_HOSTS["live" if environment == "live" else "sandbox"]
        self._extra = frozenset(extra_hosts) if environment == "sandbox" else frozenset()

    def __repr__(self) -> str:
        return f"CertificateTrust({self.environment!r}, extra={sorted(map(str, self._extra))})"

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> CertificateTrust:
        configured = settings.option(CERT_HOSTS_OPTION) or ()
        if isinstance(configured, str):
            configured = [configured]
        if settings.environment != "sandbox":
            for option in (CERT_HOSTS_OPTION, CA_CERTS_OPTION):
                if settings.option(option):
                    raise ConfigurationError(
                        f"method {settings.gateway!r}: option {option!r} widens the trust of webhook "
                        f"certificates and is honoured only in the sandbox environment, not {settings.environment}",
                        provider="paypal",
                    )
            return cls(settings.environment)
        api = urlsplit(settings.base_url)
        extra = [_host_entry(entry) for entry in configured]
        if api.hostname:
            extra.append((api.hostname.lower(), api.port))
        return cls(settings.environment, extra)

    def check(self, url: str) -> SplitResult:
        """The parsed URL when it may be fetched; `WebhookVerificationError` naming why not."""
        try:
            parts = urlsplit(url)  # ValueError for an unclosed IPv6 bracket
        except ValueError:
            raise _refuse("PAYPAL-CERT-URL is not a URL") from None
        try:
            port = parts.port
        except ValueError:
            raise _refuse("PAYPAL-CERT-URL has an invalid port") from None
        host = (parts.hostname or "").lower()
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            raise _refuse("PAYPAL-CERT-URL carries credentials, a query or a fragment")
        if not _CERT_PATH.fullmatch(parts.path):
            raise _refuse("PAYPAL-CERT-URL is not at PayPal's certificate path")
        extra = (host, port) in self._extra or (host, None) in self._extra
        if host in self._paypal and parts.scheme == "https" and port in (None, 443):
            return parts
        if extra and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
            return parts
        raise _refuse(f"PAYPAL-CERT-URL is not on PayPal's {self.environment} hosts over https")


class CertificateStore:
    """Fetches trusted signing certificates and keeps them, by URL."""

    def __init__(self, trust: CertificateTrust, client: Client, timeout: Timeout, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trust = trust
        self._client = client
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, x509.Certificate] = OrderedDict()
        # URL -> (when it may be fetched again, the refusal its fetch ended in: message, code, retryable)
        self._failed: OrderedDict[str, tuple[float, str, str, bool]] = OrderedDict()

    def __repr__(self) -> str:
        return f"CertificateStore({self.trust!r}, cached={len(self._cache)})"

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> CertificateStore:
        ca_certs = settings.option(CA_CERTS_OPTION) if settings.environment == "sandbox" else None
        return cls(CertificateTrust.from_settings(settings), Urllib3Client(ca_certs=ca_certs), settings.timeout)

    def public_key(self, url: str, now: datetime | None = None) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at `url`: trusted URL, valid today, fetched once."""
        self.trust.check(url)
        with self._lock:
            certificate = self._cache.get(url)
            if certificate is not None:
                self._cache.move_to_end(url)
        if certificate is None:
            certificate = self._fetch_once(url)
        moment = now or datetime.now(UTC)
        if not _utc(certificate, "not_valid_before") <= moment <= _utc(certificate, "not_valid_after"):
            raise _refuse("the webhook signing certificate is not valid at this time", "expired_certificate")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise _refuse("the webhook signing certificate holds no RSA key")
        return key

    def _fetch_once(self, url: str) -> x509.Certificate:
        """Fetch and keep the certificate at `url`, unless a fetch of it failed lately: then
        that refusal again, with nothing sent."""
        with self._lock:
            moment = self._clock()
            while self._failed and next(iter(self._failed.values()))[0] <= moment:  # in order of expiry
                self._failed.popitem(last=False)
            failed = self._failed.get(url)
            if failed is None and len(self._failed) >= FAILING:
                raise _refuse(f"the last {FAILING} webhook signing certificates fetched could not be; no other is "
                              "fetched for up to a minute: deliver again later", "certificate_unavailable",
                              retryable=True)
        if failed is not None:
            _, message, code, retryable = failed
            raise _refuse(message, code, retryable=retryable)
        try:
            certificate = self._fetch(url)
        except WebhookVerificationError as error:
            with self._lock:
                self._failed[url] = (self._clock() + FAILED_FOR, error.message, error.code or "", error.retryable)
                self._failed.move_to_end(url)
            raise
        with self._lock:
            self._failed.pop(url, None)
            self._cache[url] = certificate
            while len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
        return certificate

    def _fetch(self, url: str) -> x509.Certificate:
        transfer = Transfer(method="GET", url=url, headers={"Accept": "application/x-pem-file, */*"},
                            timeout=self._timeout)
        try:
            response = self._client.send(transfer)
        except PaywireError as error:
            raise _refuse(f"the webhook signing certificate could not be fetched ({type(error).__name__})",
                          "certificate_unavailable", retryable=True) from error
        if response.status != 200 or len(response.body) > _MAX_PEM:
            raise _refuse(f"fetching the webhook signing certificate answered HTTP {response.status}",
                          "certificate_unavailable", retryable=response.status >= 500)
        try:
            return x509.load_pem_x509_certificate(response.body)
        except ValueError:
            raise _refuse("PAYPAL-CERT-URL does not serve a PEM certificate") from None

    def close(self) -> None:
        self._client.close()
