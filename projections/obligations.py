"""Regulatory obligations: one row per (incident, regime), folded with the domain's own rules.

The fold follows the Incident aggregate event by event, using ``domain.regulation.Obligation``
for what a filing or a decision does, so the view and the aggregate cannot disagree:
- AwarenessRecorded opens the clocks of its regimes and re-anchors every clock of the
  incident on the latest recorded awareness;
- RegulatorNotified is the filing at its ``occurred_at``; only the first filing decides
  lateness, so correcting the anchor later moves anchor and due time but never un-breaches;
- NotificationDecisionRecorded records required or not, with who and why;
- Corrected fixes an awareness time (re-anchoring) or a filing's reference.
The state (OVERDUE depends on the clock) is computed when read, from ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.incident import Incident
from domain.regulation import REGIMES, Obligation, ObligationState
from projections.base import Envelope, Projection
from projections.bulk import upsert

_TYPED_COLUMNS = [
    ("incident_id", "uuid"), ("regime", "text"), ("regulator", "text"), ("regime_title", "text"),
    ("anchor_at", "timestamptz"), ("due_at", "timestamptz"), ("filed_at", "timestamptz"), ("reference", "text"),
    ("filed_late", "boolean"), ("not_required", "boolean"), ("decided_by", "text"), ("decision_reason", "text"),
    ("position", "bigint"),
]
_OBLIGATION_COLUMNS = ", ".join(name for name, _ in _TYPED_COLUMNS)


@dataclass
class _IncidentClocks:
    """What the aggregate keeps about one incident's clocks."""

    awareness: dict[int, datetime] = field(default_factory=dict)
    """Awareness records by incident version; the latest version is the anchor."""
    filings: dict[int, str] = field(default_factory=dict)
    """The regime each RegulatorNotified (by incident version) filed for."""
    obligations: dict[str, Obligation] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    """Position of the last event that changed each obligation."""
    new_awareness: set[int] = field(default_factory=set)
    new_filings: set[int] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)

    @property
    def aware_at(self) -> datetime | None:
        return self.awareness[max(self.awareness)] if self.awareness else None

    def put(self, obligation: Obligation, position: int) -> None:
        if self.obligations.get(obligation.regime) != obligation:
            self.obligations[obligation.regime] = obligation
            self.positions[obligation.regime] = position
            self.changed.add(obligation.regime)

    def opened(self, regime: str) -> Obligation:
        return self.obligations.get(regime) or Obligation(regime=regime, anchor_at=self.aware_at)

    def reanchor(self, position: int) -> None:
        for obligation in list(self.obligations.values()):
            self.put(replace(obligation, anchor_at=self.aware_at), position)

    def apply(self, version: int, position: int, event: Any) -> None:
        if isinstance(event, Incident.AwarenessRecorded):
            self.awareness[version] = event.aware_at
            self.new_awareness.add(version)
            for regime in event.regimes:
                self.put(self.opened(regime), position)
            self.reanchor(position)
        elif isinstance(event, Incident.RegulatorNotified):
            self.filings[version] = event.regime
            self.new_filings.add(version)
            self.put(self.opened(event.regime).filed(event.occurred_at, event.reference), position)
        elif isinstance(event, Incident.NotificationDecisionRecorded):
            decided = replace(
                self.opened(event.regime),
                not_required=not event.required, decided_by=event.actor, decision_reason=event.reason,
            )
            self.put(decided, position)
        elif isinstance(event, Incident.Corrected):
            corrected = event.corrects_version
            if corrected in self.awareness and "aware_at" in event.changes:
                self.awareness[corrected] = event.changes["aware_at"]
                self.new_awareness.add(corrected)
                self.reanchor(position)
            elif corrected in self.filings and "reference" in event.changes:
                regime = self.filings[corrected]
                self.put(replace(self.obligations[regime], reference=event.changes["reference"]), position)


_RELEVANT = (
    Incident.AwarenessRecorded, Incident.RegulatorNotified, Incident.NotificationDecisionRecorded,
    Incident.Corrected,
)


class Obligations(Projection):
    name = "obligations"
    rebuild_cost = 5
    tables = ("obligations", "obligation_awareness", "obligation_filings")

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS obligations (
                incident_id uuid NOT NULL,
                regime text NOT NULL,
                regulator text NOT NULL,
                regime_title text NOT NULL,
                anchor_at timestamptz,
                due_at timestamptz,
                filed_at timestamptz,
                reference text,
                filed_late boolean,
                not_required boolean NOT NULL,
                decided_by text,
                decision_reason text,
                position bigint NOT NULL,
                PRIMARY KEY (incident_id, regime))""",
            # What corrections need: which versions were awareness records and which filings.
            """CREATE TABLE IF NOT EXISTS obligation_awareness (
                incident_id uuid NOT NULL,
                version bigint NOT NULL,
                aware_at timestamptz NOT NULL,
                PRIMARY KEY (incident_id, version))""",
            """CREATE TABLE IF NOT EXISTS obligation_filings (
                incident_id uuid NOT NULL,
                version bigint NOT NULL,
                regime text NOT NULL,
                PRIMARY KEY (incident_id, version))""",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        relevant = [e for e in batch if isinstance(e.event, _RELEVANT)]
        if not relevant:
            return
        clocks = _load(cursor, list({e.originator_id for e in relevant}))
        for envelope in relevant:
            clocks[envelope.originator_id].apply(envelope.version, envelope.position, envelope.event)
        _save(cursor, clocks)


def _load(cursor: Cursor[Any], incident_ids: list[UUID]) -> dict[UUID, _IncidentClocks]:
    clocks = {incident_id: _IncidentClocks() for incident_id in incident_ids}
    cursor.execute(
        "SELECT incident_id, version, aware_at FROM obligation_awareness WHERE incident_id = ANY(%b)",
        (incident_ids,),
    )
    for incident_id, version, aware_at in cursor.fetchall():
        clocks[incident_id].awareness[version] = aware_at
    cursor.execute(
        "SELECT incident_id, version, regime FROM obligation_filings WHERE incident_id = ANY(%b)",
        (incident_ids,),
    )
    for incident_id, version, regime in cursor.fetchall():
        clocks[incident_id].filings[version] = regime
    cursor.execute(f"SELECT {_OBLIGATION_COLUMNS} FROM obligations WHERE incident_id = ANY(%b)", (incident_ids,))
    for row in cursor.fetchall():
        incident_id, obligation, position = _stored(row)
        clocks[incident_id].obligations[obligation.regime] = obligation
        clocks[incident_id].positions[obligation.regime] = position
    return clocks


def _save(cursor: Cursor[Any], clocks: dict[UUID, _IncidentClocks]) -> None:
    upsert(
        cursor, "obligation_awareness", [("incident_id", "uuid"), ("version", "bigint"), ("aware_at", "timestamptz")],
        [(i, v, c.awareness[v]) for i, c in clocks.items() for v in c.new_awareness], key=("incident_id", "version"),
    )
    upsert(
        cursor, "obligation_filings", [("incident_id", "uuid"), ("version", "bigint"), ("regime", "text")],
        [(i, v, c.filings[v]) for i, c in clocks.items() for v in c.new_filings], key=("incident_id", "version"),
    )
    upsert(
        cursor, "obligations", _TYPED_COLUMNS,
        [_row(i, c.obligations[regime], c.positions[regime]) for i, c in clocks.items() for regime in c.changed],
        key=("incident_id", "regime"),
    )


def _row(incident_id: UUID, o: Obligation, position: int) -> tuple[Any, ...]:
    return (
        incident_id, o.regime, o.regulator, REGIMES[o.regime].title, o.anchor_at, o.due_at, o.filed_at,
        o.reference, o.filed_late, o.not_required, o.decided_by, o.decision_reason, position,
    )


def _stored(row: Sequence[Any]) -> tuple[UUID, Obligation, int]:
    """(incident id, the domain value, position) of a row read with ``_OBLIGATION_COLUMNS``."""
    (incident_id, regime, _regulator, _title, anchor_at, _due_at, filed_at, reference, filed_late,
     not_required, decided_by, decision_reason, position) = row
    obligation = Obligation(
        regime=regime, anchor_at=anchor_at, filed_at=filed_at, reference=reference, filed_late=filed_late,
        not_required=not_required, decided_by=decided_by, decision_reason=decision_reason,
    )
    return incident_id, obligation, position


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObligationRow:
    """One incident's obligation under one regime, with its state when it was read."""

    incident_id: UUID
    regime: str
    regulator: str
    regime_title: str
    anchor_at: datetime | None
    due_at: datetime | None
    """None where the regime sets no fixed period."""
    filed_at: datetime | None
    reference: str | None
    filed_late: bool | None
    not_required: bool
    decided_by: str | None
    decision_reason: str | None
    position: int
    """Position of the last event that changed this obligation."""
    state: ObligationState


_REGIME_ORDER = {code: n for n, code in enumerate(REGIMES)}


SELECT_OBLIGATIONS = (
    f"SELECT {_OBLIGATION_COLUMNS} FROM obligations WHERE %s::uuid IS NULL OR incident_id = %s::uuid"
)
"""Parameters: the incident id twice (None for every incident)."""


def obligations_from_rows(rows: Iterable[Sequence[Any]], now: datetime) -> list[ObligationRow]:
    """Rows of ``SELECT_OBLIGATIONS`` with their state at ``now``; by incident, then regime."""
    read = [ObligationRow(*row, state=_stored(row)[1].state(now)) for row in rows]
    return sorted(read, key=lambda r: (str(r.incident_id), _REGIME_ORDER.get(r.regime, len(REGIMES))))


def load_obligations(
    conn: Connection[Any], incident_id: UUID | None = None, *, now: datetime
) -> list[ObligationRow]:
    """Obligations (of one incident, or of all), with their state at ``now``; by incident, then regime."""
    return obligations_from_rows(conn.execute(SELECT_OBLIGATIONS, (incident_id, incident_id)).fetchall(), now)
