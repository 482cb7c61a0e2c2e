"""``GET /audit/events``: the sealed history for auditors, as NDJSON, paged by position."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.audit import json_line
from projections.audit_chain import history_record, history_select

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
CHUNK = 500
"""Rows fetched and encoded at a time; decoding runs in a thread so the event loop stays free."""


def audit_router(
    *,
    authorize: Callable[[Request], Awaitable[bool]],
    pool: Callable[[Request], asyncpg.Pool],
    events_table: str,
) -> APIRouter:
    """The router; mount it with ``app.include_router(audit_router(...))``.

    ``authorize(request)`` says whether the request carries an auditor's credential;
    ``pool(request)`` gives the asyncpg pool to read with (e.g. ``request.app.state.read_pool``);
    ``events_table`` is the recorder's ``events_table_name``.
    """
    router = APIRouter(tags=["audit"])
    query = history_select(events_table) + " WHERE e.notification_id > $1 ORDER BY e.notification_id LIMIT $2"

    def encode(rows: list[Any]) -> bytes:
        return b"".join(json_line(history_record(row)) for row in rows)

    @router.get(
        "/audit/events",
        summary="The event history with its hash chain, as NDJSON (auditors only).",
        description=(
            "One JSON object per line, in position order: position, originatorId, version, type, "
            "occurredAt, recordedAt, actor, reason, payload, hash, previousHash. Page on with "
            "`after` = the last position received; an empty body means you are up to date."
        ),
        response_class=StreamingResponse,
    )
    async def events(
        request: Request,
        after: int = Query(0, ge=0, description="Only events after this position."),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many events."),
    ) -> Any:
        if not await authorize(request):
            if "authorization" not in request.headers:
                return JSONResponse({"detail": "An auditor's bearer token is required."}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return JSONResponse({"detail": "This token may not read the audit history; an auditor's token may."},
                                status_code=403)
        database = pool(request)

        async def lines() -> AsyncIterator[bytes]:
            async with database.acquire() as connection, connection.transaction():
                cursor = await connection.cursor(query, after, limit)
                while rows := await cursor.fetch(CHUNK):
                    yield await run_in_threadpool(encode, rows)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return router
