"""Webhook endpoints for admins: create (the secret is shown once), delete, list with statistics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import strawberry
from strawberry.types import Info

from api import webhooks
from api.composition import event_log
from api.graphql.context import ADMINS, Context, access
from api.graphql.timeline import uuid_arg
from projections.webhook_outbox import Endpoint

T = TypeVar("T")


@strawberry.type
class Webhook:
    id: strawberry.ID
    url: str
    description: str | None
    kinds: list[str]
    service_ids: list[strawberry.ID]
    public_only: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    disabled_reason: str | None
    delivered: int
    failed_attempts: int
    pending: int
    last_status: int | None
    last_attempt_at: datetime | None
    last_error: str | None
    next_attempt_at: datetime | None

    @classmethod
    def from_endpoint(cls, e: Endpoint) -> Webhook:
        return cls(
            id=strawberry.ID(str(e.id)), url=e.url, description=e.description, kinds=list(e.kinds),
            service_ids=[strawberry.ID(str(s)) for s in e.service_ids], public_only=e.public_only,
            created_at=e.created_at, created_by=e.created_by, disabled_at=e.disabled_at,
            disabled_reason=e.disabled_reason, delivered=e.delivered, failed_attempts=e.failed,
            pending=e.pending, last_status=e.last_status, last_attempt_at=e.last_attempt_at,
            last_error=e.last_error, next_attempt_at=e.next_attempt_at,
        )


@strawberry.input
class CreateWebhookInput:
    url: str
    kinds: list[str] | None = None
    service_ids: list[strawberry.ID] | None = None
    public_only: bool = False
    description: str | None = None


@strawberry.type
class CreateWebhookPayload:
    webhook: Webhook
    secret: str = strawberry.field(description="The signing secret (Standard Webhooks). Shown only now.")


@strawberry.input
class DeleteWebhookInput:
    id: strawberry.ID


@strawberry.type
class DeleteWebhookPayload:
    id: strawberry.ID


async def _with_connection(info: Info[Context, Any], work: Callable[[psycopg.Connection[Any]], T]) -> T:
    runtime = info.context.runtime

    def run() -> T:
        with psycopg.connect(runtime.tracker.database_url) as connection:
            return work(connection)

    return await runtime.command(run)


async def create_webhook(info: Info[Context, Any], input: CreateWebhookInput) -> CreateWebhookPayload:
    principal = access(info, ADMINS)
    assert principal is not None
    services = [uuid_arg("serviceIds", s) for s in input.service_ids or []]
    created = await _with_connection(info, lambda connection: webhooks.create_webhook(
        connection, event_log(info.context.runtime.tracker.app), url=input.url, actor=principal.name,
        kinds=input.kinds or (), service_ids=[s for s in services if s], public_only=input.public_only,
        description=input.description,
    ))
    return CreateWebhookPayload(webhook=Webhook.from_endpoint(created.endpoint), secret=created.secret)


async def delete_webhook(info: Info[Context, Any], input: DeleteWebhookInput) -> DeleteWebhookPayload:
    access(info, ADMINS)
    webhook_id = uuid_arg("id", input.id)
    assert isinstance(webhook_id, UUID)
    await _with_connection(info, lambda connection: webhooks.delete_webhook(connection, webhook_id))
    return DeleteWebhookPayload(id=input.id)


async def list_webhooks(info: Info[Context, Any]) -> list[Webhook]:
    access(info, ADMINS)
    endpoints = await _with_connection(info, webhooks.list_webhooks)
    return [Webhook.from_endpoint(e) for e in endpoints]
