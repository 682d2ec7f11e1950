"""Every Braintree request: a POST of a GraphQL document to /graphql, with HTTP Basic auth of the
API key pair and a pinned Braintree-Version.

Braintree's published API deduplicates no mutation, so a mutation's transfer carries no
idempotency key: the core's retry policy then never sends it again once it may have arrived
(a connection that was never made is still retried). The plugin's own look-ups settle those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from paywire import BasicAuth, GatewaySettings, GraphQLConverter, Subject, Transfer, TransferFactory

__all__ = ["BRAINTREE_VERSION", "GraphQLTransferFactory", "graphql_transfer"]

BRAINTREE_VERSION = "2019-01-01"


@attrs.frozen
class GraphQLTransferFactory(TransferFactory):
    """A `TransferFactory` that keeps the key off a mutation's transfer (see the module)."""

    mutation: bool = False

    def create(self, request: Mapping[str, Any], subject: Subject) -> Transfer:
        transfer = super().create(request, subject)
        return attrs.evolve(transfer, idempotency_key=None) if self.mutation else transfer


def graphql_transfer(settings: GatewaySettings, document: str) -> GraphQLTransferFactory:
    return GraphQLTransferFactory(
        settings.base_url, "POST", "/graphql",
        auth=BasicAuth(settings.secret("public_key").reveal(), settings.secret("private_key")),
        converter=GraphQLConverter(document),
        headers={"Braintree-Version": BRAINTREE_VERSION},
        timeout=settings.timeout,
        mutation=document.lstrip().startswith("mutation"),
    )
