"""Every Braintree request: a POST of a GraphQL document to /graphql (JSON `query` and
`variables`, as Braintree asks), with HTTP Basic auth of the API key pair and a pinned
Braintree-Version.

Every transfer carries the subject's idempotency key (it travels in the document's variables:
the paywire_key custom field, or the orderId of a capture or refund). Braintree's published API
deduplicates no mutation on it, so the commands never let the core's retry policy resend a
mutation that may have arrived; they look first (see `composites`).
"""

from __future__ import annotations

from paywire import BasicAuth, GatewaySettings, GraphQLConverter, TransferFactory

__all__ = ["BRAINTREE_VERSION", "graphql_transfer"]

BRAINTREE_VERSION = "2019-01-01"


def graphql_transfer(settings: GatewaySettings, document: str) -> TransferFactory:
    return TransferFactory(
        settings.base_url, "POST", "/graphql",
        auth=BasicAuth(settings.secret("public_key").reveal(), settings.secret("private_key")),
        converter=GraphQLConverter(document),
        headers={"Braintree-Version": BRAINTREE_VERSION},
        timeout=settings.timeout,
    )

