"""Webhook outbox: the endpoints admins register, and one delivery per event and matching
endpoint, written in the same transaction as the dispatcher's position.

A dispatcher, not a view: its rows record work done outside the database (requests sent), so
it is never rebuilt; the runner applies each event to it exactly once. The sender
(``api/webhook_sender.py``) posts the deliveries; this module owns every table and statement
both of them, and the admin functions in ``api/webhooks.py``, use.

- ``webhook_endpoints``: configuration, not restoration facts, so not events: the signing
  secrets must never enter the immutable, exportable log. An endpoint receives the events
  after the log's head when it was created (``after_position``), filtered by kind, service
  and audience. Creating or deleting one locks the dispatcher's tracking row, so a batch is
  dispatched either wholly before or wholly after the change.
- ``webhook_messages``: the JSON body of every event at least one endpoint wants.
- ``webhook_deliveries``: one row per (endpoint, event) with its delivery log: attempts,
  last status code and error, a short prefix of the response, next attempt, when delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection, Cursor

from projections.base import Envelope, Projection
from projections.messages import Message, MessageComposer
from projections.runner import EventLog, create_tables

CHANNEL = "webhook_outbox"
"""NOTIFY channel: rung when deliveries are added, and when endpoints are created or deleted."""


def webhook_id(endpoint_id: UUID, position: int) -> str:
    """The ``webhook-id`` of an event's delivery to an endpoint: the same on every retry."""
    return f"msg_{endpoint_id.hex}_{position}"


@dataclass(frozen=True)
class EndpointFilter:
    kinds: frozenset[str]
    """Event kinds wanted; empty: every kind."""
    service_ids: frozenset[UUID]
    """Services wanted (an event about any of them); empty: events about anything."""
    public_only: bool
    after_position: int

    def matches(self, message: Message) -> bool:
        return (
            message.position > self.after_position
            and (not self.kinds or message.kind in self.kinds)
            and (not self.service_ids or not self.service_ids.isdisjoint(message.service_ids))
            and (message.public or not self.public_only)
        )


class WebhookOutbox(Projection):
    name = "webhook_outbox"
    rebuildable = False
    composer = MessageComposer("webhook")
    tables = ("webhook_endpoints", "webhook_messages", "webhook_deliveries", *composer.tables)

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS webhook_endpoints (
                id uuid PRIMARY KEY,
                url text NOT NULL,
                secret text NOT NULL,
                description text,
                kinds text[] NOT NULL,
                service_ids uuid[] NOT NULL,
                public_only boolean NOT NULL,
                after_position bigint NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                created_by text NOT NULL,
                disabled_at timestamptz,
                disabled_reason text,
                delivered bigint NOT NULL DEFAULT 0,
                failed bigint NOT NULL DEFAULT 0,
                last_status integer,
                last_attempt_at timestamptz,
                last_error text)""",
            """CREATE TABLE IF NOT EXISTS webhook_messages (
                position bigint PRIMARY KEY,
                kind text NOT NULL,
                body text NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS webhook_deliveries (
                endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
                position bigint NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz,
                last_attempt_at timestamptz,
                delivered_at timestamptz,
                status_code integer,
                last_error text,
                response_prefix text,
                PRIMARY KEY (endpoint_id, position))""",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (endpoint_id, position) "
            "WHERE delivered_at IS NULL",
            *self.composer.create_statements(),
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        messages = self.composer.compose(cursor, batch)
        cursor.execute(
            "SELECT id, kinds, service_ids, public_only, after_position FROM webhook_endpoints "
            "WHERE disabled_at IS NULL"
        )
        endpoints = [
            (row[0], EndpointFilter(frozenset(row[1]), frozenset(row[2]), row[3], row[4]))
            for row in cursor.fetchall()
        ]
        wanted: dict[int, Message] = {}
        deliveries = []
        for message in messages:
            for endpoint_id, wants in endpoints:
                if wants.matches(message):
                    wanted[message.position] = message
                    deliveries.append((endpoint_id, message.position))
        if not deliveries:
            return
        with cursor.copy("COPY webhook_messages (position, kind, body) FROM STDIN") as copy:
            for message in wanted.values():
                copy.write_row((message.position, message.kind, message.body))
        with cursor.copy("COPY webhook_deliveries (endpoint_id, position) FROM STDIN") as copy:
            for row in deliveries:
                copy.write_row(row)
        cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


# ---- administration (the API's createWebhook, deleteWebhook and webhooks) ------------------

@dataclass(frozen=True)
class Endpoint:
    """An endpoint as admins see it: everything but the secret, with delivery statistics."""

    id: UUID
    url: str
    description: str | None
    kinds: tuple[str, ...]
    service_ids: tuple[UUID, ...]
    public_only: bool
    after_position: int
    """It receives the events after this position (the log's head when it was created)."""
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    disabled_reason: str | None
    delivered: int
    failed: int
    """Failed attempts (each failed request counts; a delivery is retried until it succeeds)."""
    pending: int
    """Deliveries not yet acknowledged by the receiver."""
    last_status: int | None
    last_attempt_at: datetime | None
    last_error: str | None
    next_attempt_at: datetime | None
    """When the oldest pending delivery is next tried; None when it is due now or none is pending."""


_ENDPOINT_QUERY = """
    SELECT e.id, e.url, e.description, e.kinds, e.service_ids, e.public_only, e.after_position,
           e.created_at, e.created_by, e.disabled_at, e.disabled_reason, e.delivered, e.failed,
           (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.delivered_at IS NULL),
           e.last_status, e.last_attempt_at, e.last_error,
           (SELECT d.next_attempt_at FROM webhook_deliveries d WHERE d.endpoint_id = e.id
              AND d.delivered_at IS NULL ORDER BY d.position LIMIT 1)
    FROM webhook_endpoints e"""


def _endpoint(row: tuple[Any, ...]) -> Endpoint:
    return Endpoint(
        id=row[0], url=row[1], description=row[2], kinds=tuple(row[3]), service_ids=tuple(row[4]),
        public_only=row[5], after_position=row[6], created_at=row[7], created_by=row[8],
        disabled_at=row[9], disabled_reason=row[10], delivered=row[11], failed=row[12], pending=row[13],
        last_status=row[14], last_attempt_at=row[15], last_error=row[16], next_attempt_at=row[17],
    )


def ensure_tables(connection: Connection[Any]) -> None:
    """Create the tables unless a worker already has (no DDL on every admin call)."""
    outbox = WebhookOutbox()
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (outbox.tracking_table,))
        row = cursor.fetchone()
    if row is None or row[0] is None:
        create_tables(connection, outbox)


def _lock_dispatcher(cursor: Cursor[Any]) -> None:
    """Wait for a batch being dispatched to commit, and hold the next one off until we do."""
    cursor.execute(f"SELECT position FROM {WebhookOutbox().tracking_table} FOR UPDATE")


def add_endpoint(
    connection: Connection[Any],
    log_: EventLog,
    *,
    endpoint_id: UUID,
    url: str,
    secret: str,
    kinds: Sequence[str],
    service_ids: Sequence[UUID],
    public_only: bool,
    description: str | None,
    created_by: str,
) -> Endpoint:
    """Register an endpoint; it receives every matching event after the current head."""
    ensure_tables(connection)
    with connection.transaction(), connection.cursor() as cursor:
        _lock_dispatcher(cursor)
        cursor.execute(
            "INSERT INTO webhook_endpoints (id, url, secret, description, kinds, service_ids, public_only, "
            "after_position, created_by) VALUES (%s, %s, %s, %s, %s::text[], %s::uuid[], %s, %s, %s)",
            (endpoint_id, url, secret, description, sorted(set(kinds)), sorted(set(service_ids)),
             public_only, log_.head(cursor), created_by),
        )
        cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    found = find_endpoint(connection, endpoint_id)
    assert found is not None
    return found


def remove_endpoint(connection: Connection[Any], endpoint_id: UUID) -> bool:
    """Delete an endpoint and its delivery log; False if there was no such endpoint."""
    ensure_tables(connection)
    with connection.transaction(), connection.cursor() as cursor:
        _lock_dispatcher(cursor)
        cursor.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
        removed = cursor.rowcount > 0
        cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return removed


def list_endpoints(connection: Connection[Any]) -> list[Endpoint]:
    """Every endpoint, oldest first, with delivery statistics."""
    ensure_tables(connection)
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(_ENDPOINT_QUERY + " ORDER BY e.created_at, e.id")
        return [_endpoint(row) for row in cursor.fetchall()]


def find_endpoint(connection: Connection[Any], endpoint_id: UUID) -> Endpoint | None:
    ensure_tables(connection)
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(_ENDPOINT_QUERY + " WHERE e.id = %s", (endpoint_id,))
        row = cursor.fetchone()
    return _endpoint(row) if row else None


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one endpoint: an entry in the delivery log."""

    endpoint_id: UUID
    position: int
    kind: str
    webhook_id: str
    attempts: int
    status_code: int | None
    last_error: str | None
    response_prefix: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def delivery_log(
    connection: Connection[Any], endpoint_id: UUID, *, after: int = 0, first: int = 50
) -> list[Delivery]:
    """An endpoint's deliveries in position order, paged by position."""
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.position, m.kind, d.attempts, d.status_code, d.last_error, d.response_prefix, "
            "d.last_attempt_at, d.next_attempt_at, d.delivered_at FROM webhook_deliveries d "
            "JOIN webhook_messages m USING (position) WHERE d.endpoint_id = %s AND d.position > %s "
            "ORDER BY d.position LIMIT %s",
            (endpoint_id, after, first),
        )
        return [
            Delivery(endpoint_id, row[0], row[1], webhook_id(endpoint_id, row[0]), *row[2:])
            for row in cursor.fetchall()
        ]


# ---- sending (api/webhook_sender.py) ------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """An enabled endpoint, as the sender needs it."""

    id: UUID
    url: str
    secret: str


@dataclass(frozen=True)
class Pending:
    position: int
    attempts: int
    next_attempt_at: datetime | None
    body: str


@dataclass(frozen=True)
class Attempt:
    """The outcome of one request."""

    position: int
    at: datetime
    status_code: int | None
    error: str | None
    response_prefix: str | None


async def sendable_endpoints(connection: AsyncConnection[Any]) -> list[Target]:
    cursor = await connection.execute(
        "SELECT id, url, secret FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id"
    )
    return [Target(*row) for row in await cursor.fetchall()]


async def pending_deliveries(connection: AsyncConnection[Any], endpoint_id: UUID, limit: int) -> list[Pending]:
    """The endpoint's oldest deliveries not yet acknowledged, in position order."""
    cursor = await connection.execute(
        "SELECT d.position, d.attempts, d.next_attempt_at, m.body FROM webhook_deliveries d "
        "JOIN webhook_messages m USING (position) WHERE d.endpoint_id = %s AND d.delivered_at IS NULL "
        "ORDER BY d.position LIMIT %s",
        (endpoint_id, limit),
    )
    return [Pending(*row) for row in await cursor.fetchall()]


async def record_attempts(
    connection: AsyncConnection[Any],
    endpoint_id: UUID,
    delivered: Sequence[Attempt],
    failed: Attempt | None,
    *,
    retry_at: datetime | None,
    disable_reason: str | None = None,
) -> None:
    """Log a run of successful requests and the failed one that ended it, if any."""
    async with connection.transaction():
        done = 0
        if delivered:
            cursor = await connection.execute(
                "UPDATE webhook_deliveries d SET delivered_at = a.at, last_attempt_at = a.at, "
                "attempts = d.attempts + 1, status_code = a.status_code, last_error = NULL, "
                "response_prefix = a.response_prefix, next_attempt_at = NULL "
                "FROM unnest(%s::bigint[], %s::timestamptz[], %s::integer[], %s::text[]) "
                "AS a(position, at, status_code, response_prefix) "
                "WHERE d.endpoint_id = %s AND d.position = a.position AND d.delivered_at IS NULL",
                ([a.position for a in delivered], [a.at for a in delivered],
                 [a.status_code for a in delivered], [a.response_prefix for a in delivered], endpoint_id),
            )
            done = cursor.rowcount
        if failed is not None:
            await connection.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = %s, "
                "status_code = %s, last_error = %s, response_prefix = %s, next_attempt_at = %s "
                "WHERE endpoint_id = %s AND position = %s",
                (failed.at, failed.status_code, failed.error, failed.response_prefix, retry_at,
                 endpoint_id, failed.position),
            )
        last = failed or (delivered[-1] if delivered else None)
        if last is None:
            return
        await connection.execute(
            "UPDATE webhook_endpoints SET delivered = delivered + %s, failed = failed + %s, "
            "last_status = %s, last_attempt_at = %s, last_error = %s, "
            "disabled_at = CASE WHEN %s::text IS NULL THEN disabled_at ELSE %s END, "
            "disabled_reason = coalesce(%s, disabled_reason) WHERE id = %s",
            (done, 1 if failed else 0, last.status_code, last.at, last.error,
             disable_reason, last.at, disable_reason, endpoint_id),
        )
