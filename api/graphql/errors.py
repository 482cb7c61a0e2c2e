"""GraphQL errors with a stable ``extensions.code`` and a message a person can act on."""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLError

from domain.errors import DomainError


class Code(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    VALIDATION = "VALIDATION"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    VIEWS_LAGGING = "VIEWS_LAGGING"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ApiError(Exception):
    """Raised by resolvers; shown to the client as is (never masked)."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def from_domain(error: DomainError) -> ApiError:
    return ApiError(Code(error.code), error.message)


def is_user_facing(error: GraphQLError) -> bool:
    """Errors the client should see: ours, and GraphQL's own (syntax, validation)."""
    original = error.original_error
    return original is None or isinstance(original, (ApiError, DomainError))


def should_mask(error: GraphQLError) -> bool:
    return not is_user_facing(error)


def add_code(error: GraphQLError, code: Code | None = None) -> GraphQLError:
    """Attach ``extensions.code`` to every error that reaches the client: ``code`` if given,
    otherwise the one its cause implies."""
    implied = code.value if code is not None else _implied_code(error)
    error.extensions = {**(error.extensions or {}), "code": implied}
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
