"""GraphQL under load: the dashboard query beside a plain JSON route, and live-feed latency.

1. The dashboard query (every service with status, phase, ETA, workarounds, blockedBy) in
   requests/s and p99 with concurrent clients, beside `/bench/services.json` returning the
   same rows from the same table through plain FastAPI, same server, same run.
   Target: GraphQL ÷ plain ≥ 0.5.
2. Subscription delivery latency, commit → client, with 200 open `restorationEvents`
   subscriptions while operators write. Target p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

# The repo root replaces this folder on the path: bench/graphql.py must not shadow the graphql package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import psycopg  # noqa: E402
import websockets  # noqa: E402

from api.database import eventsourcing_env  # noqa: E402
from api.demo import load_demo  # noqa: E402
from api.tokens import Role, create_token  # noqa: E402
from bench.common import HttpRequest, Row, api_server, at_least, at_most, fresh_database, load, report  # noqa: E402
from domain.application import RestorationApp  # noqa: E402
from domain.values import Provenance, Status  # noqa: E402

DASHBOARD = """query Dashboard { services { id slug name status phase
  eta { expectedAt confidence } workarounds { channel instructions } blockedBy { id } } }"""
OPS = Provenance("bench@example.org")


def populate(app: RestorationApp, extra_services: int) -> list[object]:
    load_demo(app)
    ids = []
    statuses = list(Status)
    for n in range(extra_services):
        service = app.register_service(slug=f"system-{n}", name=f"System {n}", category="Systems",
                                       resident_facing=n % 3 == 0, provenance=OPS).id
        app.report_status(service, status=statuses[n % len(statuses)], phase="ASSESSING", provenance=OPS)
        app.publish_workaround(service, channel="Phone", instructions="Call the service desk.", provenance=OPS)
        ids.append(service)
    return ids


async def subscription_latency(address: str, token: str, app: RestorationApp, service: object,
                               subscribers: int, writes: int, rate: float) -> tuple[float, float, int]:
    after = app.head_position()
    committed: dict[int, float] = {}
    received: list[tuple[int, float]] = []
    ready = asyncio.Event()
    connected = 0

    async def subscriber() -> None:
        nonlocal connected
        async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"],
                                      max_queue=None) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            await ws.recv()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription($a: Int!) { restorationEvents(after: $a) { position } }",
                "variables": {"a": after}}}))
            connected += 1
            if connected == subscribers:
                ready.set()
            count = 0
            while count < writes:
                message = json.loads(await ws.recv())
                if message["type"] == "next":
                    received.append((message["payload"]["data"]["restorationEvents"]["position"], time.perf_counter()))
                    count += 1

    tasks = [asyncio.create_task(subscriber()) for _ in range(subscribers)]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.sleep(0.5)
    for n in range(writes):
        recorded = await asyncio.to_thread(app.report_status, service, status="DEGRADED_PERFORMANCE",
                                           note=f"bench {n}", provenance=OPS)
        committed[recorded.position] = time.perf_counter()
        await asyncio.sleep(1 / rate)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    delays = [(at - committed[position]) * 1000 for position, at in received if position in committed]
    quantiles = statistics.quantiles(delays, n=100)
    return quantiles[49], quantiles[98], len(delays)


def subscription_rows(subscribers: int, latency: tuple[float, float, int] | None) -> list[Row | tuple[str, float, str]]:
    if latency is None:  # --subscribers 0 or --writes 0: the dashboard ratio alone
        return []
    p50, p99, deliveries = latency
    return [
        (f"subscription latency p50 ({subscribers} subscribers)", p50, "ms"),
        Row("subscription latency p99", p99, "ms", target=at_most(100)),
        ("deliveries measured", deliveries, ""),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=100, help="services besides the demo's")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()
    with fresh_database() as url:
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            ids = populate(app, args.services)
            with psycopg.connect(url) as connection:
                _, token = create_token(connection, name="bench", role=Role.VIEWER)
            with api_server(url, app.head_position()) as address:
                body = json.dumps({"query": DASHBOARD}).encode()
                dashboard = HttpRequest("POST", "/graphql", {"authorization": f"Bearer {token}",
                                                             "content-type": "application/json"}, body)
                graphql = asyncio.run(load(address, dashboard, args.concurrency, args.seconds))
                plain = asyncio.run(load(address, HttpRequest("GET", "/bench/services.json"),
                                         args.concurrency, args.seconds))
                latency = asyncio.run(subscription_latency(
                    address, token, app, ids[0], args.subscribers, args.writes, rate=20)) \
                    if args.subscribers and args.writes else None
        finally:
            app.close()
    plain_rate = Row("plain FastAPI JSON route (baseline)", plain.per_second, "req/s")
    plain_p99 = Row("  p99", plain.p99_ms, "ms")
    report(
        f"GraphQL (bench/graphql.py): {args.services + 9} services, {args.concurrency} concurrent clients",
        [
            plain_rate,
            plain_p99,
            Row("GraphQL dashboard query", graphql.per_second, "req/s",
                baseline=plain_rate, target=at_least(0.5, ratio=True)),
            Row("  p99", graphql.p99_ms, "ms", baseline=plain_p99),
            *subscription_rows(args.subscribers, latency),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
