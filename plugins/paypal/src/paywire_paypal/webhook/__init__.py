"""PayPal webhooks: verified (offline, or by PayPal's API) and parsed into `WebhookEvent`s.

Options of the method (all optional):

- `webhook_verification`: "offline" (the default: signature and certificate checked here) or
  "api" (PayPal's verify-webhook-signature endpoint);
- `webhook_tolerance`: seconds a transmission time may differ from now (default 900);
- `webhook_cert_hosts`, `webhook_ca_certs`: extra trust for certificate URLs, honoured in the
  sandbox environment only (see `certificates`).

The webhook id PayPal signs for is the credential `webhook_id`. In both modes an event about a
capture, refund or authorization, and an approval reversal (about its order), is confirmed by
reading that object from PayPal (`confirm`).
"""

from __future__ import annotations

from typing import Final

from paywire import ConfigurationError, GatewaySettings, WebhookVerifier

__all__ = ["DEFAULT_TOLERANCE", "build_verifier"]

DEFAULT_TOLERANCE: Final = 900.0
MODES: Final = ("offline", "api")


def build_verifier(settings: GatewaySettings) -> WebhookVerifier:
    """The verifier the method's options ask for."""
    from paywire import OwnCommands
    from paywire_paypal.commands import build_commands
    from paywire_paypal.webhook.certificates import CA_CERTS_OPTION, CertificateStore, CertificateTrust
    from paywire_paypal.webhook.confirm import Confirmer

    mode = settings.option("webhook_verification", "offline")
    if mode not in MODES:
        raise ConfigurationError(f"method {settings.gateway!r}: webhook_verification must be one of {MODES}, "
                                 f"not {mode!r}", provider="paypal")
    tolerance = settings.positive("webhook_tolerance", DEFAULT_TOLERANCE)
    webhook_id = settings.secret("webhook_id")
    # The reads run on a pool of the method's own (its own access token), trusting
    # `webhook_ca_certs` in the sandbox as certificate fetches do.
    pool = OwnCommands(settings, build_commands,
                       ca_certs=settings.option(CA_CERTS_OPTION) if settings.environment == "sandbox" else None)
    confirm = Confirmer(pool)
    if mode == "api":
        from paywire_paypal.webhook.api import ApiVerifier

        return ApiVerifier(pool, webhook_id, CertificateTrust.from_settings(settings), tolerance, confirm)
    from paywire_paypal.webhook.offline import OfflineVerifier

    return OfflineVerifier(webhook_id, CertificateStore.from_settings(settings), tolerance, confirm)
