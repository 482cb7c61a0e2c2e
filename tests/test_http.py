"""The HTTP application over a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from api.composition import Tracker, prepare_read_side
from api.config import Settings
from api.database import create_database, drop_database, eventsourcing_env, with_database
from api.http import create_app
from domain.application import RestorationApp
from domain.values import Provenance


@asynccontextmanager
async def serving(tracker: Tracker) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and a client that talks to it in this event loop."""
    application = create_app(tracker)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):  # a hang guard for busy machines
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as client:
            yield client


def tracker_for(app: RestorationApp, url: str) -> Tracker:
    prepare_read_side(url)  # as open_tracker does
    return Tracker(settings=Settings.from_env({}), database_url=url, app=app)


async def test_healthz_reports_the_head_position(app: RestorationApp, database_url: str) -> None:
    app.register_service(slug="email", name="Email", category="Systems", provenance=Provenance("ops"))
    async with serving(tracker_for(app, database_url)) as client:
        reply = await client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "version": "0.1.0", "headPosition": 1}


async def test_healthz_says_unavailable_when_the_store_is_gone(server_url: str) -> None:
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name)
    url = with_database(server_url, name)
    app = RestorationApp(env=eventsourcing_env(url, pool_size=1))
    try:
        async with serving(tracker_for(app, url)) as client:
            drop_database(server_url, name)  # terminates every connection to it
            reply = await client.get("/healthz")
    finally:
        app.close()
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "5"
    assert reply.json()["status"] == "unavailable"
