"""What a read model is: tables it owns, and how a batch of events changes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import Cursor


@dataclass(frozen=True, slots=True)
class Envelope:
    """A domain event with its place in the global log."""

    position: int
    event: Any
    """The domain event object (e.g. ``Service.StatusReported``)."""
    stored: StoredEvent | None = field(default=None, compare=False, repr=False)
    """The event exactly as the store holds it (id, version, topic, state bytes), for
    projections that vouch for the stored bytes rather than read the facts."""
    # Every view reads these for every event: attributes taken once, not properties
    # recomputed on each of the million or so reads a rebuild makes.
    kind: str = field(init=False, compare=False, repr=False)
    originator_id: UUID = field(init=False, compare=False, repr=False)
    version: int = field(init=False, compare=False, repr=False)
    recorded_at: datetime = field(init=False, compare=False, repr=False)
    """When the tracker learned the fact: the event's own timestamp."""
    occurred_at: datetime = field(init=False, compare=False, repr=False)
    """When the fact was true in the world."""

    def __post_init__(self) -> None:
        event, set_ = self.event, object.__setattr__  # frozen: set once, here
        set_(self, "kind", type(event).__name__)
        set_(self, "originator_id", event.originator_id)
        set_(self, "version", event.originator_version)
        set_(self, "recorded_at", event.timestamp)
        set_(self, "occurred_at", event.occurred_at)


class Projection(ABC):
    """A read model. It owns ``tables`` and the SQL that fills them.

    The runner calls :meth:`apply` with events in position order, inside a transaction
    that also advances this projection's tracking position, so a view update and its
    position always commit together. Table names are unqualified: the runner's
    ``search_path`` decides whether they are the live tables or a rebuild's.
    A projection must give the same rows when rebuilt from position 0.
    """

    name: ClassVar[str]
    """Short, unique, SQL-safe (lower case, digits, underscores)."""

    tables: ClassVar[tuple[str, ...]]
    """Every table this projection owns (not counting its tracking table)."""

    rebuildable: ClassVar[bool] = True
    """False for a dispatcher, whose rows record work done outside the database (requests
    sent, messages published) or configuration: rebuilding would lose it, or do it all again."""

    rebuild_cost: ClassVar[int] = 10
    """Roughly what a rebuild of this view costs per event, in microseconds of CPU (client and
    server, as profiled over bench/projections.py's events in November 2026): used only to share
    the views out evenly when several processes rebuild them."""

    @abstractmethod
    def create_statements(self) -> list[str]:
        """``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS`` statements."""

    def reader_index_statements(self) -> list[str]:
        """``CREATE INDEX IF NOT EXISTS`` statements for indexes that only readers use, never
        ``apply``: a rebuild makes them once its rows are in, in one pass, instead of updating
        them row by row as it loads."""
        return []

    @abstractmethod
    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        """Apply a batch of events (ascending positions) to this projection's tables."""

    @property
    def tracking_table(self) -> str:
        return f"{self.name}_tracking"


ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})
_PLAIN = frozenset({str, int, bool, float, type(None)})


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: times as ISO-8601, ids as strings, enums as their values."""
    if type(value) in _PLAIN:  # most values: answered without a chain of isinstance checks
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def event_fields(event: Any) -> dict[str, Any]:
    """The event's own facts, without the envelope (id, version, recorded time)."""
    return {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}


def event_data(event: Any) -> dict[str, Any]:
    """:func:`event_fields`, JSON-ready."""
    return jsonable(event_fields(event))
