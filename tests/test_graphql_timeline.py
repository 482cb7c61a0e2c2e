"""GraphQL over real HTTP and websockets: timeline, events, roles, live subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx_ws import aconnect_ws

from api.demo import load_demo
from api.tokens import Role
from domain.application import RestorationApp
from domain.values import Provenance
from tests.graphql_support import Api, caught_up, running_api

TIMELINE = """query($first: Int, $after: String, $publicOnly: Boolean) {
  timeline(first: $first, after: $after, publicOnly: $publicOnly) {
    edges { cursor node { position kind summary public actor occurredAt recordedAt } }
    pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def demo(app: RestorationApp) -> RestorationApp:
    load_demo(app)
    return app


async def test_the_timeline_pages_by_position(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        seen: list[int] = []
        after = None
        while True:
            data = await api.ok(TIMELINE, {"first": 25, "after": after}, role=Role.VIEWER)
            page = data["timeline"]
            seen += [edge["node"]["position"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == list(range(1, api.app.head_position() + 1))


async def test_anonymous_readers_see_only_public_entries(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        anonymous = await api.ok(TIMELINE, {"first": 500}, role=None)
        viewer = await api.ok(TIMELINE, {"first": 500}, role=Role.VIEWER)
        public = [e["node"] for e in anonymous["timeline"]["edges"]]
        everything = [e["node"] for e in viewer["timeline"]["edges"]]
        assert public and all(entry["public"] for entry in public)
        assert len(everything) > len(public)
        assert not any(e["kind"] == "RegulatorNotified" for e in public)


async def test_page_size_and_cursor_are_checked(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        result = await api.gql(TIMELINE, {"first": 501}, role=Role.VIEWER)
        assert result["errors"][0]["extensions"]["code"] == "VALIDATION"
        assert "between 1 and 500" in result["errors"][0]["message"]
        result = await api.gql(TIMELINE, {"after": "yesterday"}, role=Role.VIEWER)
        assert result["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_events_are_for_auditors_only(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        query = "query { events(after: 0, first: 3) { position type actor occurredAt recordedAt payload } }"
        for role in (None, Role.VIEWER, Role.OPERATOR):
            result = await api.gql(query, role=role)
            expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
            assert result["errors"][0]["extensions"]["code"] == expected
        data = await api.ok(query, role=Role.AUDITOR)
        assert [e["position"] for e in data["events"]] == [1, 2, 3]
        assert data["events"][0]["type"] == "Service.Registered"
        assert data["events"][0]["payload"]["slug"] == "email"


async def test_a_bad_or_revoked_token_is_unauthenticated(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        result = await api.gql(TIMELINE, token="rt_not-a-real-token")
        assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def subscribe(api: Api, query: str, variables: dict[str, Any], count: int, token: str | None = None) -> list[dict[str, Any]]:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    received: list[dict[str, Any]] = []
    async with aconnect_ws("http://tracker/graphql", api.client, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})
        while len(received) < count:
            message = await asyncio.wait_for(ws.receive_json(), 20)
            assert message["type"] == "next", message
            received.append(message["payload"]["data"])
    return received


async def report_live(app: RestorationApp, count: int, *, after_seconds: float) -> None:
    """Once subscribers have had time to open: ``count`` status reports on email, one by one."""
    await asyncio.sleep(after_seconds)
    email = app.service_by_slug("email").id
    for n in range(count):
        await asyncio.to_thread(app.report_status, email, status="DEGRADED_PERFORMANCE", note=f"live {n}",
                                provenance=Provenance("ops"))


async def test_a_subscription_replays_then_goes_live_without_gap_or_duplicate(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        head = api.app.head_position()
        query = "subscription($after: Int!) { restorationEvents(after: $after) { position kind } }"
        writer = asyncio.create_task(report_live(api.app, 5, after_seconds=0.2))
        received = await subscribe(api, query, {"after": head - 10}, 15, token=api.token(Role.VIEWER))
        await writer
        positions = [r["restorationEvents"]["position"] for r in received]
        assert positions == list(range(head - 9, head + 6))


async def test_live_subscribers_asking_differently_get_their_own_answers(demo: RestorationApp, database_url: str) -> None:
    """Subscribers asking the same of an event share one execution of it; those whose
    selection differs (here only by a variable inside it) or who start elsewhere must not."""
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        head = api.app.head_position()
        query = """subscription($after: Int!, $withSummary: Boolean!) {
          restorationEvents(after: $after) { position kind summary @include(if: $withSummary) } }"""
        token = api.token(Role.VIEWER)
        writer = asyncio.create_task(report_live(demo, 3, after_seconds=0.5))
        with_summary, without_summary, from_further_back, also_with_summary = await asyncio.gather(
            subscribe(api, query, {"after": head, "withSummary": True}, 3, token=token),
            subscribe(api, query, {"after": head, "withSummary": False}, 3, token=token),
            subscribe(api, query, {"after": head - 2, "withSummary": False}, 5, token=token),
            subscribe(api, query, {"after": head, "withSummary": True}, 3, token=token),
        )
        await writer
        live = list(range(head + 1, head + 4))
        assert [r["restorationEvents"]["position"] for r in with_summary] == live
        assert all(r["restorationEvents"]["summary"] for r in with_summary)
        assert also_with_summary == with_summary
        assert all(set(r["restorationEvents"]) == {"position", "kind"} for r in without_summary)
        assert [r["restorationEvents"]["position"] for r in without_summary] == live
        assert [r["restorationEvents"]["position"] for r in from_further_back] == list(range(head - 1, head + 4))
        assert from_further_back[2:] == without_summary


async def test_service_changed_sends_the_state_then_each_change(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        email = demo.service_by_slug("email").id
        website = demo.service_by_slug("website").id
        query = "subscription($ids: [ID!]) { serviceChanged(ids: $ids) { slug status blockedBy { slug } } }"
        seen: list[tuple[str, str]] = []
        async with aconnect_ws("http://tracker/graphql", api.client, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init",
                                "payload": {"Authorization": f"Bearer {api.token(Role.VIEWER)}"}})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query,
                                                                            "variables": {"ids": [str(email)]}}})

            async def next_change() -> None:
                message = await asyncio.wait_for(ws.receive_json(), 20)
                assert message["type"] == "next", message
                change = message["payload"]["data"]["serviceChanged"]
                seen.append((change["slug"], change["status"]))

            await next_change()  # as it is now
            # A state feed may fold changes that land in one view update, so wait for each.
            for service, status in ((website, "MAJOR_OUTAGE"), (email, "DEGRADED_PERFORMANCE")):
                await asyncio.to_thread(demo.report_status, service, status=status, provenance=Provenance("ops"))
            await next_change()
            await asyncio.to_thread(demo.report_status, email, status="OPERATIONAL", provenance=Provenance("ops"))
            await next_change()
        assert seen == [("email", "OPERATIONAL"), ("email", "DEGRADED_PERFORMANCE"), ("email", "OPERATIONAL")]
