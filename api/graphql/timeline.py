"""Timeline entries and raw event records: queries, pagination by position, and the live feed."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON
from strawberry.types import Info

from api.background import wait_at_most
from api.graphql.context import AUDITORS, PUBLIC, Context, access, is_public_only
from api.graphql.errors import ApiError, Code
from projections.audit_chain import ChainReport, history_record, history_select, verify_chain

MAX_PAGE = 500
LIVE_RECHECK_SECONDS = 5.0


def page_size(first: int | None, default: int = 100) -> int:
    size = default if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise ApiError(Code.VALIDATION, f"first must be between 1 and {MAX_PAGE}; got {size}.")
    return size


def position_cursor(after: str | None) -> int:
    if after is None:
        return 0
    try:
        position = int(after)
    except ValueError:
        raise ApiError(Code.VALIDATION, f"after must be a position (a whole number); got {after!r}.") from None
    if position < 0:
        raise ApiError(Code.VALIDATION, "after cannot be negative.")
    return position


@strawberry.type
class TimelineEntry:
    position: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    reason: str | None
    kind: str
    summary: str
    service_id: strawberry.ID | None
    incident_id: strawberry.ID | None
    public: bool
    corrects: int | None
    corrected_by: int | None
    data: JSON

    @classmethod
    def from_row(cls, row: Any) -> TimelineEntry:
        return cls(
            position=row["position"],
            occurred_at=row["occurred_at"],
            recorded_at=row["recorded_at"],
            actor=row["actor"],
            reason=row["reason"],
            kind=row["kind"],
            summary=row["summary"],
            service_id=_id(row["service_id"]),
            incident_id=_id(row["incident_id"]),
            public=row["public"],
            corrects=row["corrects"],
            corrected_by=row["corrected_by"],
            data=json.loads(row["data"]) if isinstance(row["data"], str) else row["data"],
        )


def _id(value: UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class TimelineEdge:
    cursor: str
    node: TimelineEntry


@strawberry.type
class TimelineConnection:
    edges: list[TimelineEdge]
    page_info: PageInfo


TIMELINE_SQL = """
SELECT position, occurred_at, recorded_at, actor, reason, kind, summary, service_id, incident_id,
       public, corrects, corrected_by, data
FROM timeline
WHERE position > $1
  AND ($2::uuid IS NULL OR incident_id = $2)
  AND ($3::uuid[] IS NULL OR service_id = ANY($3))
  AND (NOT $4 OR public)
  AND ($5::text[] IS NULL OR kind = ANY($5))
ORDER BY position
LIMIT $6
"""


def uuid_arg(name: str, value: strawberry.ID | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise ApiError(Code.VALIDATION, f"{name} must be an id (a UUID); got {value!r}.") from None


async def timeline_page(
    info: Info[Context, Any],
    *,
    incident_id: strawberry.ID | None = None,
    service_ids: list[UUID] | None = None,
    public_only: bool = False,
    first: int | None = None,
    after: str | None = None,
) -> TimelineConnection:
    access(info, PUBLIC)
    size = page_size(first)
    rows = await info.context.runtime.pool.fetch(
        TIMELINE_SQL,
        position_cursor(after),
        uuid_arg("incidentId", incident_id),
        service_ids,
        public_only or is_public_only(info),
        None,
        size + 1,
    )
    entries = [TimelineEntry.from_row(row) for row in rows[:size]]
    return TimelineConnection(
        edges=[TimelineEdge(cursor=str(e.position), node=e) for e in entries],
        page_info=PageInfo(
            has_next_page=len(rows) > size,
            end_cursor=str(entries[-1].position) if entries else None,
        ),
    )


TAIL_SQL = """
SELECT position, occurred_at, recorded_at, actor, reason, kind, summary, service_id, incident_id,
       public, corrects, corrected_by, data
FROM timeline WHERE position > $1 ORDER BY position LIMIT $2
"""


def _wanted(
    entry: TimelineEntry, incident: str | None, services: list[str] | None, public_only: bool,
    kinds: list[str] | None,
) -> bool:
    return (
        (incident is None or entry.incident_id == incident)
        and (services is None or entry.service_id in services)
        and (not public_only or entry.public)
        and (kinds is None or entry.kind in kinds)
    )


async def restoration_events(
    info: Info[Context, Any],
    after: int = 0,
    service_ids: list[strawberry.ID] | None = None,
    incident_id: strawberry.ID | None = None,
    kinds: list[str] | None = None,
) -> AsyncGenerator[TimelineEntry, None]:
    """Everything after ``after``, then live, with no gap and no duplicate at the seam:
    both read by position, from the table while behind, then from the process's shared tail."""
    access(info, PUBLIC)
    runtime = info.context.runtime
    tail = runtime.tail
    last = position_cursor(str(after))
    services = [uuid_arg("serviceIds", s) for s in service_ids] if service_ids else None
    incident = uuid_arg("incidentId", incident_id)
    public_only = is_public_only(info)
    wanted_incident = str(incident) if incident else None
    wanted_services = [str(s) for s in services] if services else None
    while True:
        ticket = tail.grew.ticket()
        entries = tail.since(last)
        if entries is None:  # further back than the tail reaches: read the table
            rows = await runtime.pool.fetch(TIMELINE_SQL, last, incident, services, public_only, kinds, MAX_PAGE)
            for row in rows:
                last = row["position"]
                yield TimelineEntry.from_row(row)
            if not rows:  # nothing matching before the tail's reach: carry on from there
                last = max(last, tail.floor)
            continue
        for entry in entries:  # the tail's entries, shared by every subscriber
            last = entry.position
            if _wanted(entry, wanted_incident, wanted_services, public_only, kinds):
                yield entry
        await wait_at_most(LIVE_RECHECK_SECONDS, ticket)


@strawberry.type
class EventRecord:
    position: int
    originator_id: strawberry.ID
    version: int
    type: str
    occurred_at: datetime | None
    recorded_at: datetime
    actor: str | None
    payload: JSON
    hash: str | None
    previous_hash: str | None


async def event_records(info: Info[Context, Any], after: int, first: int | None) -> list[EventRecord]:
    access(info, AUDITORS)
    runtime = info.context.runtime
    app = runtime.tracker.app
    query = history_select(app.recorder.events_table_name) + (  # type: ignore[attr-defined]
        " WHERE e.notification_id > $1 ORDER BY e.notification_id LIMIT $2"
    )
    rows = await runtime.pool.fetch(query, position_cursor(str(after)), page_size(first))
    records = []
    for row in rows:
        record = history_record(tuple(row))
        records.append(
            EventRecord(
                position=record["position"],
                originator_id=strawberry.ID(record["originatorId"]),
                version=record["version"],
                type=record["type"],
                occurred_at=record["occurredAt"] and datetime.fromisoformat(record["occurredAt"]),
                recorded_at=datetime.fromisoformat(record["recordedAt"]),
                actor=record["actor"],
                payload=record["payload"],
                hash=record["hash"],
                previous_hash=record["previousHash"],
            )
        )
    return records


@strawberry.type(description="Is the history intact? Recomputed from the event table on request.")
class AuditReport:
    intact: bool
    head: int
    sealed_head: int
    verified_up_to: int
    unsealed: int
    checkpoints_verified: int
    first_bad_position: int | None
    problem: str | None
    detail: str | None


async def audit_report(info: Info[Context, Any]) -> AuditReport:
    access(info, AUDITORS)
    runtime = info.context.runtime

    def verify() -> ChainReport:
        with psycopg.connect(runtime.tracker.database_url, autocommit=True) as connection:
            return verify_chain(connection, runtime.tracker.app.recorder.events_table_name)  # type: ignore[attr-defined]

    report = await run_in_threadpool(verify)
    return AuditReport(
        intact=report.intact,
        head=report.head,
        sealed_head=report.sealed_head,
        verified_up_to=report.verified_up_to,
        unsealed=report.unsealed,
        checkpoints_verified=report.checkpoints_verified,
        first_bad_position=report.problem.position if report.problem else None,
        problem=report.problem.reason if report.problem else None,
        detail=report.problem.detail if report.problem else None,
    )
