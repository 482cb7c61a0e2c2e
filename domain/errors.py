"""Errors the domain raises, each with a stable code the API exposes unchanged."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused; the message says what to do about it."""

    code = "VALIDATION"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """The input itself is wrong: missing, malformed, too long, or out of range."""

    code = "VALIDATION"


class InvalidTransition(DomainError):
    """The input is well formed but the current state does not allow it."""

    code = "INVALID_TRANSITION"


class NotFound(DomainError):
    """A referenced service, incident, workaround or event does not exist."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The fact clashes with another one: a duplicate, or a write race that kept losing."""

    code = "CONFLICT"
