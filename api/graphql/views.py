"""Services and incidents as GraphQL types, read from the projections' tables.

Lists are read in one query per request and kept in the request's context, so nested
fields (``dependsOn``, ``blockedBy``) never cost a query per item.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.background import wait_at_most
from api.graphql.context import PUBLIC, READERS, Context, access, is_public_only
from api.graphql.enums import (
    Audience,
    Confidence,
    IncidentKind,
    IncidentPhase,
    ObligationState,
    Phase,
    Severity,
    Status,
)
from api.graphql.errors import ApiError, Code, from_domain
from api.graphql.timeline import LIVE_RECHECK_SECONDS, TimelineConnection, timeline_page
from api.sql import asyncpg_named, asyncpg_sql, fetch_progress
from projections import cadence as cadence_view
from projections.runner import VIEWS_CHANNEL
from projections import incidents as incidents_view
from projections import intervals as intervals_view
from projections import obligations as obligations_view
from projections import services as services_view
from domain.errors import ValidationError
from domain.values import any_moment


@strawberry.type
class Eta:
    expected_at: datetime
    confidence: Confidence
    reason: str | None
    set_at: datetime


@strawberry.type(description="An ETA revision; expectedAt is null for a revision that cleared the ETA.")
class EtaRevision:
    expected_at: datetime | None
    confidence: Confidence | None
    reason: str | None
    set_at: datetime


@strawberry.type
class Workaround:
    id: strawberry.ID
    channel: str
    instructions: str
    contact: str | None
    audience: str
    published_at: datetime


@strawberry.type
class Service:
    id: strawberry.ID
    slug: str
    name: str
    category: str
    description: str | None
    resident_facing: bool
    tier: int | None
    owner: str | None
    status: Status
    phase: Phase | None
    status_since: datetime | None
    eta: Eta | None
    eta_slip_seconds: int | None
    workarounds: list[Workaround]
    residents_affected: int | None
    row: strawberry.Private[services_view.ServiceRow]
    # The catalogue fills these in as attributes: the dashboard asks every service for
    # blockedBy, and an attribute costs the executor far less than a resolver (see
    # plain_fields). A service that held its catalogue, for resolvers to look its neighbours
    # up in, made each request's services garbage only the cycle collector could free, which
    # cost more than these lists. The schema lists annotated fields first, in order: the
    # resolvers' annotations keep these two after them.
    eta_history: list[EtaRevision]
    downtime_seconds: int
    depends_on: list[Service] = strawberry.field(default_factory=list)
    blocked_by: list[Service] = strawberry.field(
        default_factory=list, description="Dependencies, direct or through others, that are not operational."
    )

    # Plain (not async) resolvers: the row is already loaded, and async leaves cost several
    # times more per item. Fields few queries ask for are resolvers, so a list of services
    # does not convert them for every service.
    @strawberry.field
    def eta_history(self) -> list[EtaRevision]:
        return [
            EtaRevision(expected_at=e.expected_at, confidence=Confidence(e.confidence) if e.confidence else None,
                        reason=e.reason, set_at=e.set_at)
            for e in self.row.eta_history
        ]

    @strawberry.field
    def downtime_seconds(self) -> int:
        return self.row.downtime_seconds_at(datetime.now(timezone.utc))

    @strawberry.field
    async def timeline(
        self, info: Info[Context, Any], first: int | None = None, after: str | None = None
    ) -> TimelineConnection:
        return await timeline_page(info, service_ids=[self.row.id], first=first, after=after)

    @classmethod
    def from_row(cls, row: services_view.ServiceRow) -> Service:
        return cls(
            id=strawberry.ID(str(row.id)),
            slug=row.slug,
            name=row.name,
            category=row.category,
            description=row.description,
            resident_facing=row.resident_facing,
            tier=row.tier,
            owner=row.owner,
            status=Status(row.status),
            phase=Phase(row.phase) if row.phase else None,
            status_since=row.status_since,
            eta=Eta(expected_at=row.eta.expected_at, confidence=Confidence(row.eta.confidence),
                    reason=row.eta.reason, set_at=row.eta.set_at)
            if row.eta and row.eta.expected_at
            else None,
            eta_slip_seconds=row.eta_slip_seconds,
            workarounds=[
                Workaround(id=strawberry.ID(w.id), channel=w.channel, instructions=w.instructions,
                           contact=w.contact, audience=w.audience, published_at=w.published_at)
                for w in row.workarounds
            ],
            residents_affected=row.residents_affected,
            row=row,
        )


class ServiceCatalogue:
    """Every service the caller may see, read once per request."""

    def __init__(self, rows: list[services_view.ServiceRow]) -> None:
        self.services = [Service.from_row(row) for row in rows]
        self.by_id = by_id = {service.row.id: service for service in self.services}
        blocked_by = services_view.blocked_by_map(rows)
        for service in self.services:
            service.depends_on = [by_id[d] for d in service.row.depends_on if d in by_id]
            service.blocked_by = [by_id[d] for d in blocked_by.get(service.row.id, []) if d in by_id]


async def service_catalogue(info: Info[Context, Any]) -> ServiceCatalogue:
    context = info.context
    if context.services is None:
        records = await context.runtime.pool.fetch(f"{services_view.SELECT_SERVICES} ORDER BY slug")
        rows = [services_view.service_from_record(record) for record in records]
        if is_public_only(info):
            rows = [row for row in rows if row.resident_facing]
        context.services = ServiceCatalogue(rows)
    return context.services


async def list_services(
    info: Info[Context, Any],
    status: Any | None = None,
    category: str | None = None,
    resident_facing: bool | None = None,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> list[Service]:
    access(info, PUBLIC)
    catalogue = await chosen_catalogue(info, as_of, known_at)
    return [
        service
        for service in catalogue.services
        if (status is None or service.status.value == status.value)
        and (category is None or service.category == category)
        and (resident_facing is None or service.resident_facing == resident_facing)
    ]


async def load_service(info: Info[Context, Any], service_id: UUID, *, missing_ok: bool = False) -> Service | None:
    """A service fresh from the view (after a write, the request's cached list may be stale)."""
    info.context.services = None
    catalogue = await service_catalogue(info)
    service = catalogue.by_id.get(service_id)
    if service is None and not missing_ok:
        raise ApiError(Code.NOT_FOUND, f"No service has the id {service_id}.")
    return service


async def chosen_catalogue(info: Info[Context, Any], as_of: datetime | None, known_at: datetime | None) -> ServiceCatalogue:
    if as_of is None and known_at is None:
        return await service_catalogue(info)
    catalogue = await services_at(info, as_of, known_at)
    info.context.services = catalogue  # nested dependsOn/blockedBy see the same moment
    return catalogue


async def find_service(
    info: Info[Context, Any], service_id: UUID | None, slug: str | None,
    as_of: datetime | None = None, known_at: datetime | None = None,
) -> Service:
    access(info, PUBLIC)
    if (service_id is None) == (slug is None):
        raise ApiError(Code.VALIDATION, "Give either id or slug.")
    catalogue = await chosen_catalogue(info, as_of, known_at)
    for service in catalogue.services:
        if service.row.id == service_id or service.slug == slug:
            return service
    raise ApiError(Code.NOT_FOUND, f"No service has the {'id' if service_id else 'slug'} {service_id or slug!r}.")


async def service_changes(info: Info[Context, Any], ids: list[UUID] | None) -> AsyncGenerator[Service, None]:
    """Each service (of ``ids``, or any) as it is now, then again after every change."""
    access(info, PUBLIC)
    runtime = info.context.runtime
    bell = runtime.listener.bell(VIEWS_CHANNEL)
    changed_since = f"{services_view.SELECT_SERVICES} WHERE last_changed_position > $1 " \
        "AND ($2::uuid[] IS NULL OR id = ANY($2)) AND (resident_facing OR NOT $3) ORDER BY last_changed_position"
    last = 0  # the first read sends every chosen service as it is now
    while True:
        ticket = bell.ticket()
        changed = [services_view.service_from_record(r) for r in
                   await runtime.pool.fetch(changed_since, last, ids, is_public_only(info))]
        if changed:
            info.context.services = None  # nested fields (blockedBy) see the catalogue as it is now
            catalogue = await service_catalogue(info)
            for row in changed:
                last = max(last, row.last_changed_position)
                yield catalogue.by_id.get(row.id) or Service.from_row(row)
        await wait_at_most(LIVE_RECHECK_SECONDS, ticket)


async def services_at(info: Info[Context, Any], as_of: datetime | None, known_at: datetime | None) -> ServiceCatalogue:
    """The catalogue as it stood at ``as_of`` (effective time), as known at ``known_at``.

    Registration details and dependencies are today's; status, phase, ETA and workarounds
    are those in force then, from the bitemporal intervals (not a replay of the log).
    """
    now = datetime.now(timezone.utc)
    try:
        parameters = intervals_view.state_at_parameters(any_moment("asOf", as_of) or now, any_moment("knownAt", known_at))
    except ValidationError as error:
        raise from_domain(error) from None
    query, arguments = asyncpg_named(intervals_view.STATE_AT_SQL, parameters)
    async with info.context.runtime.pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL jit = off")  # see intervals.state_at
        states = intervals_view.states_from_rows(map(tuple, await connection.fetch(query, *arguments)))
    current = {service.row.id: service.row for service in (await service_catalogue(info)).services}
    rows = []
    for state in states:
        today = current.get(state.service_id)
        if today is None:
            continue
        history = tuple(e for e in today.eta_history if e.set_at <= (as_of or now))
        eta = next((e for e in reversed(history) if e.expected_at == state.eta_expected_at), None)
        rows.append(replace(
            today, name=state.name, status=state.status, phase=state.phase, status_since=state.status_since,
            eta=eta if state.eta_expected_at else None, eta_slip_seconds=None, eta_history=history,
            workarounds=tuple(services_view.Workaround(w.id, w.channel, w.instructions, w.contact, w.audience,
                                                       w.published_at) for w in state.workarounds),
        ))
    return ServiceCatalogue(rows)


@strawberry.type
class Update:
    position: int
    audience: Audience
    message: str
    next_update_by: datetime | None
    occurred_at: datetime
    recorded_at: datetime
    service_ids: list[strawberry.ID]


@strawberry.type
class Obligation:
    regulator: str
    regime: str
    regime_title: str
    anchor_at: datetime | None
    due_at: datetime | None
    filed_at: datetime | None
    reference: str | None
    state: ObligationState
    decided_by: str | None
    decision_reason: str | None


@strawberry.type
class StatusCount:
    status: Status
    count: int


@strawberry.type
class CurvePoint:
    at: datetime
    restored: int
    total: int


@strawberry.type
class Progress:
    total: int
    restored: int
    percent_restored: float
    by_status: list[StatusCount]
    curve: list[CurvePoint]


@strawberry.type
class SilentService:
    service_id: strawberry.ID
    status: Status
    down_since: datetime
    without_eta_since: datetime
    without_eta_seconds: int


@strawberry.type(description="Is the public being kept informed?")
class Communication:
    last_public_update_at: datetime | None
    next_update_by: datetime | None
    overdue: bool
    overdue_seconds: int | None
    down_without_eta: list[SilentService]


@strawberry.type
class Incident:
    id: strawberry.ID
    title: str
    kind: IncidentKind
    severity: Severity
    phase: IncidentPhase
    detected_at: datetime
    aware_at: datetime | None
    declared_at: datetime
    closed_at: datetime | None
    summary: str | None
    residents_affected: int | None
    properties_affected: int | None
    row: strawberry.Private[incidents_view.IncidentRow]

    @strawberry.field
    async def services(self, info: Info[Context, Any]) -> list[Service]:
        catalogue = await service_catalogue(info)
        return [catalogue.by_id[s] for s in self.row.service_ids if s in catalogue.by_id]

    @strawberry.field(description="Public updates for everyone; internal ones too for token holders.")
    async def updates(self, info: Info[Context, Any]) -> list[Update]:
        public_only = is_public_only(info)
        query = incidents_view.SELECT_UPDATES + " WHERE incident_id = $1 AND (NOT $2 OR audience = 'PUBLIC') " \
            "ORDER BY occurred_at DESC, position DESC"
        records = await info.context.runtime.pool.fetch(query, self.row.id, public_only)
        return [
            Update(
                position=u.position, audience=Audience(u.audience), message=u.message,
                next_update_by=u.next_update_by, occurred_at=u.occurred_at, recorded_at=u.recorded_at,
                service_ids=[strawberry.ID(str(s)) for s in u.service_ids],
            )
            for u in map(incidents_view.update_from_record, records)
        ]

    @strawberry.field(description="Regulatory clocks (token holders only).")
    async def obligations(self, info: Info[Context, Any]) -> list[Obligation]:
        access(info, READERS)
        records = await info.context.runtime.pool.fetch(
            asyncpg_sql(obligations_view.SELECT_OBLIGATIONS), self.row.id, self.row.id
        )
        return [
            Obligation(
                regulator=o.regulator, regime=o.regime, regime_title=o.regime_title, anchor_at=o.anchor_at,
                due_at=o.due_at, filed_at=o.filed_at, reference=o.reference,
                state=ObligationState(o.state.value), decided_by=o.decided_by, decision_reason=o.decision_reason,
            )
            for o in obligations_view.obligations_from_rows(map(tuple, records), datetime.now(timezone.utc))
        ]

    @strawberry.field
    async def progress(self, info: Info[Context, Any]) -> Progress:
        read = await fetch_progress(info.context.runtime.pool, self.row.id)
        return Progress(
            total=read.total, restored=read.restored, percent_restored=read.percent_restored,
            by_status=[StatusCount(status=Status(c.status.value), count=c.count) for c in read.by_status],
            curve=[CurvePoint(at=p.at, restored=p.restored, total=p.total) for p in read.curve],
        )

    @strawberry.field
    async def communication(self, info: Info[Context, Any]) -> Communication:
        pool = info.context.runtime.pool
        incident = await pool.fetchrow(asyncpg_sql(cadence_view.SELECT_CADENCE_INCIDENT), self.row.id)
        silent = await pool.fetch(asyncpg_sql(cadence_view.SELECT_SILENT_SERVICES), self.row.id)
        read = cadence_view.cadence_from_rows(
            self.row.id, tuple(incident) if incident else None, map(tuple, silent), datetime.now(timezone.utc)
        )
        return Communication(
            last_public_update_at=read.last_public_update_at,
            next_update_by=read.next_update_by,
            overdue=read.overdue,
            overdue_seconds=int(read.overdue_by.total_seconds()) if read.overdue_by else None,
            down_without_eta=[
                SilentService(service_id=strawberry.ID(str(d.service_id)), status=Status(d.status.value),
                              down_since=d.down_since, without_eta_since=d.without_eta_since,
                              without_eta_seconds=int(d.without_eta_for.total_seconds()))
                for d in read.down_without_eta
            ],
        )

    @strawberry.field
    async def timeline(
        self, info: Info[Context, Any], first: int | None = None, after: str | None = None
    ) -> TimelineConnection:
        return await timeline_page(info, incident_id=strawberry.ID(str(self.row.id)), first=first, after=after)

    @classmethod
    def from_row(cls, row: incidents_view.IncidentRow) -> Incident:
        return cls(
            id=strawberry.ID(str(row.id)), title=row.title, kind=IncidentKind(row.kind),
            severity=Severity(row.severity), phase=IncidentPhase(row.phase), detected_at=row.detected_at,
            aware_at=row.aware_at, declared_at=row.declared_at, closed_at=row.closed_at, summary=row.summary,
            residents_affected=row.residents_affected, properties_affected=row.properties_affected, row=row,
        )


async def list_incidents(info: Info[Context, Any]) -> list[Incident]:
    access(info, PUBLIC)
    records = await info.context.runtime.pool.fetch(
        f"{incidents_view.SELECT_INCIDENTS} ORDER BY declared_at DESC, id"
    )
    return [Incident.from_row(incidents_view.incident_from_record(r)) for r in records]


async def load_incident(info: Info[Context, Any], incident_id: UUID) -> Incident:
    access(info, PUBLIC)
    record = await info.context.runtime.pool.fetchrow(f"{incidents_view.SELECT_INCIDENTS} WHERE id = $1", incident_id)
    if record is None:
        raise ApiError(Code.NOT_FOUND, f"No incident has the id {incident_id}.")
    return Incident.from_row(incidents_view.incident_from_record(record))
