"""Timeline: one row per event, in position order, with a one-line human summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor

from projections.audience import Subject, about, as_uuid, is_public, subject_set
from projections.base import Envelope, Projection, event_fields
from projections.bulk import copy_rows, jsonb

COPIED_COLUMNS = [
    ("position", "bigint"), ("originator_id", "uuid"), ("version", "bigint"), ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"), ("actor", "text"), ("reason", "text"), ("kind", "text"), ("summary", "text"),
    ("service_id", "uuid"), ("incident_id", "uuid"), ("public", "boolean"), ("corrects", "bigint"), ("data", "jsonb"),
]
"""Every column but ``corrected_by``, which a later correction sets."""


class Timeline(Projection):
    name = "timeline"
    rebuild_cost = 55
    tables = ("timeline", "timeline_subjects")

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS timeline (
                position bigint PRIMARY KEY,
                originator_id uuid NOT NULL,
                version bigint NOT NULL,
                occurred_at timestamptz NOT NULL,
                recorded_at timestamptz NOT NULL,
                actor text NOT NULL,
                reason text,
                kind text NOT NULL,
                summary text NOT NULL,
                service_id uuid,
                incident_id uuid,
                public boolean NOT NULL,
                corrects bigint,
                corrected_by bigint,
                data jsonb NOT NULL)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS timeline_by_event ON timeline (originator_id, version)",
            # Names and audiences of services and incidents, for summaries and the public flag.
            """CREATE TABLE IF NOT EXISTS timeline_subjects (
                id uuid PRIMARY KEY,
                name text NOT NULL,
                resident_facing boolean NOT NULL)""",
        ]

    def reader_index_statements(self) -> list[str]:
        return [  # a service's or an incident's timeline, page by page
            "CREATE INDEX IF NOT EXISTS timeline_by_service ON timeline (service_id, position)",
            "CREATE INDEX IF NOT EXISTS timeline_by_incident ON timeline (incident_id, position)",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        # Only the subjects this batch names: the table grows with every service registered.
        cursor.execute(
            "SELECT id, name, resident_facing FROM timeline_subjects WHERE id = ANY(%b)",
            (list(_named_subjects(batch)),),
        )
        subjects: dict[UUID, Subject] = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
        new_subjects: dict[UUID, Subject] = {}
        in_batch: dict[tuple[UUID, int], tuple[int, bool]] = {}
        rows = []
        corrected_by: dict[int, int] = {}

        def resident_facing(service_id: UUID) -> bool:
            return subjects.get(service_id, ("", False))[1]

        for envelope in batch:
            event = envelope.event
            subject = subject_set(envelope, subjects)
            if subject is not None:
                subjects[envelope.originator_id] = new_subjects[envelope.originator_id] = subject
            service_id, incident_id = about(envelope)
            corrects = None
            if envelope.kind == "Corrected":
                corrects, public = _corrected(cursor, in_batch, envelope.originator_id, event.corrects_version)
                corrected_by[corrects] = envelope.position  # the latest correction wins
            else:
                public = is_public(envelope, service_id, resident_facing)
            in_batch[(envelope.originator_id, envelope.version)] = (envelope.position, public)
            rows.append((
                envelope.position, envelope.originator_id, envelope.version, envelope.occurred_at,
                envelope.recorded_at, event.actor, event.reason, envelope.kind,
                summarise(envelope, subjects), service_id, incident_id, public, corrects,
                jsonb(event_fields(event)),
            ))
        copy_rows(cursor, "timeline", COPIED_COLUMNS, rows)
        if corrected_by:
            cursor.execute(
                "UPDATE timeline SET corrected_by = c.corrected_by "
                "FROM unnest(%b::bigint[], %b::bigint[]) AS c(position, corrected_by) "
                "WHERE timeline.position = c.position",
                (list(corrected_by), list(corrected_by.values())),
            )
        if new_subjects:
            cursor.executemany(
                "INSERT INTO timeline_subjects (id, name, resident_facing) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, resident_facing = excluded.resident_facing",
                [(key, name, facing) for key, (name, facing) in new_subjects.items()],
            )


def _named_subjects(batch: Sequence[Envelope]) -> set[UUID]:
    """Every service or incident a batch's summaries or public flags may look up."""
    named: set[UUID] = set()
    for envelope in batch:
        named.add(envelope.originator_id)
        for field in ("service_id", "depends_on_id"):
            key = getattr(envelope.event, field, None)
            if key:
                named.add(as_uuid(key))
    return named


def _corrected(
    cursor: Cursor[Any], in_batch: dict[tuple[UUID, int], tuple[int, bool]], originator_id: UUID, version: int
) -> tuple[int, bool]:
    """Position and public flag of the event a correction names."""
    found = in_batch.get((originator_id, version))
    if found is not None:
        return found
    cursor.execute(
        "SELECT position, public FROM timeline WHERE originator_id = %s AND version = %s",
        (originator_id, version),
    )
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"correction names unknown event {originator_id} v{version}")
    return int(row[0]), bool(row[1])


def summarise(envelope: Envelope, subjects: dict[UUID, Subject]) -> str:
    """One line a person can read in a list."""
    event = envelope.event
    kind = envelope.kind

    def name(key: Any) -> str:
        return subjects.get(as_uuid(key), (str(key), False))[0] if key else "?"

    own = name(envelope.originator_id)
    if kind == "Registered":
        return f"{own} registered ({event.category})"
    if kind == "StatusReported":
        parts = [p.replace("_", " ").lower() for p in (event.status, event.phase) if p]
        note = event.public_note or event.note
        return f"{own}: {', '.join(parts)}" + (f" — {note}" if note else "")
    if kind == "EtaSet":
        return f"{own}: expected back {event.expected_at:%d %b %Y %H:%M %Z} ({event.confidence.lower()} confidence)"
    if kind == "EtaCleared":
        return f"{own}: ETA withdrawn"
    if kind == "WorkaroundPublished":
        return f"{own}: workaround published — {event.channel}"
    if kind == "WorkaroundWithdrawn":
        return f"{own}: workaround withdrawn ({event.workaround_id})"
    if kind in ("DependencyAdded", "DependencyRemoved"):
        verb = "now depends on" if kind == "DependencyAdded" else "no longer depends on"
        return f"{name(event.service_id)} {verb} {name(event.depends_on_id)}"
    if kind == "Declared":
        return f"Incident declared: {event.title} ({event.severity.lower()})"
    if kind == "ServiceAffected":
        return f"{own}: {name(event.service_id)} affected"
    if kind == "UpdatePosted":
        return f"{own}: {event.audience.lower()} update — {event.message[:160]}"
    if kind == "ImpactRecorded":
        figures = [f"{n:,} {label}" for n, label in (
            (event.residents_affected, "residents"), (event.properties_affected, "properties")) if n is not None]
        scope = f" ({name(event.service_id)})" if event.service_id else ""
        return f"{own}: impact {', '.join(figures)}{scope}"
    if kind == "AwarenessRecorded":
        return f"{own}: aware since {event.aware_at:%d %b %Y %H:%M %Z}; clocks {', '.join(event.regimes) or 'none'}"
    if kind == "RegulatorNotified":
        return f"{own}: notified {event.regime}" + (f" (ref {event.reference})" if event.reference else "")
    if kind == "NotificationDecisionRecorded":
        return f"{own}: {event.regime} {'required' if event.required else 'not required'}"
    if kind == "Closed":
        return f"{own}: incident closed"
    if kind == "Corrected":
        return f"{own}: correction of version {event.corrects_version} — {', '.join(sorted(event.changes))}"
    if kind == "Started":
        return "Dependency graph started"
    return f"{own}: {kind}"
