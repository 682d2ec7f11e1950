"""Braintree's error shape: a GraphQL error whose extensions name the errorClass and legacyCode."""

from __future__ import annotations

from graphql import GraphQLError

__all__ = ["not_found", "validation"]


def validation(message: str, legacy_code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"errorClass": "VALIDATION", "legacyCode": legacy_code})


def not_found(what: str = "An object with this ID was not found.") -> GraphQLError:
    return GraphQLError(what, extensions={"errorClass": "NOT_FOUND"})
