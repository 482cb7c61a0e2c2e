"""Services' status reports and ETA revisions, as corrected: the history that read models
following services over effective time keep, so they can replay a service whose past changed.

A read model keeps its own copy (in a table it names) and its own folded state per service.
When a batch only adds facts strictly after what that state has seen, the fold carries on
from the state; when a fact lands earlier (back-dated) or an earlier fact is corrected, the
read model replays the service's whole history. Both give the same result; the first is
the common case and costs no reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Cursor

from domain.incident import Incident
from domain.service import Service
from projections.base import Envelope
from projections.bulk import copy_rows, upsert

STATUS_REPORTED = "StatusReported"
ETA_SET = "EtaSet"
ETA_CLEARED = "EtaCleared"


class ServiceFact(NamedTuple):
    """One status report or ETA revision (cleared when ``expected_at`` is None).

    A named tuple, not a dataclass: two views make one of these for most events, and a tuple
    is also the row that stores it.
    """

    service_id: UUID
    version: int
    kind: str
    occurred_at: datetime
    status: str | None = None
    phase: str | None = None
    incident_id: UUID | None = None
    expected_at: datetime | None = None

    def corrected(self, changes: dict[str, Any]) -> ServiceFact:
        kept = {k: (str(v) if k in ("status", "phase") and v else v) for k, v in changes.items() if k in _CORRECTABLE}
        return self._replace(**kept)


_CORRECTABLE = frozenset({"occurred_at", "status", "phase", "expected_at"})
_TYPES = {
    "service_id": "uuid", "version": "bigint", "kind": "text", "occurred_at": "timestamptz", "status": "text",
    "phase": "text", "incident_id": "uuid", "expected_at": "timestamptz",
}
_COLUMNS = ServiceFact._fields
_TYPED_COLUMNS = [(c, _TYPES[c]) for c in _COLUMNS]


def in_effective_order(facts: Iterable[ServiceFact]) -> list[ServiceFact]:
    """Latest by when it was true in the world; ties broken by the recording order."""
    return sorted(facts, key=lambda f: (f.occurred_at, f.version))


def fact_of(event: Any) -> ServiceFact | None:
    if isinstance(event, Service.StatusReported):
        return ServiceFact(
            event.originator_id, event.originator_version, STATUS_REPORTED, event.occurred_at,
            status=event.status, phase=event.phase, incident_id=event.incident_id,
        )
    if isinstance(event, Service.EtaSet):
        return ServiceFact(
            event.originator_id, event.originator_version, ETA_SET, event.occurred_at,
            expected_at=event.expected_at,
        )
    if isinstance(event, Service.EtaCleared):
        return ServiceFact(event.originator_id, event.originator_version, ETA_CLEARED, event.occurred_at)
    return None


def services_affected(batch: Sequence[Envelope]) -> list[tuple[UUID, UUID, datetime]]:
    """(incident id, service id, occurred at) of every ServiceAffected in the batch."""
    return [
        (e.originator_id, e.event.service_id, e.occurred_at)
        for e in batch
        if isinstance(e.event, Incident.ServiceAffected)
    ]


@dataclass
class Recorded:
    """What a batch did to the services' histories."""

    new: dict[UUID, list[ServiceFact]]
    """Per service, the batch's new facts, in effective order."""
    rewritten: set[UUID]
    """Services with an earlier fact corrected by the batch."""

    @property
    def services(self) -> set[UUID]:
        return set(self.new) | self.rewritten

    def only_adds_after(self, service_id: UUID, moment: datetime | None) -> bool:
        """True when a fold that has seen this service up to ``moment`` can simply carry on."""
        if service_id in self.rewritten:
            return False
        return moment is None or all(f.occurred_at > moment for f in self.new.get(service_id, []))


class ServiceFacts:
    """The corrected history of the fact kinds a read model needs, in its own table."""

    def __init__(self, table: str, kinds: frozenset[str]) -> None:
        self.table = table
        self.kinds = kinds

    def create_statements(self) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {self.table} (
                service_id uuid NOT NULL,
                version bigint NOT NULL,
                kind text NOT NULL,
                occurred_at timestamptz NOT NULL,
                status text,
                phase text,
                incident_id uuid,
                expected_at timestamptz,
                PRIMARY KEY (service_id, version))""",
        ]

    def record(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> Recorded:
        """Store the batch's new facts and apply its corrections."""
        new = [fact for fact in map(fact_of, (e.event for e in batch)) if fact and fact.kind in self.kinds]
        fresh: dict[tuple[UUID, int], ServiceFact] = {(f.service_id, f.version): f for f in new}
        corrections = [
            ((e.originator_id, e.event.corrects_version), e.event.changes)
            for e in batch
            if isinstance(e.event, Service.Corrected)
        ]
        stored = self._load(cursor, [key for key, _ in corrections if key not in fresh])
        rewritten: set[UUID] = set()
        for key, changes in corrections:
            facts = fresh if key in fresh else stored
            if key in facts:  # else a fact this history does not keep (e.g. a workaround)
                facts[key] = facts[key].corrected(changes)
                rewritten.add(key[0])
        # A fact first recorded in this batch has no row yet: COPY, the cheapest way in.
        if fresh:
            copy_rows(cursor, self.table, _TYPED_COLUMNS, fresh.values())
        upsert(cursor, self.table, _TYPED_COLUMNS, stored.values(), key=("service_id", "version"))
        by_service: dict[UUID, list[ServiceFact]] = {}
        for fact in in_effective_order(new):
            by_service.setdefault(fact.service_id, []).append(fact)
        return Recorded(by_service, rewritten)

    def history(self, cursor: Cursor[Any], service_ids: Iterable[UUID]) -> dict[UUID, list[ServiceFact]]:
        """Every kept fact of these services, as corrected, in effective order."""
        wanted = list(set(service_ids))
        result: dict[UUID, list[ServiceFact]] = {s: [] for s in wanted}
        if wanted:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE service_id = ANY(%b) "
                "ORDER BY occurred_at, version",
                (wanted,),
            )
            for row in cursor.fetchall():
                result[row[0]].append(ServiceFact(*row))
        return result

    def _load(self, cursor: Cursor[Any], keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], ServiceFact]:
        if not keys:
            return {}
        cursor.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {self.table} "
            "JOIN unnest(%b::uuid[], %b::bigint[]) AS k(s, v) ON service_id = k.s AND version = k.v",
            ([s for s, _ in keys], [v for _, v in keys]),
        )
        return {(row[0], row[1]): ServiceFact(*row) for row in cursor.fetchall()}
