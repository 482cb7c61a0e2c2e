"""``GET /audit/events``: NDJSON pages of the sealed history, for auditors only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import psycopg
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request

from api.audit_http import audit_router
from api.demo import load_demo
from domain.application import RestorationApp
from projections.audit_chain import AuditChain
from projections.runner import catch_up, create_tables
from tests.projection_support import log_of

AUDITOR = {"Authorization": "Bearer auditor"}


@asynccontextmanager
async def serving(app: RestorationApp, url: str) -> AsyncIterator[httpx.AsyncClient]:
    @asynccontextmanager
    async def lifespan(web: FastAPI) -> AsyncIterator[None]:
        web.state.read_pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        yield
        await web.state.read_pool.close()

    async def authorize(request: Request) -> bool:
        return request.headers.get("authorization") == AUDITOR["Authorization"]

    web = FastAPI(lifespan=lifespan)
    web.include_router(audit_router(
        authorize=authorize, pool=lambda request: request.app.state.read_pool,
        events_table=app.recorder.events_table_name,  # type: ignore[attr-defined]
    ))
    async with LifespanManager(web, startup_timeout=60, shutdown_timeout=60):  # a hang guard for busy machines
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://tracker") as client:
            yield client


def sealed(app: RestorationApp, url: str) -> None:
    load_demo(app)
    with psycopg.connect(url) as connection:
        create_tables(connection, AuditChain())
        catch_up(connection, log_of(app), AuditChain())


async def test_auditors_page_through_the_history_by_position(app: RestorationApp, database_url: str) -> None:
    sealed(app, database_url)
    async with serving(app, database_url) as client:
        first = await client.get("/audit/events", params={"limit": 50}, headers=AUDITOR)
        rest = await client.get("/audit/events", params={"after": 50, "limit": 1000}, headers=AUDITOR)
        beyond = await client.get("/audit/events", params={"after": 84}, headers=AUDITOR)
    assert first.status_code == 200 and first.headers["content-type"] == "application/x-ndjson"
    records = [json.loads(line) for line in (first.text + rest.text).splitlines()]
    assert [r["position"] for r in records] == list(range(1, 85))
    assert all(r["previousHash"] == before["hash"] for before, r in zip(records, records[1:]))
    assert records[0]["type"] == "Service.Registered" and records[0]["payload"]["slug"] == "email"
    assert beyond.status_code == 200 and beyond.text == ""


async def test_only_auditors_may_read_it(app: RestorationApp, database_url: str) -> None:
    sealed(app, database_url)
    async with serving(app, database_url) as client:
        anonymous = await client.get("/audit/events")
        viewer = await client.get("/audit/events", headers={"Authorization": "Bearer viewer"})
        too_many = await client.get("/audit/events", params={"limit": 10_001}, headers=AUDITOR)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert viewer.status_code == 403
    assert too_many.status_code == 422
