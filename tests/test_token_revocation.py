"""A revoked token stops working at once: over HTTP, and on websockets already open with it."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import psycopg
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from typer.testing import CliRunner

from api.cli import cli
from api.tokens import Role, create_token
from domain.application import RestorationApp
from tests.graphql_support import Api, running_api

LIVE_EVENTS = "subscription($after: Int!) { restorationEvents(after: $after) { position } }"
WAIT_SECONDS = 20  # only how long a broken build may hang, never a threshold


def new_token(url: str, role: Role) -> tuple[UUID, str]:
    with psycopg.connect(url) as connection:
        info, secret = create_token(connection, name=f"revocation-test-{role.value}", role=role)
    return info.id, secret


async def revoke_on_the_command_line(url: str, token_id: UUID) -> None:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["token", "revoke", str(token_id)],
                                     env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"Revoked {token_id}" in result.output


async def init(ws: AsyncWebSocketSession, token: str) -> dict[str, Any]:
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    return await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)


async def close_code(ws: AsyncWebSocketSession) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)
    return closed.value.code


def graphql_ws(api: Api):  # type: ignore[no-untyped-def]
    return aconnect_ws("http://tracker/graphql", api.client, subprotocols=["graphql-transport-ws"])


async def test_revoking_closes_the_tokens_websockets_and_refuses_it_over_http(
    app: RestorationApp, database_url: str
) -> None:
    revoked_id, revoked = new_token(database_url, Role.OPERATOR)
    _, other = new_token(database_url, Role.VIEWER)
    async with running_api(app, database_url) as api:
        assert "errors" not in await api.gql("query { services { slug } }", token=revoked)
        async with graphql_ws(api) as doomed, graphql_ws(api) as unaffected:
            assert (await init(doomed, revoked))["type"] == "connection_ack"
            assert (await init(unaffected, other))["type"] == "connection_ack"
            for ws in (doomed, unaffected):
                await ws.send_json({"id": "1", "type": "subscribe",
                                    "payload": {"query": LIVE_EVENTS, "variables": {"after": 0}}})

            await revoke_on_the_command_line(database_url, revoked_id)

            assert await close_code(doomed) == 4403
            # The other token's socket is still open and answering.
            await unaffected.send_json({"type": "ping"})
            assert (await asyncio.wait_for(unaffected.receive_json(), WAIT_SECONDS))["type"] == "pong"

        refused = await api.gql("query { services { slug } }", token=revoked)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        async with graphql_ws(api) as again:
            await again.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {revoked}"}})
            assert await close_code(again) == 4403


class Connection:
    """Stands in for a websocket: records that it was closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close_revoked(self) -> None:
        self.closed.set()


async def test_a_revocation_while_a_websocket_authenticates_still_closes_it(
    app: RestorationApp, database_url: str
) -> None:
    """The lookup saw the token live, but the revocation's NOTIFY was handled before the
    connection was watched: the ticket taken before the lookup shows it, and it is closed."""
    token_id, _ = new_token(database_url, Role.VIEWER)
    async with running_api(app, database_url) as api:
        runtime = api.http_app.state.runtime
        await asyncio.wait_for(runtime.listener.connected.wait(), WAIT_SECONDS)
        revocations = runtime.revocations
        checked = revocations.checks
        ticket = revocations.ticket()  # as the handler takes it before looking the token up
        await revoke_on_the_command_line(database_url, token_id)
        for _ in range(WAIT_SECONDS * 100):  # until the NOTIFY was heard and acted on, without this one
            if revocations.checks > checked:
                break
            await asyncio.sleep(0.01)
        assert ticket.is_set()

        late = Connection()
        revocations.watch(token_id, late, ticket)
        await asyncio.wait_for(late.closed.wait(), WAIT_SECONDS)
