"""Restoration progress of each incident: how many of its services are restored, over time.

The services an incident affects are those named by ServiceAffected or by a StatusReported
carrying the incident's id; a service counts from the earliest of those effective times
("since"). Each (incident, service) member keeps its current status and phase, and the steps
it adds to the incident's curve: +1 total at ``since`` (+1 restored if it was RESTORED then),
then +1 / -1 restored whenever its phase enters or leaves RESTORED. Everything is in effective
time (``occurred_at``, ties by version): a back-dated report lands in its place, and a
correction replays the service's corrected history. The curve is the running sum of the
steps, read in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Connection, Cursor

from domain.values import Phase, Status
from projections.base import Envelope, Projection
from projections.bulk import upsert
from projections.service_facts import STATUS_REPORTED, ServiceFact, ServiceFacts, services_affected

HISTORY = ServiceFacts("progress_reports", frozenset({STATUS_REPORTED}))


@dataclass
class _Member:
    """One service affected by one incident, folded up to ``last_at``."""

    incident_id: UUID
    service_id: UUID
    affected_at: datetime | None
    """When ServiceAffected says it was affected (None if only reports name the incident)."""
    since: datetime | None = None
    status: str | None = None
    phase: str | None = None
    last_at: datetime | None = None
    steps: dict[datetime, list[int]] = field(default_factory=dict)
    """Steps added by this fold: at -> [restored delta, total delta]."""

    @property
    def restored(self) -> bool:
        return self.phase == Phase.RESTORED

    def take(self, fact: ServiceFact) -> None:
        self.status = fact.status or self.status
        self.phase = fact.phase or self.phase

    def advance(self, facts: Sequence[ServiceFact]) -> None:
        """Carry on with facts strictly after ``last_at``, in effective order."""
        for fact in facts:
            was = self.restored
            self.take(fact)
            if self.restored != was:
                self._step(fact.occurred_at, 1 if self.restored else -1, 0)
            self.last_at = fact.occurred_at

    def replay(self, history: Sequence[ServiceFact]) -> None:
        """Fold the service's whole (corrected) history from nothing."""
        named = [f.occurred_at for f in history if f.incident_id == self.incident_id]
        self.since = min(t for t in (self.affected_at, *named) if t is not None)
        self.status = self.phase = None
        self.steps = {}
        for fact in history:
            if fact.occurred_at <= self.since:
                self.take(fact)
        self._step(self.since, 1 if self.restored else 0, 1)
        self.last_at = self.since
        self.advance([f for f in history if f.occurred_at > self.since])

    def _step(self, at: datetime, restored: int, total: int) -> None:
        step = self.steps.setdefault(at, [0, 0])
        step[0] += restored
        step[1] += total


class RestorationProgress(Projection):
    name = "progress"
    rebuild_cost = 20
    tables = ("progress_reports", "progress_members", "progress_steps")

    def create_statements(self) -> list[str]:
        return [
            *HISTORY.create_statements(),
            """CREATE TABLE IF NOT EXISTS progress_members (
                incident_id uuid NOT NULL,
                service_id uuid NOT NULL,
                affected_at timestamptz,
                since timestamptz NOT NULL,
                status text,
                phase text,
                last_at timestamptz NOT NULL,
                PRIMARY KEY (incident_id, service_id))""",
            "CREATE INDEX IF NOT EXISTS progress_members_by_service ON progress_members (service_id)",
            """CREATE TABLE IF NOT EXISTS progress_steps (
                incident_id uuid NOT NULL,
                service_id uuid NOT NULL,
                at timestamptz NOT NULL,
                restored integer NOT NULL,
                total integer NOT NULL,
                PRIMARY KEY (incident_id, service_id, at))""",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        recorded = HISTORY.record(cursor, batch)
        affected = services_affected(batch)
        joined = {(i, s) for i, s, _ in affected} | {
            (f.incident_id, s) for s, facts in recorded.new.items() for f in facts if f.incident_id
        }
        services = recorded.services | {s for _, s in joined}
        if not services:
            return
        members = _load_members(cursor, list(services))
        for key in joined - members.keys():
            members[key] = _Member(*key, affected_at=None)
        for incident_id, service_id, occurred_at in affected:
            members[(incident_id, service_id)].affected_at = occurred_at
        replayed = {
            key for key, m in members.items()
            if key in joined or not recorded.only_adds_after(m.service_id, m.last_at)
        }
        history = HISTORY.history(cursor, {service_id for _, service_id in replayed})
        for key, member in members.items():
            if key in replayed:
                member.replay(history[member.service_id])
            else:
                member.advance(recorded.new.get(member.service_id, []))
        _save(cursor, members, replayed)


def _load_members(cursor: Cursor[Any], service_ids: list[UUID]) -> dict[tuple[UUID, UUID], _Member]:
    cursor.execute(
        "SELECT incident_id, service_id, affected_at, since, status, phase, last_at "
        "FROM progress_members WHERE service_id = ANY(%b)",
        (service_ids,),
    )
    return {(row[0], row[1]): _Member(*row) for row in cursor.fetchall()}


_MEMBER_COLUMNS = [
    ("incident_id", "uuid"), ("service_id", "uuid"), ("affected_at", "timestamptz"), ("since", "timestamptz"),
    ("status", "text"), ("phase", "text"), ("last_at", "timestamptz"),
]
_STEP_COLUMNS = [
    ("incident_id", "uuid"), ("service_id", "uuid"), ("at", "timestamptz"), ("restored", "integer"),
    ("total", "integer"),
]


def _save(cursor: Cursor[Any], members: dict[tuple[UUID, UUID], _Member], replayed: set[tuple[UUID, UUID]]) -> None:
    upsert(
        cursor, "progress_members", _MEMBER_COLUMNS,
        [(m.incident_id, m.service_id, m.affected_at, m.since, m.status, m.phase, m.last_at) for m in members.values()],
        key=("incident_id", "service_id"),
    )
    if replayed:
        cursor.execute(
            "DELETE FROM progress_steps USING unnest(%b::uuid[], %b::uuid[]) AS r(incident_id, service_id) "
            "WHERE progress_steps.incident_id = r.incident_id AND progress_steps.service_id = r.service_id",
            ([i for i, _ in replayed], [s for _, s in replayed]),
        )
    upsert(
        cursor, "progress_steps", _STEP_COLUMNS,
        [
            (m.incident_id, m.service_id, at, restored, total)
            for m in members.values()
            for at, (restored, total) in m.steps.items()
            if restored or total
        ],
        key=("incident_id", "service_id", "at"),
    )


# ---- reading ---------------------------------------------------------------------------------


class StatusCount(NamedTuple):
    status: Status
    count: int


class CurvePoint(NamedTuple):
    at: datetime
    restored: int
    total: int


@dataclass(frozen=True)
class Progress:
    incident_id: UUID
    total: int
    restored: int
    percent_restored: float
    by_status: list[StatusCount]
    """Every status, in the vocabulary's order; a service nobody reported on is OPERATIONAL."""
    curve: list[CurvePoint]
    """One point per effective time at which restored or total changed, in time order."""


SELECT_MEMBERS = "SELECT coalesce(status, 'OPERATIONAL'), phase FROM progress_members WHERE incident_id = %s"
SELECT_CURVE = (
    # Times where deltas cancel out change nothing, so they are not points.
    "SELECT at, sum(sum(restored)) OVER w, sum(sum(total)) OVER w FROM progress_steps "
    "WHERE incident_id = %s GROUP BY at HAVING sum(restored) <> 0 OR sum(total) <> 0 "
    "WINDOW w AS (ORDER BY at) ORDER BY at"
)
"""Both take the incident id."""


def progress_from_rows(
    incident_id: UUID, members: Sequence[Sequence[Any]], curve: Iterable[Sequence[Any]]
) -> Progress:
    """The progress read by ``SELECT_MEMBERS`` and ``SELECT_CURVE``."""
    total = len(members)
    restored = sum(1 for _, phase in members if phase == Phase.RESTORED)
    return Progress(
        incident_id=incident_id,
        total=total,
        restored=restored,
        percent_restored=100.0 * restored / total if total else 0.0,
        by_status=[StatusCount(s, sum(1 for status, _ in members if status == s)) for s in Status],
        curve=[CurvePoint(at, int(r), int(t)) for at, r, t in curve],
    )


def load_progress(conn: Connection[Any], incident_id: UUID) -> Progress:
    return progress_from_rows(
        incident_id,
        conn.execute(SELECT_MEMBERS, (incident_id,)).fetchall(),
        conn.execute(SELECT_CURVE, (incident_id,)).fetchall(),
    )
