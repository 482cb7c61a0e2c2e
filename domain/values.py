"""Value types and the input rules every fact shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import TypeVar

from domain.errors import ValidationError

SHORT_TEXT_LIMIT = 200
LONG_TEXT_LIMIT = 10_000
UNWRITABLE_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
"""Control characters other than tab and line breaks, and halves of surrogate pairs: PostgreSQL
cannot store NUL, XML (the Atom feed) allows no other control character, UTF-8 cannot encode a
lone surrogate, and none of them belongs in text a person wrote."""
COUNT_LIMIT = 2**31 - 1
"""The largest GraphQL Int: a correction (whose values arrive as JSON) can set no more than a
record could, and the views' columns hold it."""
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_MOMENT = datetime(3000, 1, 1, tzinfo=timezone.utc)
"""Facts of a recovery and its ETAs fall well inside these. Near the calendar's ends a time
cannot be turned into UTC or another zone, so the views could neither store nor show it."""


class Status(StrEnum):
    """What users experience, in the vocabulary of public status pages."""

    OPERATIONAL = "OPERATIONAL"
    DEGRADED_PERFORMANCE = "DEGRADED_PERFORMANCE"
    PARTIAL_OUTAGE = "PARTIAL_OUTAGE"
    MAJOR_OUTAGE = "MAJOR_OUTAGE"
    UNDER_MAINTENANCE = "UNDER_MAINTENANCE"


class Phase(StrEnum):
    """Where the restoration work stands, in the order it normally happens."""

    ISOLATED = "ISOLATED"
    ASSESSING = "ASSESSING"
    RESTORING = "RESTORING"
    VALIDATING = "VALIDATING"
    RESTORED = "RESTORED"

    @property
    def rank(self) -> int:
        return list(Phase).index(self)


class Confidence(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Audience(StrEnum):
    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    MAJOR = "MAJOR"
    MINOR = "MINOR"


E = TypeVar("E", bound=StrEnum)


class Immutable:
    """A frozen value: copying it (as the aggregate cache does) can share it instead."""

    __slots__ = ()

    def __copy__(self) -> Immutable:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Immutable:
        return self


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def choice(enum: type[E], field: str, value: str | E) -> E:
    """The enum member named by ``value``, or a ValidationError listing the choices."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValidationError(f"{field} must be one of {allowed}; got {value!r}.") from None


def optional_choice(enum: type[E], field: str, value: str | E | None) -> E | None:
    return None if value is None else choice(enum, field, value)


def required_text(field: str, value: str | None, limit: int = SHORT_TEXT_LIMIT) -> str:
    text = optional_text(field, value, limit)
    if text is None:
        raise ValidationError(f"{field} must not be empty.")
    return text


def optional_text(field: str, value: str | None, limit: int = SHORT_TEXT_LIMIT) -> str | None:
    """Trimmed text, None when blank; refuses text longer than ``limit`` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text.")
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(
            f"{field} is {len(text):,} characters long; the limit is {limit:,}."
        )
    unwritable = UNWRITABLE_CHARACTER.search(text)
    if unwritable:
        raise ValidationError(
            f"{field} contains the unwritable character {unwritable.group()!r} at position "
            f"{unwritable.start() + 1}; remove it."
        )
    return text or None


def count(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_LIMIT:
        raise ValidationError(
            f"{field} must be a whole number from 0 to {COUNT_LIMIT:,}; got {value!r}."
        )
    return value


def moment(field: str, value: datetime, now: datetime) -> datetime:
    """A timezone-aware time no further in the future than the clock-skew tolerance."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a date and time.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{field} must include a UTC offset (for example 2022-06-17T09:00:00+01:00)."
        )
    _within_calendar(field, value)
    if value > now + CLOCK_SKEW_TOLERANCE:
        raise ValidationError(
            f"{field} {value.isoformat()} is in the future; facts can be back-dated "
            f"but not recorded ahead of time (tolerance {CLOCK_SKEW_TOLERANCE})."
        )
    return value


def occurred(value: datetime | None, now: datetime) -> datetime:
    """When the fact was true in the world; defaults to now."""
    return now if value is None else moment("occurredAt", value, now)


def any_moment(field: str, value: datetime | None) -> datetime | None:
    """A timezone-aware time that may lie in the future (ETAs, promised updates)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must be a date and time with a UTC offset.")
    return _within_calendar(field, value)


def _within_calendar(field: str, value: datetime) -> datetime:
    # Compared, never converted: converting a time at the calendar's ends overflows.
    if not EARLIEST_MOMENT <= value < LATEST_MOMENT:
        raise ValidationError(
            f"{field} {value.isoformat()} is outside the years "
            f"{EARLIEST_MOMENT.year} to {LATEST_MOMENT.year - 1}."
        )
    return value


@dataclass(frozen=True)
class Provenance:
    """Who recorded a fact, why, and when it was true in the world.

    Every event carries these three; the event's own timestamp is when it was recorded.
    """

    actor: str
    reason: str | None = None
    occurred_at: datetime | None = None

    def checked(self, now: datetime) -> Provenance:
        """This provenance validated, trimmed, and with occurredAt defaulting to now."""
        return Provenance(
            required_text("actor", self.actor),
            reason=optional_text("reason", self.reason, LONG_TEXT_LIMIT),
            occurred_at=occurred(self.occurred_at, now),
        )

    def require_reason(self, why: str) -> None:
        if self.reason is None:
            raise ValidationError(f"A reason is required {why}.")
