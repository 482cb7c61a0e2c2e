"""CORS: no cross-origin access unless configured, then exactly the configured origins."""

from __future__ import annotations

import httpx
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws

from api.config import Settings
from domain.application import RestorationApp
from tests.graphql_support import running_api

OPS_SITE = "https://ops.example.org"
OTHER_SITE = "https://elsewhere.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
QUERY = {"query": "query { services { slug } }"}


def test_origins_are_read_from_the_environment() -> None:
    assert Settings.from_env({}).cors_origins == ()
    configured = Settings.from_env({"RESTORATION_CORS_ORIGINS": f" {OPS_SITE} , http://localhost:5173,"})
    assert configured.cors_origins == (OPS_SITE, "http://localhost:5173")


async def websocket_accepted(client: httpx.AsyncClient, origin: str) -> bool:
    try:
        async with aconnect_ws("http://tracker/graphql", client, subprotocols=["graphql-transport-ws"],
                               headers={"Origin": origin}):
            return True
    except (WebSocketUpgradeError, WebSocketDisconnect):  # refused before the handshake completes
        return False


async def test_no_cross_origin_access_unless_configured(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url) as api:
        for origin in (OPS_SITE, OTHER_SITE):
            preflight = await api.client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
            assert "access-control-allow-origin" not in preflight.headers
            reply = await api.client.post("/graphql", json=QUERY, headers={"Origin": origin})
            assert reply.status_code == 200 and "access-control-allow-origin" not in reply.headers
            assert not await websocket_accepted(api.client, origin)
        assert await websocket_accepted(api.client, "http://tracker")  # the dashboard's own origin


async def test_configured_origins_and_only_those_may_call_from_a_browser(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url, cors_origins=(OPS_SITE,)) as api:
        preflight = await api.client.options("/graphql", headers={"Origin": OPS_SITE, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == OPS_SITE
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers  # tokens, never cookies
        reply = await api.client.post("/graphql", json=QUERY, headers={"Origin": OPS_SITE})
        assert reply.headers["access-control-allow-origin"] == OPS_SITE
        assert await websocket_accepted(api.client, OPS_SITE)

        refused = await api.client.options("/graphql", headers={"Origin": OTHER_SITE, **PREFLIGHT})
        assert "access-control-allow-origin" not in refused.headers
        reply = await api.client.post("/graphql", json=QUERY, headers={"Origin": OTHER_SITE})
        assert "access-control-allow-origin" not in reply.headers
        assert not await websocket_accepted(api.client, OTHER_SITE)
