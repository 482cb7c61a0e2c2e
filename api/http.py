"""The HTTP application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.composition import Tracker, open_read_pool

VERSION = "0.1.0"
HEALTH_TIMEOUT_SECONDS = 2.0


def create_app(tracker: Tracker) -> FastAPI:
    events_table = tracker.app.recorder.events_table_name

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.read_pool = await open_read_pool(tracker.database_url, size=tracker.settings.pool_size)
        try:
            yield
        finally:
            await app.state.read_pool.close()

    app = FastAPI(
        title="Restoration Tracker",
        version=VERSION,
        description="The system of record for recovering from a cyber attack or major outage.",
        lifespan=lifespan,
    )

    @app.get("/healthz", summary="Is the tracker up and its event store reachable?")
    async def healthz(request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                async with request.app.state.read_pool.acquire() as connection:
                    head = await connection.fetchval(
                        f"SELECT coalesce(max(notification_id), 0) FROM {events_table}"
                    )
        except Exception as error:  # unreachable, timed out, or failing: not healthy
            return JSONResponse(
                {"status": "unavailable", "detail": f"event store unreachable ({type(error).__name__})"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ok", "version": VERSION, "headPosition": head})

    return app
