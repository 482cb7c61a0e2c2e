"""The message an integration receives for an event: the same JSON for a webhook and for the
broker relay, complete enough that a receiver needs no second call.

Writing it takes a little state, kept by each user in tables of its own (named with a prefix):
the names and audiences of services and incidents, and whether each past fact was public,
because a correction is as public as the fact it corrects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Cursor

from projections.audience import Subject, about, as_uuid, is_public, services_named, subject_set
from projections.base import Envelope, event_data
from projections.timeline import summarise


@dataclass(frozen=True)
class Message:
    position: int
    kind: str
    service_ids: frozenset[UUID]
    """Every service the event is about (its own, or those an update names)."""
    public: bool
    body: str
    """The JSON document to send, exactly as sent (signatures cover these bytes)."""


class MessageComposer:
    """Turns a batch of events into messages inside the caller's transaction."""

    def __init__(self, prefix: str) -> None:
        self.subjects_table = f"{prefix}_subjects"
        self.facts_table = f"{prefix}_facts"

    @property
    def tables(self) -> tuple[str, ...]:
        return self.subjects_table, self.facts_table

    def create_statements(self) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {self.subjects_table} (
                id uuid PRIMARY KEY,
                name text NOT NULL,
                resident_facing boolean NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {self.facts_table} (
                originator_id uuid NOT NULL,
                version bigint NOT NULL,
                position bigint NOT NULL,
                public boolean NOT NULL,
                PRIMARY KEY (originator_id, version))""",
        ]

    def compose(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> list[Message]:
        subjects = self._subjects(cursor, batch)
        facts = self._corrected_facts(cursor, batch)
        changed_subjects: dict[UUID, Subject] = {}
        new_facts: list[tuple[UUID, int, int, bool]] = []

        def resident_facing(service_id: UUID) -> bool:
            return subjects.get(service_id, ("", False))[1]

        messages = []
        for envelope in batch:
            event = envelope.event
            subject = subject_set(envelope, subjects)
            if subject is not None:
                subjects[envelope.originator_id] = changed_subjects[envelope.originator_id] = subject
            service_id, incident_id = about(envelope)
            corrects = None
            if envelope.kind == "Corrected":
                corrected = facts.get((envelope.originator_id, event.corrects_version))
                if corrected is None:
                    raise LookupError(f"correction names unknown event {envelope.originator_id} v{event.corrects_version}")
                corrects, public = corrected
            else:
                public = is_public(envelope, service_id, resident_facing)
            facts[(envelope.originator_id, envelope.version)] = (envelope.position, public)
            new_facts.append((envelope.originator_id, envelope.version, envelope.position, public))
            body = {
                "type": envelope.kind,
                "position": envelope.position,
                "occurredAt": envelope.occurred_at.isoformat(),
                "recordedAt": envelope.recorded_at.isoformat(),
                "aggregate": type(event).__qualname__.split(".")[0],
                "originatorId": str(envelope.originator_id),
                "version": envelope.version,
                "serviceId": str(service_id) if service_id else None,
                "incidentId": str(incident_id) if incident_id else None,
                "public": public,
                "corrects": corrects,
                "summary": summarise(envelope, subjects),
                "data": event_data(event),
            }
            messages.append(Message(
                envelope.position, envelope.kind, services_named(envelope), public,
                json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            ))
        with cursor.copy(f"COPY {self.facts_table} (originator_id, version, position, public) FROM STDIN") as copy:
            for row in new_facts:
                copy.write_row(row)
        if changed_subjects:
            cursor.executemany(
                f"INSERT INTO {self.subjects_table} (id, name, resident_facing) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, resident_facing = excluded.resident_facing",
                [(key, name, facing) for key, (name, facing) in changed_subjects.items()],
            )
        return messages

    def _subjects(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> dict[UUID, Subject]:
        """The subjects a batch names, for its summaries and public flags."""
        named: set[UUID] = set()
        for envelope in batch:
            named.add(envelope.originator_id)
            named |= services_named(envelope)
            depends_on = getattr(envelope.event, "depends_on_id", None)
            if depends_on:
                named.add(as_uuid(depends_on))
        cursor.execute(
            f"SELECT id, name, resident_facing FROM {self.subjects_table} WHERE id = ANY(%s)", (list(named),)
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}

    def _corrected_facts(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> dict[tuple[UUID, int], tuple[int, bool]]:
        """Position and public flag of each earlier fact a correction in the batch names."""
        wanted = [(e.originator_id, e.event.corrects_version) for e in batch if e.kind == "Corrected"]
        if not wanted:
            return {}
        cursor.execute(
            f"SELECT f.originator_id, f.version, f.position, f.public FROM {self.facts_table} f "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS w(originator_id, version) USING (originator_id, version)",
            ([w[0] for w in wanted], [w[1] for w in wanted]),
        )
        return {(row[0], row[1]): (row[2], row[3]) for row in cursor.fetchall()}
