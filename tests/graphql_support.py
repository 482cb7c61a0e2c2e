"""The API under test: the real app, its lifespan, a projection worker, and real tokens."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
import asyncio
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI
from httpx_ws.transport import ASGIWebSocketTransport

from api.composition import Tracker, prepare_read_side, projections_running
from api.config import Settings
from api.http import create_app
from api.tokens import Role, create_token
from domain.application import RestorationApp
from projections.catalog import all_projections


@dataclass
class Api:
    client: httpx.AsyncClient
    app: RestorationApp
    url: str
    http_app: FastAPI
    tokens: dict[Role, str] = field(default_factory=dict)

    def token(self, role: Role) -> str:
        if role not in self.tokens:
            self.tokens[role] = issued_token(self.url, role)
        return self.tokens[role]

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, role: Role | None = None,
                  token: str | None = None) -> dict[str, Any]:
        headers = {}
        if role is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.token(role)}"  # type: ignore[arg-type]
        reply = await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        assert reply.status_code == 200, reply.text
        return reply.json()

    async def ok(self, query: str, variables: dict[str, Any] | None = None, *, role: Role | None = Role.OPERATOR) -> dict[str, Any]:
        result = await self.gql(query, variables, role=role)
        assert "errors" not in result, result["errors"]
        return result["data"]

    @asynccontextmanager
    async def client_at(self, address: str) -> AsyncIterator[httpx.AsyncClient]:
        """Another client of the same app, connecting from ``address``."""
        transport = ASGIWebSocketTransport(app=self.http_app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as client:
            yield client


def issued_token(url: str, role: Role) -> str:
    """A new API token for ``role``, as an admin would issue it."""
    with psycopg.connect(url) as connection:
        _, token = create_token(connection, name=f"test-{role.value}", role=role)
    return token


def tracker_for(app: RestorationApp, url: str, *, environment: str = "test", **settings: Any) -> Tracker:
    """The tracker as ``open_tracker`` builds it, with ``settings`` (Settings fields) changed."""
    prepare_read_side(url)
    base = Settings(database_url=url, data_dir=Settings.from_env({}).data_dir, environment=environment, pool_size=5)
    return Tracker(settings=replace(base, **settings), database_url=url, app=app)


@asynccontextmanager
async def running_api(app: RestorationApp, url: str, *, environment: str = "test", **settings: Any) -> AsyncIterator[Api]:
    tracker = tracker_for(app, url, environment=environment, **settings)
    http_app = create_app(tracker)
    with projections_running(tracker):
        # The lifespan itself, not asgi-lifespan's manager: pytest-asyncio may finish a
        # fixture in another task, which anyio's cancel scopes do not allow.
        async with http_app.router.lifespan_context(http_app):
            transport = ASGIWebSocketTransport(app=http_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as client:
                yield Api(client=client, app=app, url=url, http_app=http_app)


async def caught_up(api: Api) -> None:
    """Wait until every view has applied every event written so far."""
    assert await asyncio.to_thread(views_reach, api.url, api.app.head_position()), "the views did not catch up"


def views_reach(url: str, position: int) -> bool:
    """Whether every view applies the events up to ``position`` within 20 seconds."""
    sql = " UNION ALL ".join(f"SELECT position FROM {p.tracking_table}" for p in all_projections())
    for _ in range(1000):
        with psycopg.connect(url) as connection:
            if min(row[0] for row in connection.execute(sql)) >= position:
                return True
        time.sleep(0.02)
    return False


@contextmanager
def served_over_tcp(app: RestorationApp, url: str, *, log_level: str = "warning", **settings: Any) -> Iterator[str]:
    """The API under uvicorn on a loopback port, in a thread: for clients that need a socket.
    uvicorn's loggers (access log included) propagate to the root logger, so caplog sees them."""
    tracker = tracker_for(app, url, **settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(tracker), host="127.0.0.1", port=port, log_level=log_level,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    with projections_running(tracker):
        thread.start()
        try:
            for _ in range(500):
                if server.started:
                    break
                time.sleep(0.02)
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
