"""The HTTP side of the pipeline: transfers, the client, and the retry policy."""

from paywire.http.auth import Auth, BasicAuth, BearerAuth
from paywire.http.client import Client, Urllib3Client
from paywire.http.response import Response
from paywire.http.retry import Retry
from paywire.http.transfer import Timeout, Transfer, TransferFactory

__all__ = [
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "Client",
    "Response",
    "Retry",
    "Timeout",
    "Transfer",
    "TransferFactory",
    "Urllib3Client",
]
