"""Braintree's published GraphQL schema, as the emulator loads it, and document validation.

`schema.graphql` is Braintree's schema as published (braintree/graphql-api, see the shared
specs' MANIFEST), shipped whole so the emulator works without the shared specs; a test checks it
is byte for byte the published file. graphql-core's schema validation rejects it only for its
strict rule on deprecated interface fields, so it is built without that validation (a test checks
that those are the only findings).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from graphql import DocumentNode, GraphQLError, GraphQLSchema, build_schema, parse, validate

__all__ = ["SCHEMA_FILE", "parsed", "schema", "schema_text"]

SCHEMA_FILE = "schema.graphql"


def schema_text() -> str:
    return resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    return build_schema(schema_text(), assume_valid=True)


@lru_cache(maxsize=256)
def parsed(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
    """The document and its validation errors against the schema (cached: clients repeat theirs)."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, (error,)
    return document, tuple(validate(schema(), document))
