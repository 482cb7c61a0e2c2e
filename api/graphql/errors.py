"""GraphQL errors with a stable ``extensions.code`` and a message a person can act on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from graphql import GraphQLError

from api.outage import DATABASE_AWAY, DATABASE_UNAVAILABLE
from domain.errors import DomainError


class Code(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    VALIDATION = "VALIDATION"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    VIEWS_LAGGING = "VIEWS_LAGGING"
    DATABASE_UNAVAILABLE = DATABASE_UNAVAILABLE
    """The database is away for a moment: the HTTP reply is a 503 with Retry-After."""
    INTERNAL = "INTERNAL"


UNAVAILABLE_MESSAGE = "The database is unavailable for a moment. Try again in a few seconds."


class ApiError(Exception):
    """Raised by resolvers; shown to the client as is (never masked), with ``extensions``
    beside its code (e.g. the position a stored change has)."""

    def __init__(self, code: Code, message: str, extensions: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions or {}


def from_domain(error: DomainError) -> ApiError:
    return ApiError(Code(error.code), error.message)


def is_user_facing(error: GraphQLError) -> bool:
    """Errors the client should see: ours, GraphQL's own (syntax, validation), and the
    database being away (as a code and a fixed message: see add_code)."""
    original = error.original_error
    return original is None or isinstance(original, (ApiError, DomainError, *DATABASE_AWAY))


def should_mask(error: GraphQLError) -> bool:
    return not is_user_facing(error)


def add_code(error: GraphQLError, code: Code | None = None) -> GraphQLError:
    """Attach ``extensions.code`` to every error that reaches the client: ``code`` if given,
    otherwise the one its cause implies (with the extensions an ApiError carries)."""
    original = error.original_error
    if code is None and isinstance(original, DATABASE_AWAY):  # the driver's words are no use to the client
        return GraphQLError(UNAVAILABLE_MESSAGE, error.nodes, error.source, error.positions, error.path,
                            original, extensions={"code": Code.DATABASE_UNAVAILABLE.value})
    implied = code.value if code is not None else _implied_code(error)
    carried = original.extensions if isinstance(original, ApiError) else {}
    error.extensions = {**(error.extensions or {}), **carried, "code": implied}
    return error


def _implied_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, ApiError):
        return original.code.value
    if isinstance(original, DomainError):
        return original.code
    if original is None:
        return str((error.extensions or {}).get("code", Code.VALIDATION.value))
    return Code.INTERNAL.value
