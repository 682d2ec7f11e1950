"""Every document the plugin can send, with the variables its builders make from subjects drawn
as the payment service builds them, is valid against Braintree's published schema: the document
itself, and its variables coerced to the schema's input types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import graphql
import pytest
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import GatewayCommand, GatewaySettings, InvalidRequest, Secret
from paywire.testing.strategies import subjects
from paywire_braintree.commands import build_commands
from paywire_braintree.currencies import CURRENCIES
from paywire_braintree.emulator import merchant_account

PUBLISHED = Path(__file__).resolve().parents[3] / ".." / "shared" / "specs" / "braintree" / "schema.graphql"
pytestmark = pytest.mark.skipif(not PUBLISHED.exists(),
                                reason="../shared/specs (Braintree's published schema) is absent in this checkout")
COMMANDS = ("authorize", "sale", "capture", "void", "refund", "fetch", "vault", "unvault")


@pytest.fixture(scope="module")
def published() -> graphql.GraphQLSchema:
    return graphql.build_schema(PUBLISHED.read_text(), assume_valid=True)


def gateway_commands(command: object) -> Iterator[GatewayCommand]:
    """The GatewayCommands a pool entry is made of (a composite's parts, or itself)."""
    if isinstance(command, GatewayCommand):
        yield command
    elif attrs.has(type(command)):
        for field in attrs.fields(type(command)):
            yield from gateway_commands(getattr(command, field.name))


POOL = build_commands(GatewaySettings(
    gateway="braintree", provider="braintree", environment="sandbox", base_url="https://payments.example",
    options={"merchant_accounts": {code: merchant_account(code) for code in CURRENCIES}, "custom_fields": ["order_note"]},
    credentials={"public_key": Secret("public"), "private_key": Secret("private")},
))


def test_every_command_is_made_of_documents() -> None:
    documents = {c.transfer_factory.converter.document for name in COMMANDS  # type: ignore[attr-defined]
                 for c in gateway_commands(POOL[name])}
    assert len(documents) == 13, len(documents)


@settings(max_examples=30)
@given(data=st.data(), command=st.sampled_from(COMMANDS))
def test_every_document_with_its_variables_is_valid_against_the_published_schema(
    data: st.DataObject, command: str, published: graphql.GraphQLSchema
) -> None:
    sources = st.sampled_from(["fake-valid-nonce", "cGF5bWVudG1ldGhvZF9jY19hYmM", "tokencc_bf_abc_123"])
    subject = data.draw(subjects(command, sources=sources, currency=sorted(CURRENCIES)))
    if subject.reference is None:
        subject = attrs.evolve(subject, reference=data.draw(st.sampled_from(["dHJhbnNhY3Rpb25fYWJj", "abc"])))
    for part in gateway_commands(POOL[command]):
        try:
            variables = part.builder(subject)
        except InvalidRequest:
            continue  # refused before sending: nothing to validate
        document = graphql.parse(part.transfer_factory.converter.document)  # type: ignore[attr-defined]
        assert graphql.validate(published, document) == []
        operation = next(d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode))
        coerced = get_variable_values(published, operation.variable_definitions or (), dict(variables))
        assert not isinstance(coerced, list), [error.message for error in coerced]
