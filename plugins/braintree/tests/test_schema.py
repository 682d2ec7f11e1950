"""The emulator's schema is Braintree's published one, and every document the plugin sends is
valid against it."""

from __future__ import annotations

from pathlib import Path

import graphql
import pytest

from paywire_braintree.documents import DOCUMENTS
from paywire_braintree.emulator.schema import schema_text

PUBLISHED = Path(__file__).resolve().parents[3] / ".." / "shared" / "specs" / "braintree" / "schema.graphql"
needs_published = pytest.mark.skipif(
    not PUBLISHED.exists(), reason="../shared/specs (Braintree's published schema) is absent in this checkout")


@needs_published
def test_the_shipped_schema_is_the_published_one_byte_for_byte() -> None:
    assert schema_text().encode() == PUBLISHED.read_bytes()


@needs_published
def test_the_published_schema_is_refused_only_by_the_deprecation_rule() -> None:
    findings = graphql.validate_schema(graphql.build_schema(PUBLISHED.read_text()))
    assert findings, "graphql-core accepts the schema now: build it with validation"
    assert all("must not be deprecated" in error.message for error in findings), [e.message for e in findings]


@pytest.fixture(scope="module")
def published() -> graphql.GraphQLSchema:
    return graphql.build_schema(PUBLISHED.read_text(), assume_valid=True)


@needs_published
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_document_the_plugin_sends_is_valid_against_the_published_schema(
    name: str, published: graphql.GraphQLSchema
) -> None:
    assert graphql.validate(published, graphql.parse(DOCUMENTS[name])) == []
