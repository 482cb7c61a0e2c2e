"""Corrections: a mistaken fact is never edited; a new event names it and the fields to fix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from domain.errors import InvalidTransition, ValidationError

FieldRule = Callable[[Any, datetime], Any]
"""Validates and normalises one corrected field's new value, given the current time."""


def checked_changes(
    kind: str, changes: Mapping[str, Any], rules: Mapping[str, Mapping[str, FieldRule]], now: datetime
) -> dict[str, Any]:
    """The changes validated against what may be corrected on a fact of this kind."""
    allowed = rules.get(kind)
    if allowed is None:
        raise InvalidTransition(f"A {kind} fact cannot be corrected.")
    if not changes:
        raise ValidationError("A correction must change at least one field.")
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationError(
            f"On a {kind} fact only {', '.join(sorted(allowed))} can be corrected; "
            f"not {', '.join(unknown)}."
        )
    return {field: allowed[field](value, now) for field, value in changes.items()}
