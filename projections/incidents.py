"""Incidents: one row per incident as it stands now, and its updates, for the API and status page.

A row keeps the facts its figures are computed from (impact records, awareness records) in
its ``facts`` column; a batch loads the rows it touches once, folds its events in Python and
writes them back. Updates are rows of their own in ``incident_updates``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.incident import AwarenessRecord, ImpactRecord, Incident, IncidentPhase, latest_impact
from domain.values import Audience
from projections.base import Envelope, Projection
from projections.bulk import jsonb

DECLARED_FIELDS = ("title", "kind", "severity", "summary", "detected_at")
OBLIGATION_EVENTS = (Incident.RegulatorNotified, Incident.NotificationDecisionRecorded)
"""Events about regulatory clocks, which another read model keeps."""


class IncidentsView(Projection):
    name = "incidents"
    rebuild_cost = 14
    tables = ("current_incidents", "incident_updates")

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS current_incidents (
                id uuid PRIMARY KEY,
                title text NOT NULL,
                kind text NOT NULL,
                severity text NOT NULL,
                phase text NOT NULL,
                detected_at timestamptz NOT NULL,
                aware_at timestamptz,
                declared_at timestamptz NOT NULL,
                closed_at timestamptz,
                summary text,
                residents_affected bigint,
                properties_affected bigint,
                service_ids uuid[] NOT NULL,
                last_changed_position bigint NOT NULL,
                facts jsonb NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS incident_updates (
                position bigint PRIMARY KEY,
                incident_id uuid NOT NULL,
                version bigint NOT NULL,
                audience text NOT NULL,
                message text NOT NULL,
                service_ids uuid[] NOT NULL,
                next_update_by timestamptz,
                occurred_at timestamptz NOT NULL,
                recorded_at timestamptz NOT NULL)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS incident_updates_by_fact ON incident_updates (incident_id, version)",
            "CREATE INDEX IF NOT EXISTS incident_updates_latest ON incident_updates (occurred_at DESC, position DESC)",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        incidents = _load_states(cursor, {
            e.originator_id for e in batch
            if isinstance(e.event, Incident.Event) and not isinstance(e.event, Incident.Declared)
        })
        updates = _Updates()
        touched: set[UUID] = set()
        for envelope in batch:
            event = envelope.event
            if not isinstance(event, Incident.Event) or isinstance(event, OBLIGATION_EVENTS):
                continue
            if isinstance(event, Incident.Declared):
                incidents[envelope.originator_id] = _IncidentState(
                    id=envelope.originator_id,
                    declared={name: getattr(event, name) for name in DECLARED_FIELDS},
                    declared_at=event.occurred_at,
                )
            else:
                _fold(envelope, _state(incidents, envelope.originator_id), updates)
            incidents[envelope.originator_id].last_changed_position = envelope.position
            touched.add(envelope.originator_id)
        updates.save(cursor)
        if touched:
            cursor.executemany(_UPSERT, [_row(incidents[key]) for key in sorted(touched)])


@dataclass
class _IncidentState:
    id: UUID
    declared: dict[str, Any]
    """Fields of the declaration as corrected, and the summary as closing may replace it."""
    declared_at: datetime
    closed_at: datetime | None = None
    service_ids: list[UUID] = field(default_factory=list)
    impacts: list[ImpactRecord] = field(default_factory=list)
    awareness: list[AwarenessRecord] = field(default_factory=list)
    last_changed_position: int = 0

    def correct(self, version: int, changes: dict[str, Any]) -> bool:
        """Apply a correction of a fact this row keeps; False if the fact is kept elsewhere."""
        if version == 1:
            self.declared.update(changes)
            return True
        if any(r.version == version for r in self.impacts):
            self.impacts = [replace(r, **changes) if r.version == version else r for r in self.impacts]
            return True
        if any(r.version == version for r in self.awareness):
            self.awareness = [replace(r, **changes) if r.version == version else r for r in self.awareness]
            return True
        return False


def _fold(envelope: Envelope, state: _IncidentState, updates: _Updates) -> None:
    event = envelope.event
    if isinstance(event, Incident.ServiceAffected):
        state.service_ids.append(event.service_id)
    elif isinstance(event, Incident.UpdatePosted):
        updates.post(envelope)
    elif isinstance(event, Incident.ImpactRecorded):
        state.impacts.append(ImpactRecord(
            version=envelope.version,
            occurred_at=event.occurred_at,
            residents_affected=event.residents_affected,
            properties_affected=event.properties_affected,
            service_id=str(event.service_id) if event.service_id else None,
        ))
    elif isinstance(event, Incident.AwarenessRecorded):
        state.awareness.append(AwarenessRecord(version=envelope.version, aware_at=event.aware_at))
    elif isinstance(event, Incident.Closed):
        state.closed_at = event.occurred_at
        if event.summary:
            state.declared["summary"] = event.summary
    elif isinstance(event, Incident.Corrected):
        if not state.correct(event.corrects_version, event.changes):
            updates.correct(envelope.originator_id, event.corrects_version, event.changes)


def _state(incidents: dict[UUID, _IncidentState], incident_id: UUID) -> _IncidentState:
    state = incidents.get(incident_id)
    if state is None:
        raise LookupError(f"an event names incident {incident_id}, which was never declared")
    return state


UPDATE_COLUMNS = (
    "position", "incident_id", "version", "audience", "message", "service_ids",
    "next_update_by", "occurred_at", "recorded_at",
)


@dataclass
class _Updates:
    """Updates the batch posts, and corrections of updates posted in earlier batches."""

    posted: dict[tuple[UUID, int], dict[str, Any]] = field(default_factory=dict)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)

    def post(self, envelope: Envelope) -> None:
        event = envelope.event
        self.posted[(envelope.originator_id, envelope.version)] = {
            "position": envelope.position,
            "incident_id": envelope.originator_id,
            "version": envelope.version,
            "audience": event.audience,
            "message": event.message,
            "service_ids": [UUID(s) for s in event.service_ids],
            "next_update_by": event.next_update_by,
            "occurred_at": event.occurred_at,
            "recorded_at": envelope.recorded_at,
        }

    def correct(self, incident_id: UUID, version: int, changes: dict[str, Any]) -> None:
        """Correct an update (a correction naming no update, e.g. of a filing, changes nothing here)."""
        fixed = {k: v for k, v in changes.items() if k in ("message", "next_update_by")}
        if not fixed:
            return
        posted = self.posted.get((incident_id, version))
        if posted is not None:
            posted.update(fixed)
            return
        self.corrections.append((
            "message" in fixed, fixed.get("message"),
            "next_update_by" in fixed, fixed.get("next_update_by"),
            incident_id, version,
        ))

    def save(self, cursor: Cursor[Any]) -> None:
        if self.posted:
            cursor.executemany(
                f"INSERT INTO incident_updates ({', '.join(UPDATE_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(UPDATE_COLUMNS))})",
                [tuple(row[c] for c in UPDATE_COLUMNS) for row in self.posted.values()],
            )
        if self.corrections:
            cursor.executemany(
                "UPDATE incident_updates SET "
                "message = CASE WHEN %s THEN %s ELSE message END, "
                "next_update_by = CASE WHEN %s THEN %s::timestamptz ELSE next_update_by END "
                "WHERE incident_id = %s AND version = %s",
                self.corrections,
            )


# ---- storing rows ----------------------------------------------------------------------------

ROW_COLUMNS = (
    "id", "title", "kind", "severity", "phase", "detected_at", "aware_at", "declared_at",
    "closed_at", "summary", "residents_affected", "properties_affected", "service_ids",
    "last_changed_position", "facts",
)

_UPSERT = (
    f"INSERT INTO current_incidents ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(['%s'] * len(ROW_COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in ROW_COLUMNS[1:])}"
)


def _row(state: _IncidentState) -> tuple[Any, ...]:
    declared = state.declared
    impact = latest_impact(state.impacts)
    phase = IncidentPhase.CLOSED if state.closed_at is not None else IncidentPhase.OPEN
    return (
        state.id, declared["title"], declared["kind"], declared["severity"], phase.value,
        declared["detected_at"],
        state.awareness[-1].aware_at if state.awareness else None,  # the latest recorded, as the domain says
        state.declared_at, state.closed_at, declared["summary"],
        impact.residents_affected if impact else None,
        impact.properties_affected if impact else None,
        state.service_ids, state.last_changed_position,
        jsonb({
            "declared": {**declared, "detected_at": declared["detected_at"].isoformat()},
            "impacts": [
                [r.version, r.occurred_at.isoformat(), r.residents_affected, r.properties_affected, r.service_id]
                for r in state.impacts
            ],
            "awareness": [[r.version, r.aware_at.isoformat()] for r in state.awareness],
        }),
    )


def _load_states(cursor: Cursor[Any], ids: set[UUID]) -> dict[UUID, _IncidentState]:
    if not ids:
        return {}
    cursor.execute(
        "SELECT id, declared_at, closed_at, service_ids, last_changed_position, facts "
        "FROM current_incidents WHERE id = ANY(%b)",
        (sorted(ids),),
    )
    states = {}
    for incident_id, declared_at, closed_at, service_ids, position, facts in cursor.fetchall():
        declared = facts["declared"]
        states[incident_id] = _IncidentState(
            id=incident_id,
            declared={**declared, "detected_at": datetime.fromisoformat(declared["detected_at"])},
            declared_at=declared_at,
            closed_at=closed_at,
            service_ids=list(service_ids),
            impacts=[
                ImpactRecord(version, datetime.fromisoformat(at), residents, properties, service_id)
                for version, at, residents, properties, service_id in facts["impacts"]
            ],
            awareness=[AwarenessRecord(version, datetime.fromisoformat(at)) for version, at in facts["awareness"]],
            last_changed_position=position,
        )
    return states


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    id: UUID
    title: str
    kind: str
    severity: str
    phase: str
    detected_at: datetime
    aware_at: datetime | None
    declared_at: datetime
    closed_at: datetime | None
    summary: str | None
    residents_affected: int | None
    properties_affected: int | None
    service_ids: tuple[UUID, ...]
    last_changed_position: int


@dataclass(frozen=True)
class UpdateRow:
    position: int
    incident_id: UUID
    audience: str
    message: str
    service_ids: tuple[UUID, ...]
    next_update_by: datetime | None
    occurred_at: datetime
    recorded_at: datetime


INCIDENT_READ_COLUMNS = ROW_COLUMNS[:-1]
SELECT_INCIDENTS = f"SELECT {', '.join(INCIDENT_READ_COLUMNS)} FROM current_incidents"
UPDATE_READ_COLUMNS = tuple(c for c in UPDATE_COLUMNS if c != "version")
SELECT_UPDATES = f"SELECT {', '.join(UPDATE_READ_COLUMNS)} FROM incident_updates"


def load_incidents(
    connection: Connection[Any] | Cursor[Any], ids: Iterable[UUID] | None = None
) -> list[IncidentRow]:
    """Incidents, latest declared first; only those with ``ids`` if given."""
    order = "ORDER BY declared_at DESC, id"
    if ids is None:
        rows = connection.execute(f"{SELECT_INCIDENTS} {order}").fetchall()
    else:
        rows = connection.execute(f"{SELECT_INCIDENTS} WHERE id = ANY(%s) {order}", (list(ids),)).fetchall()
    return [incident_from_record(dict(zip(INCIDENT_READ_COLUMNS, row))) for row in rows]


def load_updates(
    connection: Connection[Any] | Cursor[Any],
    incident_id: UUID | None = None,
    *,
    public_only: bool = True,
    limit: int | None = None,
) -> list[UpdateRow]:
    """Updates, latest (by ``occurred_at``) first: of one incident, or of all if ``incident_id`` is None."""
    conditions, params = [], []
    if incident_id is not None:
        conditions.append("incident_id = %s")
        params.append(incident_id)
    if public_only:
        conditions.append("audience = %s")
        params.append(Audience.PUBLIC.value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = f"{SELECT_UPDATES}{where} ORDER BY occurred_at DESC, position DESC LIMIT %s"
    rows = connection.execute(query, (*params, limit)).fetchall()
    return [update_from_record(dict(zip(UPDATE_READ_COLUMNS, row))) for row in rows]


def incident_from_record(record: Mapping[str, Any]) -> IncidentRow:
    """A row of ``SELECT_INCIDENTS`` (psycopg or asyncpg)."""
    return IncidentRow(**{**record, "service_ids": tuple(record["service_ids"])})


def update_from_record(record: Mapping[str, Any]) -> UpdateRow:
    """A row of ``SELECT_UPDATES`` (psycopg or asyncpg)."""
    return UpdateRow(**{**record, "service_ids": tuple(record["service_ids"])})
