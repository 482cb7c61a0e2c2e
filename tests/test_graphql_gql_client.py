"""The live feed through an independent client library (gql, websockets transport)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from api.tokens import Role, create_token
from domain.application import RestorationApp
from domain.values import Provenance
from tests.graphql_support import served_over_tcp

FEED = gql("subscription($after: Int!) { restorationEvents(after: $after) { position kind } }")
OPS = Provenance("ops@example.org")


async def read_feed(address: str, token: str, after: int, count: int) -> list[int]:
    transport = WebsocketsTransport(
        url=f"ws://{address}/graphql",
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # graphql-transport-ws
    )
    positions: list[int] = []
    async with Client(transport=transport) as session:
        request = GraphQLRequest(FEED, variable_values={"after": after})
        async for result in session.subscribe(request):
            positions.append(result["restorationEvents"]["position"])
            if len(positions) == count:
                break
    return positions


async def write(app: RestorationApp, service: Any, notes: range) -> None:
    for n in notes:
        await asyncio.to_thread(app.report_status, service, status="MAJOR_OUTAGE", note=f"n{n}", provenance=OPS)


async def test_replay_live_disconnect_and_resume_with_the_last_position(app: RestorationApp, database_url: str) -> None:
    service = app.register_service(slug="email", name="Email", category="Systems", provenance=OPS).id
    await write(app, service, range(4))  # positions 1..5 exist before anyone subscribes
    with psycopg.connect(database_url) as connection:
        _, token = create_token(connection, name="ivr", role=Role.VIEWER)
    with served_over_tcp(app, database_url) as address:
        first = asyncio.create_task(read_feed(address, token, 0, 8))
        await asyncio.sleep(0.3)
        await write(app, service, range(4, 7))  # live: 6..8
        received = await asyncio.wait_for(first, 30)
        assert received == list(range(1, 9))

        await write(app, service, range(7, 12))  # missed while disconnected: 9..13
        resumed = await asyncio.wait_for(read_feed(address, token, received[-1], 5), 30)
        assert resumed == list(range(9, 14))
