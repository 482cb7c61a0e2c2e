"""Services and incidents as GraphQL types, read from the projections' tables.

Lists are read in one query per request and kept in the request's context, so nested
fields (``dependsOn``, ``blockedBy``) never cost a query per item.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.context import PUBLIC, Context, access, is_public_only
from api.graphql.enums import Confidence, Phase, Status
from api.graphql.errors import ApiError, Code
from api.graphql.timeline import TimelineConnection, timeline_page
from projections import services as services_view


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
    eta_history: list[EtaRevision]
    eta_slip_seconds: int | None
    workarounds: list[Workaround]
    residents_affected: int | None
    downtime_seconds: int
    row: strawberry.Private[services_view.ServiceRow]

    @strawberry.field
    async def depends_on(self, info: Info[Context, Any]) -> list[Service]:
        catalogue = await service_catalogue(info)
        return [catalogue.by_id[d] for d in self.row.depends_on if d in catalogue.by_id]

    @strawberry.field(description="Dependencies, direct or through others, that are not operational.")
    async def blocked_by(self, info: Info[Context, Any]) -> list[Service]:
        catalogue = await service_catalogue(info)
        return [catalogue.by_id[d] for d in catalogue.blocked_by.get(self.row.id, []) if d in catalogue.by_id]

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
            eta=Eta(row.eta.expected_at, Confidence(row.eta.confidence), row.eta.reason, row.eta.set_at)
            if row.eta and row.eta.expected_at
            else None,
            eta_history=[
                EtaRevision(e.expected_at, Confidence(e.confidence) if e.confidence else None, e.reason, e.set_at)
                for e in row.eta_history
            ],
            eta_slip_seconds=row.eta_slip_seconds,
            workarounds=[
                Workaround(strawberry.ID(w.id), w.channel, w.instructions, w.contact, w.audience, w.published_at)
                for w in row.workarounds
            ],
            residents_affected=row.residents_affected,
            downtime_seconds=row.downtime_seconds_at(datetime.now(timezone.utc)),
            row=row,
        )


class ServiceCatalogue:
    """Every service the caller may see, read once per request."""

    def __init__(self, rows: list[services_view.ServiceRow]) -> None:
        self.services = [Service.from_row(row) for row in rows]
        self.by_id = {service.row.id: service for service in self.services}
        self.blocked_by = services_view.blocked_by_map(rows)


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
) -> list[Service]:
    access(info, PUBLIC)
    catalogue = await service_catalogue(info)
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


async def find_service(info: Info[Context, Any], service_id: UUID | None, slug: str | None) -> Service:
    access(info, PUBLIC)
    if (service_id is None) == (slug is None):
        raise ApiError(Code.VALIDATION, "Give either id or slug.")
    catalogue = await service_catalogue(info)
    for service in catalogue.services:
        if service.row.id == service_id or service.slug == slug:
            return service
    raise ApiError(Code.NOT_FOUND, f"No service has the {'id' if service_id else 'slug'} {service_id or slug!r}.")


@strawberry.type
class Incident:
    id: strawberry.ID
    title: str


async def load_incident(info: Info[Context, Any], incident_id: UUID) -> Incident:
    raise ApiError(Code.NOT_FOUND, f"No incident has the id {incident_id}.")
