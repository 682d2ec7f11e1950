"""Every Braintree request: a POST of a GraphQL document to /graphql (JSON `query` and
`variables`, as Braintree asks), with HTTP Basic auth of the API key pair and a pinned
Braintree-Version.

A write carries the subject's idempotency key in the document's variables (the paywire_key
custom field, or the orderId of a capture or refund), where Braintree deduplicates nothing on it:
so only a query is repeatable, and the core's retry policy never resends a mutation that may have
arrived (a connection never made is retried). A caller's retry under the key looks first for
what the lost one made (see `composites`).
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
        repeatable=document.lstrip().startswith("query"),
    )

