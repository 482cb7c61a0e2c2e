"""Failed authentications are limited per client address; valid tokens and anonymous readers
are not counted, and other addresses are not affected."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws

from api.throttle import FailedAuthentications, Throttled
from api.tokens import Role
from domain.application import RestorationApp
from tests.graphql_support import running_api

SERVICES = {"query": "query { services { slug } }"}
PER_MINUTE = 3
GUESSER = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(limiter: FailedAuthentications, address: str, failures: int) -> None:
    for _ in range(failures):
        limiter.check(address)
        limiter.failed(address)


def test_an_address_gets_its_failures_back_one_at_a_time() -> None:
    clock = Clock()
    limiter = FailedAuthentications(PER_MINUTE, clock=clock)
    spend(limiter, GUESSER, PER_MINUTE)
    with pytest.raises(Throttled) as throttled:
        limiter.check(GUESSER)
    assert throttled.value.retry_after == 60 // PER_MINUTE
    limiter.check("203.0.113.9")  # another address has its own allowance

    clock.now += 60 / PER_MINUTE
    spend(limiter, GUESSER, 1)
    with pytest.raises(Throttled):
        limiter.check(GUESSER)
    clock.now += 60
    spend(limiter, GUESSER, PER_MINUTE)  # refilled, and no more than full


def test_ipv6_clients_are_counted_by_their_64() -> None:
    limiter = FailedAuthentications(PER_MINUTE, clock=Clock())
    for host in range(PER_MINUTE):
        spend(limiter, f"2001:db8:0:1::{host + 1}", 1)
    with pytest.raises(Throttled):
        limiter.check("2001:db8:0:1:ffff::1")
    limiter.check("2001:db8:0:2::1")


def test_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = FailedAuthentications(PER_MINUTE, max_addresses=100, clock=clock)
    for n in range(1000):
        spend(limiter, f"10.0.{n // 256}.{n % 256}", 1)
    assert len(limiter) == 100
    clock.now += 60  # all refilled, so the same as not remembered
    spend(limiter, GUESSER, 1)
    assert len(limiter) == 1


async def post(client: httpx.AsyncClient, token: str | None = None, path: str = "/graphql") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path == "/graphql":
        return await client.post(path, json=SERVICES, headers=headers)
    return await client.get(path, headers=headers)


async def test_repeated_bad_tokens_from_one_address_get_429_and_nothing_else_does(
    app: RestorationApp, database_url: str
) -> None:
    async with running_api(app, database_url, auth_failures_per_minute=PER_MINUTE) as api:
        viewer, auditor = api.token(Role.VIEWER), api.token(Role.AUDITOR)
        async with api.client_at(GUESSER) as guesser, api.client_at("203.0.113.9") as neighbour:
            for _ in range(PER_MINUTE * 3):  # valid tokens never count
                assert "errors" not in (await post(guesser, viewer)).json()
            for attempt in range(PER_MINUTE):
                refused = (await post(guesser, f"rt_guess-{attempt}")).json()
                assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

            limited = await post(guesser, "rt_guess-again")
            assert limited.status_code == 429
            assert 0 < int(limited.headers["retry-after"]) <= 60 // PER_MINUTE  # less if time has passed
            assert limited.json()["data"] is None
            assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            # Until it has waited, any token from that address waits: it is checked before the lookup.
            assert (await post(guesser, viewer)).status_code == 429
            assert (await post(guesser, auditor, "/audit/events")).status_code == 429
            # Anonymous readers there, and everyone elsewhere, are not affected.
            anonymous = await post(guesser)
            assert anonymous.status_code == 200 and "errors" not in anonymous.json()
            assert "errors" not in (await post(neighbour, viewer)).json()
            assert (await post(neighbour, auditor, "/audit/events")).status_code == 200

            async with aconnect_ws("http://tracker/graphql", guesser, subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {viewer}"}})
                with pytest.raises(WebSocketDisconnect) as closed:
                    await asyncio.wait_for(ws.receive_json(), 20)
                assert closed.value.code == 4429
                assert "Too many failed authentications" in (closed.value.reason or "")


async def test_failed_websocket_authentications_count_too(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url, auth_failures_per_minute=PER_MINUTE) as api:
        async with api.client_at(GUESSER) as guesser:
            for attempt in range(PER_MINUTE):
                async with aconnect_ws("http://tracker/graphql", guesser, subprotocols=["graphql-transport-ws"]) as ws:
                    await ws.send_json({"type": "connection_init",
                                        "payload": {"Authorization": f"Bearer rt_guess-{attempt}"}})
                    with pytest.raises(WebSocketDisconnect) as closed:
                        await asyncio.wait_for(ws.receive_json(), 20)
                    assert closed.value.code == 4403
            assert (await post(guesser, api.token(Role.VIEWER))).status_code == 429
