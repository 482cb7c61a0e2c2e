"""Communication cadence: is each incident keeping its promise of the next public update, and
which of its services are down with nobody able to say when they are back?

Stored (deterministic): per incident, the latest PUBLIC update by effective time (ties by
version) and the ``nextUpdateBy`` it promised, as corrected, and when the incident closed;
per service, its current status and phase, since when it has been down (start of the current
run of non-OPERATIONAL statuses) and since when it has had no ETA in force (the ETA rule is the
Service aggregate's: the latest revision, unless cleared or the service is RESTORED).
Computed when read, from ``now``: whether the promised update is overdue, and for how long
services have been down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.incident import Incident
from domain.values import Audience, Phase, Status
from projections.base import Envelope, Projection
from projections.bulk import upsert
from projections.service_facts import (
    ETA_CLEARED,
    ETA_SET,
    STATUS_REPORTED,
    Recorded,
    ServiceFact,
    ServiceFacts,
    services_affected,
)

HISTORY = ServiceFacts("cadence_facts", frozenset({STATUS_REPORTED, ETA_SET, ETA_CLEARED}))

_SERVICE_COLUMNS = [
    ("service_id", "uuid"), ("status", "text"), ("phase", "text"), ("down_since", "timestamptz"),
    ("latest_eta", "timestamptz"), ("eta_lapsed_at", "timestamptz"), ("last_at", "timestamptz"),
]


@dataclass
class _ServiceState:
    service_id: UUID
    status: str | None = None
    phase: str | None = None
    down_since: datetime | None = None
    latest_eta: datetime | None = None
    """``expected_at`` of the latest ETA revision (None if cleared or never given)."""
    eta_lapsed_at: datetime | None = None
    """When an ETA in force last stopped being in force (None if there never was one)."""
    last_at: datetime | None = None

    @property
    def down(self) -> bool:
        return self.status is not None and self.status != Status.OPERATIONAL

    @property
    def has_eta(self) -> bool:
        return self.latest_eta is not None and self.phase != Phase.RESTORED

    def advance(self, facts: Sequence[ServiceFact]) -> None:
        """Carry on with facts strictly after ``last_at``, in effective order."""
        for fact in facts:
            was_down, had_eta = self.down, self.has_eta
            if fact.kind == STATUS_REPORTED:
                self.status = fact.status or self.status
                self.phase = fact.phase or self.phase
            else:
                self.latest_eta = fact.expected_at
            if self.down and not was_down:
                self.down_since = fact.occurred_at
            elif not self.down:
                self.down_since = None
            if had_eta and not self.has_eta:
                self.eta_lapsed_at = fact.occurred_at
            self.last_at = fact.occurred_at

    def row(self) -> tuple[Any, ...]:
        return (self.service_id, self.status, self.phase, self.down_since, self.latest_eta,
                self.eta_lapsed_at, self.last_at)


class CommunicationCadence(Projection):
    name = "cadence"
    rebuild_cost = 20
    tables = ("cadence_facts", "cadence_services", "cadence_members", "cadence_updates", "cadence_incidents")

    def create_statements(self) -> list[str]:
        return [
            *HISTORY.create_statements(),
            """CREATE TABLE IF NOT EXISTS cadence_services (
                service_id uuid PRIMARY KEY,
                status text,
                phase text,
                down_since timestamptz,
                latest_eta timestamptz,
                eta_lapsed_at timestamptz,
                last_at timestamptz)""",
            """CREATE TABLE IF NOT EXISTS cadence_members (
                incident_id uuid NOT NULL,
                service_id uuid NOT NULL,
                PRIMARY KEY (incident_id, service_id))""",
            """CREATE TABLE IF NOT EXISTS cadence_updates (
                incident_id uuid NOT NULL,
                version bigint NOT NULL,
                occurred_at timestamptz NOT NULL,
                next_update_by timestamptz,
                PRIMARY KEY (incident_id, version))""",
            """CREATE TABLE IF NOT EXISTS cadence_incidents (
                incident_id uuid PRIMARY KEY,
                last_public_update_at timestamptz,
                next_update_by timestamptz,
                closed_at timestamptz)""",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        recorded = HISTORY.record(cursor, batch)
        if recorded.services:
            _fold_services(cursor, recorded)
        members = {(i, s) for i, s, _ in services_affected(batch)} | {
            (f.incident_id, s) for s, facts in recorded.new.items() for f in facts if f.incident_id
        }
        upsert(cursor, "cadence_members", [("incident_id", "uuid"), ("service_id", "uuid")], members,
               key=("incident_id", "service_id"))
        _record_updates(cursor, batch)


def _fold_services(cursor: Cursor[Any], recorded: Recorded) -> None:
    cursor.execute(
        f"SELECT {', '.join(name for name, _ in _SERVICE_COLUMNS)} FROM cadence_services WHERE service_id = ANY(%b)",
        (list(recorded.services),),
    )
    states = {service_id: _ServiceState(service_id) for service_id in recorded.services}
    states.update((row[0], _ServiceState(*row)) for row in cursor.fetchall())
    replayed = {s for s in recorded.services if not recorded.only_adds_after(s, states[s].last_at)}
    history = HISTORY.history(cursor, replayed)
    for service_id in recorded.services:
        if service_id in replayed:
            states[service_id] = _ServiceState(service_id)
            states[service_id].advance(history[service_id])
        else:
            states[service_id].advance(recorded.new.get(service_id, []))
    upsert(cursor, "cadence_services", _SERVICE_COLUMNS, [states[s].row() for s in recorded.services],
           key=("service_id",))


def _record_updates(cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
    """Keep public updates (as corrected) and closings; then each touched incident's latest."""
    public = [
        (e.originator_id, e.version, e.occurred_at, e.event.next_update_by)
        for e in batch
        if isinstance(e.event, Incident.UpdatePosted) and e.event.audience == Audience.PUBLIC
    ]
    corrected = [
        (e.event.changes["next_update_by"], e.originator_id, e.event.corrects_version)
        for e in batch
        if isinstance(e.event, Incident.Corrected) and "next_update_by" in e.event.changes
    ]
    closed = [(e.originator_id, e.occurred_at) for e in batch if isinstance(e.event, Incident.Closed)]
    if not (public or corrected or closed):
        return
    upsert(
        cursor, "cadence_updates",
        [("incident_id", "uuid"), ("version", "bigint"), ("occurred_at", "timestamptz"),
         ("next_update_by", "timestamptz")],
        public, key=("incident_id", "version"),
    )
    # A correction naming an internal update (or another kind of fact) matches no row.
    cursor.executemany(
        "UPDATE cadence_updates SET next_update_by = %s WHERE incident_id = %s AND version = %s", corrected
    )
    incidents = sorted({p[0] for p in public} | {c[1] for c in corrected} | {c[0] for c in closed})
    cursor.execute(
        "INSERT INTO cadence_incidents (incident_id, last_public_update_at, next_update_by) "
        "SELECT DISTINCT ON (incident_id) incident_id, occurred_at, next_update_by FROM cadence_updates "
        "WHERE incident_id = ANY(%b) ORDER BY incident_id, occurred_at DESC, version DESC "
        "ON CONFLICT (incident_id) DO UPDATE SET last_public_update_at = excluded.last_public_update_at, "
        "next_update_by = excluded.next_update_by",
        (incidents,),
    )
    upsert(cursor, "cadence_incidents", [("incident_id", "uuid"), ("closed_at", "timestamptz")], closed,
           key=("incident_id",))


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownWithoutEta:
    """A service affected by the incident, down now, with no ETA in force."""

    service_id: UUID
    status: Status
    down_since: datetime
    without_eta_since: datetime
    """Since when it has been down with no ETA: the later of going down and losing its ETA."""
    down_for: timedelta
    without_eta_for: timedelta


@dataclass(frozen=True)
class Cadence:
    incident_id: UUID
    last_public_update_at: datetime | None
    next_update_by: datetime | None
    """What the latest public update promised (None: it promised nothing)."""
    overdue: bool
    """The promised time has passed, and the incident is still open."""
    overdue_by: timedelta | None
    closed_at: datetime | None
    down_without_eta: list[DownWithoutEta]
    """Longest down first."""


SELECT_CADENCE_INCIDENT = (
    "SELECT last_public_update_at, next_update_by, closed_at FROM cadence_incidents WHERE incident_id = %s"
)
SELECT_SILENT_SERVICES = (
    "SELECT s.service_id, s.status, s.down_since, s.eta_lapsed_at FROM cadence_members m "
    "JOIN cadence_services s USING (service_id) "
    "WHERE m.incident_id = %s AND s.status <> 'OPERATIONAL' "
    "AND (s.latest_eta IS NULL OR s.phase = 'RESTORED') "
    "ORDER BY s.down_since, s.service_id"
)
"""Both take the incident id."""


def cadence_from_rows(
    incident_id: UUID, incident: Sequence[Any] | None, silent: Iterable[Sequence[Any]], now: datetime
) -> Cadence:
    """The cadence read by ``SELECT_CADENCE_INCIDENT`` (one row or None) and ``SELECT_SILENT_SERVICES``."""
    last_update_at, promised, closed_at = incident or (None, None, None)
    overdue = promised is not None and closed_at is None and now > promised
    silent_since = [(service_id, status, down_since, max(down_since, lapsed or down_since))
                    for service_id, status, down_since, lapsed in silent]
    return Cadence(
        incident_id=incident_id,
        last_public_update_at=last_update_at,
        next_update_by=promised,
        overdue=overdue,
        overdue_by=now - promised if overdue else None,
        closed_at=closed_at,
        down_without_eta=[
            DownWithoutEta(
                service_id=service_id,
                status=Status(status),
                down_since=down_since,
                without_eta_since=since,
                down_for=now - down_since,
                without_eta_for=now - since,
            )
            for service_id, status, down_since, since in silent_since
        ],
    )


def load_cadence(conn: Connection[Any], incident_id: UUID, now: datetime) -> Cadence:
    return cadence_from_rows(
        incident_id,
        conn.execute(SELECT_CADENCE_INCIDENT, (incident_id,)).fetchone(),
        conn.execute(SELECT_SILENT_SERVICES, (incident_id,)).fetchall(),
        now,
    )
