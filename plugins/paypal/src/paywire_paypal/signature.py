"""PayPal's webhook signature scheme, shared by the emulator (which signs) and the plugin (which verifies).

PayPal signs `<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body, decimal>`
with SHA256withRSA and sends the base64 signature in PAYPAL-TRANSMISSION-SIG, next to the URL of
the X.509 certificate whose key verifies it (PAYPAL-CERT-URL). The CRC is over the exact bytes
received, so a receiver must verify before re-serialising anything.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "AUTH_ALGO",
    "HEADER_AUTH_ALGO",
    "HEADER_CERT_URL",
    "HEADER_TRANSMISSION_ID",
    "HEADER_TRANSMISSION_SIG",
    "HEADER_TRANSMISSION_TIME",
    "body_crc32",
    "signing_string",
    "verify_transmission",
]

AUTH_ALGO = "SHA256withRSA"

HEADER_TRANSMISSION_ID = "PAYPAL-TRANSMISSION-ID"
HEADER_TRANSMISSION_TIME = "PAYPAL-TRANSMISSION-TIME"
HEADER_TRANSMISSION_SIG = "PAYPAL-TRANSMISSION-SIG"
HEADER_CERT_URL = "PAYPAL-CERT-URL"
HEADER_AUTH_ALGO = "PAYPAL-AUTH-ALGO"


def body_crc32(body: bytes) -> int:
    """The unsigned CRC-32 of the raw body, as PayPal puts it (in decimal) in the signed string."""
    return zlib.crc32(body) & 0xFFFFFFFF


def signing_string(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> str:
    """The exact string PayPal signs for one transmission of `body` to the webhook `webhook_id`."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{body_crc32(body)}"


def verify_transmission(
    certificate_pem: bytes,
    transmission_sig: str,
    transmission_id: str,
    transmission_time: str,
    webhook_id: str,
    body: bytes,
    auth_algo: str = AUTH_ALGO,
) -> bool:
    """True when `transmission_sig` is a valid signature of this transmission by the certificate's key.

    Any malformed input (unknown algorithm, bad base64, a certificate without an RSA key) is a
    plain False: an unverifiable webhook must change nothing, not raise in the receiver.
    """
    if auth_algo != AUTH_ALGO:
        return False
    try:
        signature = base64.b64decode(transmission_sig, validate=True)
        public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except (ValueError, binascii.Error):
        return False
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    message = signing_string(transmission_id, transmission_time, webhook_id, body).encode()
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
