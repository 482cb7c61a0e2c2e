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


def add_code(error: GraphQLError) -> GraphQLError:
    """Attach ``extensions.code`` to every error that reaches the client."""
    original = error.original_error
    if isinstance(original, ApiError):
        code = original.code.value
    elif isinstance(original, DomainError):
        code = original.code
    elif original is None:
        code = (error.extensions or {}).get("code", Code.VALIDATION.value)
    else:
        code = "INTERNAL"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error
