"""Mutations: each takes one ``input``, records facts through the application, and returns
only once the views have caught up, with the position of its last event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.context import WRITERS, Context, access, stored_but_unreadable
from api.graphql.enums import (
    Audience,
    Confidence,
    IncidentKind,
    Phase,
    Severity,
    Status,
)
from api.graphql import webhooks
from api.graphql.errors import ApiError, Code
from api.graphql.timeline import uuid_arg
from api.graphql.views import Incident, Service, load_incident, load_service
from api.outage import DATABASE_AWAY
from domain.application import Recorded
from domain.values import Provenance

T = TypeVar("T")


@strawberry.input
class Stamp:
    """Shared by every input: when the fact was true in the world, and why it is recorded."""

    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it was true in the world; defaults to now; may be back-dated."
    )
    reason: str | None = None


@strawberry.input
class DeclareIncidentInput(Stamp):
    title: str
    kind: IncidentKind
    severity: Severity
    summary: str | None = None
    detected_at: datetime | None = None


@strawberry.input
class RegisterServiceInput(Stamp):
    slug: str
    name: str
    category: str
    description: str | None = None
    resident_facing: bool = False
    tier: int | None = None
    owner: str | None = None


@strawberry.input
class DependencyInput(Stamp):
    service_id: strawberry.ID
    depends_on_id: strawberry.ID


@strawberry.input
class ReportStatusInput(Stamp):
    service_id: strawberry.ID
    status: Status | None = None
    phase: Phase | None = None
    note: str | None = None
    public_note: str | None = None
    incident_id: strawberry.ID | None = None


@strawberry.input
class SetEtaInput(Stamp):
    service_id: strawberry.ID
    expected_at: datetime
    confidence: Confidence


@strawberry.input
class ClearEtaInput(Stamp):
    service_id: strawberry.ID


@strawberry.input
class PublishWorkaroundInput(Stamp):
    service_id: strawberry.ID
    channel: str
    instructions: str
    contact: str | None = None
    audience: str | None = None


@strawberry.input
class WithdrawWorkaroundInput(Stamp):
    service_id: strawberry.ID
    workaround_id: strawberry.ID


@strawberry.input
class PostUpdateInput(Stamp):
    incident_id: strawberry.ID
    audience: Audience
    message: str
    service_ids: list[strawberry.ID] | None = None
    next_update_by: datetime | None = None


@strawberry.input
class RecordImpactInput(Stamp):
    incident_id: strawberry.ID
    residents_affected: int | None = None
    properties_affected: int | None = None
    service_id: strawberry.ID | None = None


@strawberry.input
class RecordAwarenessInput(Stamp):
    incident_id: strawberry.ID
    aware_at: datetime
    regimes: list[str]


@strawberry.input
class RecordRegulatorNotificationInput(Stamp):
    incident_id: strawberry.ID
    regime: str
    reference: str | None = None


@strawberry.input
class RecordNotificationDecisionInput(Stamp):
    incident_id: strawberry.ID
    regime: str
    required: bool


@strawberry.input
class CorrectEventInput(Stamp):
    position: int
    changes: JSON = strawberry.field(
        description='Fields of the corrected fact and their right values, e.g. {"status": "PARTIAL_OUTAGE"}.'
    )


@strawberry.input
class CloseIncidentInput(Stamp):
    incident_id: strawberry.ID
    summary: str | None = None


@strawberry.type
class ServicePayload:
    position: int | None
    service: Service


@strawberry.type
class IncidentPayload:
    position: int | None
    incident: Incident


@strawberry.type
class CorrectionPayload:
    position: int | None
    service: Service | None
    incident: Incident | None


def _value(choice: Any) -> Any:
    return choice.value if isinstance(choice, Enum) else choice


def _uuid(name: str, value: strawberry.ID) -> UUID:
    parsed = uuid_arg(name, value)
    assert parsed is not None
    return parsed


async def _record(info: Info[Context, Any], stamp: Stamp, command: Callable[..., Recorded], *args: Any, **kwargs: Any) -> Recorded:
    principal = access(info, WRITERS)
    assert principal is not None
    provenance = Provenance(principal.name, reason=stamp.reason, occurred_at=stamp.occurred_at)
    runtime = info.context.runtime
    recorded: Recorded = await runtime.command(command, *args, provenance=provenance, **kwargs)
    await runtime.wait_for_views(recorded.position)
    return recorded


async def _read_back(recorded: Recorded, read: Awaitable[T]) -> T:
    """What the change changed, read from the views; if the database has gone away since the
    change was stored, say where it is stored instead of failing as if nothing had happened."""
    try:
        return await read
    except DATABASE_AWAY:
        if recorded.position is None:  # nothing was stored: an outage like any other
            raise
        raise stored_but_unreadable(recorded.position) from None


async def _service_payload(info: Info[Context, Any], recorded: Recorded, service_id: UUID) -> ServicePayload:
    return ServicePayload(position=recorded.position, service=await _read_back(recorded, load_service(info, service_id)))


async def _incident_payload(info: Info[Context, Any], recorded: Recorded) -> IncidentPayload:
    return IncidentPayload(position=recorded.position, incident=await _read_back(recorded, load_incident(info, recorded.id)))


def _app(info: Info[Context, Any]) -> Any:
    return info.context.runtime.tracker.app


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def declare_incident(self, info: Info[Context, Any], input: DeclareIncidentInput) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).declare_incident, title=input.title, kind=_value(input.kind),
            severity=_value(input.severity), summary=input.summary, detected_at=input.detected_at,
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def register_service(self, info: Info[Context, Any], input: RegisterServiceInput) -> ServicePayload:
        recorded = await _record(
            info, input, _app(info).register_service, slug=input.slug, name=input.name,
            category=input.category, description=input.description,
            resident_facing=input.resident_facing, tier=input.tier, owner=input.owner,
        )
        return await _service_payload(info, recorded, recorded.id)

    @strawberry.mutation
    async def add_dependency(self, info: Info[Context, Any], input: DependencyInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).add_dependency, service_id,
            depends_on_id=_uuid("dependsOnId", input.depends_on_id),
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def remove_dependency(self, info: Info[Context, Any], input: DependencyInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).remove_dependency, service_id,
            depends_on_id=_uuid("dependsOnId", input.depends_on_id),
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def report_status(self, info: Info[Context, Any], input: ReportStatusInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).report_status, service_id, status=_value(input.status),
            phase=_value(input.phase), note=input.note, public_note=input.public_note,
            incident_id=uuid_arg("incidentId", input.incident_id),
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def set_eta(self, info: Info[Context, Any], input: SetEtaInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).set_eta, service_id, expected_at=input.expected_at,
            confidence=_value(input.confidence),
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def clear_eta(self, info: Info[Context, Any], input: ClearEtaInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(info, input, _app(info).clear_eta, service_id)
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def publish_workaround(self, info: Info[Context, Any], input: PublishWorkaroundInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).publish_workaround, service_id, channel=input.channel,
            instructions=input.instructions, contact=input.contact, audience=input.audience,
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def withdraw_workaround(self, info: Info[Context, Any], input: WithdrawWorkaroundInput) -> ServicePayload:
        service_id = _uuid("serviceId", input.service_id)
        recorded = await _record(
            info, input, _app(info).withdraw_workaround, service_id, workaround_id=str(input.workaround_id)
        )
        return await _service_payload(info, recorded, service_id)

    @strawberry.mutation
    async def post_update(self, info: Info[Context, Any], input: PostUpdateInput) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).post_update, _uuid("incidentId", input.incident_id),
            audience=_value(input.audience), message=input.message,
            service_ids=[_uuid("serviceIds", s) for s in input.service_ids or []],
            next_update_by=input.next_update_by,
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def record_impact(self, info: Info[Context, Any], input: RecordImpactInput) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).record_impact, _uuid("incidentId", input.incident_id),
            residents_affected=input.residents_affected, properties_affected=input.properties_affected,
            service_id=uuid_arg("serviceId", input.service_id),
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def record_awareness(self, info: Info[Context, Any], input: RecordAwarenessInput) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).record_awareness, _uuid("incidentId", input.incident_id),
            aware_at=input.aware_at, regimes=input.regimes,
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def record_regulator_notification(
        self, info: Info[Context, Any], input: RecordRegulatorNotificationInput
    ) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).record_regulator_notification, _uuid("incidentId", input.incident_id),
            regime=input.regime, reference=input.reference,
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def record_notification_decision(
        self, info: Info[Context, Any], input: RecordNotificationDecisionInput
    ) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).record_notification_decision, _uuid("incidentId", input.incident_id),
            regime=input.regime, required=input.required,
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation
    async def close_incident(self, info: Info[Context, Any], input: CloseIncidentInput) -> IncidentPayload:
        recorded = await _record(
            info, input, _app(info).close_incident, _uuid("incidentId", input.incident_id), summary=input.summary
        )
        return await _incident_payload(info, recorded)

    @strawberry.mutation(description="Admins: a signed webhook endpoint; its secret is shown only in this reply.")
    async def create_webhook(self, info: Info[Context, Any], input: webhooks.CreateWebhookInput) -> webhooks.CreateWebhookPayload:
        return await webhooks.create_webhook(info, input)

    @strawberry.mutation(description="Admins: stop delivering to an endpoint.")
    async def delete_webhook(self, info: Info[Context, Any], input: webhooks.DeleteWebhookInput) -> webhooks.DeleteWebhookPayload:
        return await webhooks.delete_webhook(info, input)

    @strawberry.mutation
    async def correct_event(self, info: Info[Context, Any], input: CorrectEventInput) -> CorrectionPayload:
        if not isinstance(input.changes, dict):
            raise ApiError(Code.VALIDATION, "changes must be an object of field names and values.")
        recorded = await _record(
            info, input, _app(info).correct_event, input.position, changes=_snake(input.changes)
        )
        service = await _read_back(recorded, load_service(info, recorded.id, missing_ok=True))
        incident = None if service else await _read_back(recorded, load_incident(info, recorded.id))
        return CorrectionPayload(position=recorded.position, service=service, incident=incident)


def _snake(changes: dict[str, Any]) -> dict[str, Any]:
    """GraphQL speaks camelCase and JSON has no times; the domain wants snake_case and datetimes."""
    converted = {}
    for key, value in changes.items():
        field = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        if field.endswith(("_at", "_by")) and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ApiError(Code.VALIDATION, f"{key} must be an ISO-8601 date and time; got {value!r}.") from None
        converted[field] = value
    return converted
