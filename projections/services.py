"""Services: one row per service, where it stands now, for the API and the status page.

Status reports can be many (monitors report often), so they are rows of their own in
``current_service_reports`` and what they add up to is a left fold over them in effect order
(``occurred_at``, then recording order), whose state the service row keeps. A batch extends
the fold when its reports come after the last one folded, the common case; a back-dated report
or a corrected one folds that service's reports again from the start. Either way the row is the
same. ETA revisions and active workarounds are few: the row's ``eta_history`` and ``workarounds``
columns are both what is shown and the facts they are recomputed from (entries carry the
service version that recorded them, which corrections name).
Impact figures per service come from incidents; they live in ``current_service_impacts`` so a
correction of one (which names the incident and version) can find its service.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.dependencies import DependencyGraph
from domain.incident import Incident
from domain.service import (
    EtaRevision,
    Service,
    StatusReport,
    Workaround as PublishedWorkaround,
    corrected_fact,
    eta_in_force,
)
from domain.values import Confidence, Phase, Status
from projections.base import Envelope, Projection
from projections.bulk import copy_rows, jsonb

REGISTRATION_FIELDS = ("slug", "name", "category", "description", "resident_facing", "tier", "owner")
REPORT_CORRECTIONS = ("status", "phase", "occurred_at")
"""Corrected fields of a status report that the fold depends on (notes are not kept here)."""
OUTAGE_PHASES = frozenset({Phase.ISOLATED, Phase.ASSESSING, Phase.RESTORING})
"""Entering one of these from RESTORED (a regression) starts a new outage."""

REPORT_COLUMNS = [
    ("service_id", "uuid"), ("version", "bigint"), ("occurred_at", "timestamptz"), ("status", "text"), ("phase", "text"),
]

ONE_SECOND = timedelta(seconds=1)
ONE_MICROSECOND = timedelta(microseconds=1)


class ServicesView(Projection):
    name = "services"
    rebuild_cost = 31
    tables = ("current_services", "current_service_reports", "current_service_impacts")

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS current_services (
                id uuid PRIMARY KEY,
                slug text NOT NULL,
                name text NOT NULL,
                category text NOT NULL,
                description text,
                resident_facing boolean NOT NULL,
                tier integer,
                owner text,
                status text NOT NULL,
                phase text,
                status_since timestamptz,
                eta_expected_at timestamptz,
                eta_confidence text,
                eta_reason text,
                eta_set_at timestamptz,
                eta_history jsonb NOT NULL,
                eta_slip_seconds bigint,
                workarounds jsonb NOT NULL,
                depends_on uuid[] NOT NULL,
                residents_affected bigint,
                downtime_seconds bigint NOT NULL,
                downtime_until timestamptz,
                last_changed_position bigint NOT NULL,
                report_fold jsonb NOT NULL)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS current_services_by_slug ON current_services (slug)",
            """CREATE TABLE IF NOT EXISTS current_service_reports (
                service_id uuid NOT NULL,
                version bigint NOT NULL,
                occurred_at timestamptz NOT NULL,
                status text,
                phase text,
                PRIMARY KEY (service_id, version))""",
            """CREATE TABLE IF NOT EXISTS current_service_impacts (
                incident_id uuid NOT NULL,
                version bigint NOT NULL,
                service_id uuid NOT NULL,
                position bigint NOT NULL,
                occurred_at timestamptz NOT NULL,
                residents_affected bigint,
                PRIMARY KEY (incident_id, version))""",
            "CREATE INDEX IF NOT EXISTS current_service_impacts_latest "
            "ON current_service_impacts (service_id, occurred_at DESC, position DESC)",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        impacts = _Impacts.load(cursor, batch)
        services = _load_states(cursor, _services_named(batch) | impacts.services())
        reports = _Reports()
        touched: set[UUID] = set()
        for envelope in batch:
            service_id = _fold(envelope, services, reports, impacts)
            if service_id is not None:
                services[service_id].last_changed_position = envelope.position
                touched.add(service_id)
        reports.save(cursor)
        reports.fold_into(cursor, services)
        impacts.save(cursor)
        for service_id, residents in impacts.latest_residents(cursor).items():
            services[service_id].residents_affected = residents
        if touched:
            cursor.executemany(_UPSERT, [_row(services[service_id]) for service_id in sorted(touched)])


# ---- what the facts add up to --------------------------------------------------------------


def _affected(status: Status | None, phase: Phase | None) -> bool:
    return status not in (None, Status.OPERATIONAL) or phase not in (None, Phase.RESTORED)


@dataclass
class ReportFold:
    """What a service's status reports add up to, folded one report at a time in effect order.

    Resumable: the state after some reports plus the later ones gives the same result as all
    the reports folded at once.
    """

    status: Status | None = None
    """The latest status reported (None: never reported, taken to be OPERATIONAL)."""
    phase: Phase | None = None
    status_since: datetime | None = None
    """When the current status began: the earliest report of its current unbroken run."""
    outage_start: datetime | None = None
    """When the latest outage began: the service left a working state (status OPERATIONAL and
    phase RESTORED or none), or regressed from RESTORED into recovery."""
    downtime: timedelta = timedelta(0)
    """Time spent not OPERATIONAL in the spells that have ended."""
    down_since: datetime | None = None
    """Start of the spell not OPERATIONAL that has not ended, if any."""
    last: tuple[datetime, int] | None = None
    """(occurred_at, version) of the last report folded."""

    def follows(self, report: StatusReport) -> bool:
        return self.last is None or (report.occurred_at, report.version) > self.last

    def add(self, report: StatusReport) -> None:
        at = report.occurred_at
        status, phase = report.status or self.status, report.phase or self.phase
        regression = self.phase is Phase.RESTORED and phase in OUTAGE_PHASES
        if regression or (not _affected(self.status, self.phase) and _affected(status, phase)):
            self.outage_start = at
        if report.status is not None and report.status is not self.status:
            self.status_since = at
        if status not in (None, Status.OPERATIONAL) and self.down_since is None:
            self.down_since = at
        elif status is Status.OPERATIONAL and self.down_since is not None:
            self.downtime += at - self.down_since
            self.down_since = None
        self.status, self.phase, self.last = status, phase, (at, report.version)

    def downtime_until(self, until: datetime | None) -> timedelta:
        """Time not OPERATIONAL, counting a spell that has not ended up to ``until``."""
        if self.down_since is None or until is None:
            return self.downtime
        return self.downtime + (until - self.down_since)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status and self.status.value,
            "phase": self.phase and self.phase.value,
            "status_since": _time(self.status_since),
            "outage_start": _time(self.outage_start),
            "downtime_us": self.downtime // ONE_MICROSECOND,
            "down_since": _time(self.down_since),
            "last": self.last and [_time(self.last[0]), self.last[1]],
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> ReportFold:
        last = saved["last"]
        return cls(
            status=Status(saved["status"]) if saved["status"] else None,
            phase=Phase(saved["phase"]) if saved["phase"] else None,
            status_since=_parse_time(saved["status_since"]),
            outage_start=_parse_time(saved["outage_start"]),
            downtime=saved["downtime_us"] * ONE_MICROSECOND,
            down_since=_parse_time(saved["down_since"]),
            last=(_parse_time(last[0]), last[1]) if last else None,  # type: ignore[arg-type]
        )


def eta_slip(etas: Sequence[EtaRevision], eta: EtaRevision | None, since: datetime | None) -> timedelta | None:
    """How far the ETA in force has moved from the first ETA given since ``since``."""
    if eta is None or eta.expected_at is None:
        return None
    given = [e for e in etas if e.expected_at is not None and (since is None or e.occurred_at >= since)]
    first = min(given, key=lambda e: (e.occurred_at, e.version), default=None)
    if first is None or first.expected_at is None:
        return None
    return eta.expected_at - first.expected_at


@dataclass
class _Reports:
    """The batch's status reports and corrections of reports, by service."""

    new: dict[UUID, list[StatusReport]] = field(default_factory=dict)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)
    corrected: set[UUID] = field(default_factory=set)

    def add(self, service_id: UUID, report: StatusReport) -> None:
        self.new.setdefault(service_id, []).append(report)

    def correct(self, service_id: UUID, version: int, changes: dict[str, Any]) -> None:
        fixed = {k: v for k, v in changes.items() if k in REPORT_CORRECTIONS}
        if not fixed:
            return
        row: list[Any] = []
        for name in REPORT_CORRECTIONS:
            row += [name in fixed, fixed.get(name)]
        self.corrections.append((*row, service_id, version))
        self.corrected.add(service_id)

    def save(self, cursor: Cursor[Any]) -> None:
        if self.new:
            # COPY: reports are most of the events, and a row each by INSERT costs several times more.
            copy_rows(cursor, "current_service_reports", REPORT_COLUMNS, (
                (service_id, r.version, r.occurred_at, r.status and r.status.value, r.phase and r.phase.value)
                for service_id, reports in self.new.items()
                for r in reports
            ))
        if self.corrections:
            cursor.executemany(
                "UPDATE current_service_reports SET "
                "status = CASE WHEN %s THEN %s ELSE status END, "
                "phase = CASE WHEN %s THEN %s ELSE phase END, "
                "occurred_at = CASE WHEN %s THEN %s::timestamptz ELSE occurred_at END "
                "WHERE service_id = %s AND version = %s",
                self.corrections,
            )

    def fold_into(self, cursor: Cursor[Any], services: dict[UUID, _ServiceState]) -> None:
        """Extend each service's fold with its new reports, or fold all its reports again
        when one is back-dated before the last folded or was corrected (call after ``save``)."""
        again = set(self.corrected)
        for service_id, reports in self.new.items():
            ordered = sorted(reports, key=lambda r: (r.occurred_at, r.version))
            fold = services[service_id].fold
            if service_id in again or not fold.follows(ordered[0]):
                again.add(service_id)
                continue
            for report in ordered:
                fold.add(report)
        if not again:
            return
        for service_id in again:
            services[service_id].fold = ReportFold()
        cursor.execute(
            "SELECT service_id, version, occurred_at, status, phase FROM current_service_reports "
            "WHERE service_id = ANY(%b) ORDER BY service_id, occurred_at, version",
            (sorted(again),),
        )
        for service_id, version, occurred_at, status, phase in cursor.fetchall():
            services[service_id].fold.add(_report(version, occurred_at, status, phase))


def _report(version: int, occurred_at: datetime, status: str | None, phase: str | None) -> StatusReport:
    return StatusReport(
        version=version,
        occurred_at=occurred_at,
        status=Status(status) if status else None,
        phase=Phase(phase) if phase else None,
        note=None,
        public_note=None,
    )


# ---- folding events into a service's facts ---------------------------------------------------


@dataclass
class _ServiceState:
    """What a row is computed from, as the domain's own value types."""

    id: UUID
    registration: dict[str, Any]
    fold: ReportFold = field(default_factory=ReportFold)
    etas: list[EtaRevision] = field(default_factory=list)
    workarounds: dict[str, PublishedWorkaround] = field(default_factory=dict)
    """Active ones only: a withdrawn workaround is never shown or republished."""
    depends_on: list[UUID] = field(default_factory=list)
    residents_affected: int | None = None
    last_changed_position: int = 0

    def correct(self, version: int, changes: dict[str, Any], reports: _Reports) -> None:
        if version == 1:
            self.registration.update(changes)
        elif any(e.version == version for e in self.etas):
            self.etas = [corrected_fact(e, version, changes) for e in self.etas]
        elif any(w.published_version == version for w in self.workarounds.values()):
            self.workarounds = {
                key: corrected_fact(w, version, changes, version_field="published_version")
                for key, w in self.workarounds.items()
            }
        else:
            reports.correct(self.id, version, changes)


def _services_named(batch: Sequence[Envelope]) -> set[UUID]:
    """Ids of the services whose rows the batch's events change directly."""
    named = set()
    for envelope in batch:
        event = envelope.event
        if isinstance(event, Service.Event):
            named.add(envelope.originator_id)
        elif isinstance(event, (DependencyGraph.DependencyAdded, DependencyGraph.DependencyRemoved)):
            named.add(event.service_id)
        elif isinstance(event, Incident.ImpactRecorded) and event.service_id is not None:
            named.add(event.service_id)
    return named


def _fold(
    envelope: Envelope, services: dict[UUID, _ServiceState], reports: _Reports, impacts: _Impacts
) -> UUID | None:
    """Apply one event; the id of the service whose row it changed, if any."""
    event = envelope.event
    if isinstance(event, Service.Registered):
        services[envelope.originator_id] = _ServiceState(
            id=envelope.originator_id,
            registration={name: getattr(event, name) for name in REGISTRATION_FIELDS},
        )
        return envelope.originator_id
    if isinstance(event, Service.Event):
        _fold_service_fact(envelope, _state(services, envelope.originator_id), reports)
        return envelope.originator_id
    if isinstance(event, DependencyGraph.DependencyAdded):
        _state(services, event.service_id).depends_on.append(event.depends_on_id)
        return event.service_id
    if isinstance(event, DependencyGraph.DependencyRemoved):
        _state(services, event.service_id).depends_on.remove(event.depends_on_id)
        return event.service_id
    if isinstance(event, Incident.ImpactRecorded) and event.service_id is not None:
        impacts.record(envelope)
        return event.service_id
    if isinstance(event, Incident.Corrected):
        return impacts.correct(envelope)
    return None


def _fold_service_fact(envelope: Envelope, state: _ServiceState, reports: _Reports) -> None:
    event = envelope.event
    version = envelope.version
    if isinstance(event, Service.StatusReported):
        reports.add(state.id, _report(version, event.occurred_at, event.status, event.phase))
    elif isinstance(event, Service.EtaSet):
        state.etas.append(EtaRevision(
            version, event.occurred_at, event.expected_at, Confidence(event.confidence), event.reason
        ))
    elif isinstance(event, Service.EtaCleared):
        state.etas.append(EtaRevision(version, event.occurred_at, None, None, event.reason))
    elif isinstance(event, Service.WorkaroundPublished):
        state.workarounds[event.workaround_id] = PublishedWorkaround(
            id=event.workaround_id,
            channel=event.channel,
            instructions=event.instructions,
            contact=event.contact,
            audience=event.audience,
            published_version=version,
            published_at=event.occurred_at,
        )
    elif isinstance(event, Service.WorkaroundWithdrawn):
        del state.workarounds[event.workaround_id]
    elif isinstance(event, Service.Corrected):
        state.correct(event.corrects_version, event.changes, reports)


def _state(services: dict[UUID, _ServiceState], service_id: UUID) -> _ServiceState:
    state = services.get(service_id)
    if state is None:
        raise LookupError(f"an event names service {service_id}, which was never registered")
    return state


@dataclass
class _ServiceImpact:
    service_id: UUID
    position: int
    occurred_at: datetime
    residents_affected: int | None


@dataclass
class _Impacts:
    """Per-service impact figures the batch needs, by (incident id, version)."""

    records: dict[tuple[UUID, int], _ServiceImpact]
    changed: set[tuple[UUID, int]] = field(default_factory=set)

    @classmethod
    def load(cls, cursor: Cursor[Any], batch: Sequence[Envelope]) -> _Impacts:
        """The stored records that the batch's incident corrections may name."""
        named = [
            (e.originator_id, e.event.corrects_version)
            for e in batch if isinstance(e.event, Incident.Corrected)
        ]
        records: dict[tuple[UUID, int], _ServiceImpact] = {}
        if named:
            cursor.execute(
                "SELECT i.incident_id, i.version, service_id, position, occurred_at, residents_affected "
                "FROM current_service_impacts i JOIN unnest(%b::uuid[], %b::bigint[]) AS n(incident_id, version) "
                "ON i.incident_id = n.incident_id AND i.version = n.version",
                ([incident for incident, _ in named], [version for _, version in named]),
            )
            for incident_id, version, *record in cursor.fetchall():
                records[(incident_id, version)] = _ServiceImpact(*record)
        return cls(records)

    def services(self) -> set[UUID]:
        return {record.service_id for record in self.records.values()}

    def record(self, envelope: Envelope) -> None:
        event = envelope.event
        key = (envelope.originator_id, envelope.version)
        self.records[key] = _ServiceImpact(
            event.service_id, envelope.position, event.occurred_at, event.residents_affected
        )
        self.changed.add(key)

    def correct(self, envelope: Envelope) -> UUID | None:
        """Apply an incident correction if it names a per-service impact; that service's id."""
        event = envelope.event
        record = self.records.get((envelope.originator_id, event.corrects_version))
        if record is None or "residents_affected" not in event.changes:
            return None
        record.residents_affected = event.changes["residents_affected"]
        self.changed.add((envelope.originator_id, event.corrects_version))
        return record.service_id

    def save(self, cursor: Cursor[Any]) -> None:
        if not self.changed:
            return
        rows = []
        for incident_id, version in sorted(self.changed):
            record = self.records[(incident_id, version)]
            rows.append((
                incident_id, version, record.service_id, record.position,
                record.occurred_at, record.residents_affected,
            ))
        cursor.executemany(
            "INSERT INTO current_service_impacts "
            "(incident_id, version, service_id, position, occurred_at, residents_affected) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (incident_id, version) "
            "DO UPDATE SET residents_affected = excluded.residents_affected",
            rows,
        )

    def latest_residents(self, cursor: Cursor[Any]) -> dict[UUID, int | None]:
        """For each service whose figures changed: residents affected per its latest record."""
        changed_services = sorted({self.records[key].service_id for key in self.changed})
        if not changed_services:
            return {}
        cursor.execute(
            "SELECT DISTINCT ON (service_id) service_id, residents_affected FROM current_service_impacts "
            "WHERE service_id = ANY(%b) ORDER BY service_id, occurred_at DESC, position DESC",
            (changed_services,),
        )
        return {service_id: residents for service_id, residents in cursor.fetchall()}


# ---- storing rows ----------------------------------------------------------------------------


def _row(state: _ServiceState) -> tuple[Any, ...]:
    fold = state.fold
    eta = eta_in_force(state.etas, fold.phase)
    slip = eta_slip(state.etas, eta, fold.outage_start)
    latest_fact = max(
        [e.occurred_at for e in state.etas] + ([fold.last[0]] if fold.last else []), default=None
    )
    history = sorted(state.etas, key=lambda e: (e.occurred_at, e.version))
    workarounds = sorted(state.workarounds.values(), key=lambda w: (w.published_at, w.published_version))
    return (
        state.id, *(state.registration[name] for name in REGISTRATION_FIELDS),
        (fold.status or Status.OPERATIONAL).value, fold.phase and fold.phase.value, fold.status_since,
        eta.expected_at if eta else None,
        eta.confidence.value if eta and eta.confidence else None,
        eta.reason if eta else None,
        eta.occurred_at if eta else None,
        jsonb([_eta_json(e) for e in history]),
        None if slip is None else slip // ONE_SECOND,
        jsonb([_workaround_json(w) for w in workarounds]),
        state.depends_on,
        state.residents_affected,
        fold.downtime_until(latest_fact) // ONE_SECOND,
        latest_fact,
        state.last_changed_position,
        jsonb(fold.to_json()),
    )


ROW_COLUMNS = (
    "id", *REGISTRATION_FIELDS, "status", "phase", "status_since", "eta_expected_at",
    "eta_confidence", "eta_reason", "eta_set_at", "eta_history", "eta_slip_seconds", "workarounds",
    "depends_on", "residents_affected", "downtime_seconds", "downtime_until",
    "last_changed_position", "report_fold",
)

_UPSERT = (
    f"INSERT INTO current_services ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(['%s'] * len(ROW_COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in ROW_COLUMNS[1:])}"
)


def _load_states(cursor: Cursor[Any], ids: set[UUID]) -> dict[UUID, _ServiceState]:
    if not ids:
        return {}
    cursor.execute(
        f"SELECT id, {', '.join(REGISTRATION_FIELDS)}, eta_history, workarounds, depends_on, "
        "residents_affected, last_changed_position, report_fold FROM current_services WHERE id = ANY(%b)",
        (sorted(ids),),
    )
    states = {}
    for row in cursor.fetchall():
        service_id, *registration, etas, workarounds, depends_on, residents, position, fold = row
        states[service_id] = _ServiceState(
            id=service_id,
            registration=dict(zip(REGISTRATION_FIELDS, registration)),
            fold=ReportFold.from_json(fold),
            etas=[_eta_from(values) for values in etas],
            workarounds={w["id"]: _workaround_from(w) for w in workarounds},
            depends_on=list(depends_on),
            residents_affected=residents,
            last_changed_position=position,
        )
    return states


def _time(value: datetime | None) -> str | None:
    """ISO-8601 in UTC, so stored text compares and reads the same whatever offset was given."""
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _eta_from(values: dict[str, Any]) -> EtaRevision:
    return EtaRevision(
        version=values["version"],
        occurred_at=_parse_time(values["set_at"]),  # type: ignore[arg-type]
        expected_at=_parse_time(values["expected_at"]),
        confidence=Confidence(values["confidence"]) if values["confidence"] else None,
        reason=values["reason"],
    )


def _workaround_from(values: dict[str, Any]) -> PublishedWorkaround:
    return PublishedWorkaround(
        id=values["id"], channel=values["channel"], instructions=values["instructions"],
        contact=values["contact"], audience=values["audience"],
        published_version=values["version"],
        published_at=_parse_time(values["published_at"]),  # type: ignore[arg-type]
    )


def _eta_json(eta: EtaRevision) -> dict[str, Any]:
    return {
        "expected_at": _time(eta.expected_at),
        "confidence": eta.confidence.value if eta.confidence else None,
        "reason": eta.reason,
        "set_at": _time(eta.occurred_at),
        "version": eta.version,
    }


def _workaround_json(workaround: PublishedWorkaround) -> dict[str, Any]:
    return {
        "id": workaround.id,
        "channel": workaround.channel,
        "instructions": workaround.instructions,
        "contact": workaround.contact,
        "audience": workaround.audience,
        "published_at": _time(workaround.published_at),
        "version": workaround.published_version,
    }


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eta:
    """An ETA revision; ``expected_at`` is None for a revision that cleared the ETA."""

    expected_at: datetime | None
    confidence: str | None
    reason: str | None
    set_at: datetime


@dataclass(frozen=True)
class Workaround:
    id: str
    channel: str
    instructions: str
    contact: str | None
    audience: str
    published_at: datetime


@dataclass(frozen=True)
class ServiceRow:
    id: UUID
    slug: str
    name: str
    category: str
    description: str | None
    resident_facing: bool
    tier: int | None
    owner: str | None
    status: str
    phase: str | None
    status_since: datetime | None
    eta: Eta | None
    eta_history: tuple[Eta, ...]
    eta_slip_seconds: int | None
    workarounds: tuple[Workaround, ...]
    depends_on: tuple[UUID, ...]
    residents_affected: int | None
    downtime_seconds: int
    """Time not OPERATIONAL up to ``downtime_until``, this service's latest report or ETA."""
    downtime_until: datetime | None
    last_changed_position: int

    def downtime_seconds_at(self, moment: datetime) -> int:
        """Downtime up to ``moment``: a service still down keeps accruing after its last fact."""
        if self.status == Status.OPERATIONAL or self.downtime_until is None:
            return self.downtime_seconds
        return self.downtime_seconds + max((moment - self.downtime_until) // ONE_SECOND, 0)


READ_COLUMNS = ROW_COLUMNS[:-1]
SELECT_SERVICES = f"SELECT {', '.join(READ_COLUMNS)} FROM current_services"
"""The reader's query (no parameters); filter or order it as needed, e.g. by ``id = ANY(...)``."""


def load_services(
    connection: Connection[Any] | Cursor[Any], ids: Iterable[UUID] | None = None
) -> list[ServiceRow]:
    """Services by slug; only those with ``ids`` if given."""
    if ids is None:
        rows = connection.execute(f"{SELECT_SERVICES} ORDER BY slug").fetchall()
    else:
        rows = connection.execute(f"{SELECT_SERVICES} WHERE id = ANY(%s) ORDER BY slug", (list(ids),)).fetchall()
    return [service_from_record(dict(zip(READ_COLUMNS, row))) for row in rows]


def service_from_record(record: Mapping[str, Any]) -> ServiceRow:
    """A row of ``SELECT_SERVICES`` (psycopg or asyncpg; jsonb as text or decoded)."""
    eta = None
    if record["eta_expected_at"] is not None:
        eta = Eta(record["eta_expected_at"], record["eta_confidence"], record["eta_reason"], record["eta_set_at"])
    return ServiceRow(
        **{name: record[name] for name in ("id", *REGISTRATION_FIELDS, "status", "phase", "status_since")},
        eta=eta,
        eta_history=tuple(
            Eta(_parse_time(e["expected_at"]), e["confidence"], e["reason"], _parse_time(e["set_at"]))  # type: ignore[arg-type]
            for e in _json(record["eta_history"])
        ),
        eta_slip_seconds=record["eta_slip_seconds"],
        workarounds=tuple(
            Workaround(
                w["id"], w["channel"], w["instructions"], w["contact"], w["audience"],
                _parse_time(w["published_at"]),  # type: ignore[arg-type]
            )
            for w in _json(record["workarounds"])
        ),
        depends_on=tuple(record["depends_on"]),
        residents_affected=record["residents_affected"],
        downtime_seconds=record["downtime_seconds"],
        downtime_until=record["downtime_until"],
        last_changed_position=record["last_changed_position"],
    )


def _json(value: Any) -> Any:
    """asyncpg hands jsonb over as text unless a codec is registered; psycopg decodes it."""
    return json.loads(value) if isinstance(value, str) else value


def blocked_by_map(services: Iterable[ServiceRow]) -> dict[UUID, list[UUID]]:
    """For each service, every dependency, direct or through others, that is not OPERATIONAL.

    Pure, over loaded rows: pass every service, or chains through those left out are not seen.
    Dependencies are listed in the order a depth-first walk of ``depends_on`` meets them.
    """
    by_id = {service.id: service for service in services}
    blocked: dict[UUID, list[UUID]] = {}
    for service in by_id.values():
        seen: set[UUID] = set()
        found: list[UUID] = []
        stack = list(reversed(service.depends_on))
        while stack:
            dependency = by_id.get(stack.pop())
            if dependency is None or dependency.id in seen:
                continue
            seen.add(dependency.id)
            if dependency.status != Status.OPERATIONAL:
                found.append(dependency.id)
            stack.extend(reversed(dependency.depends_on))
        blocked[service.id] = found
    return blocked
