"""Soak: a minute of mixed reads, writes and live subscriptions against one API server, to show
that it keeps up without errors and without leaking memory.

The API (bench/server.py, projections in-process) serves all of these at once for --seconds
(default 60), measured after --warm-up seconds (default 5) of the same:

- readers: the dashboard query (bench/graphql.py's) and a page of one service's timeline,
  each on --readers keep-alive connections, back to back;
- writers: an operator's reportStatus, setEta, publishWorkaround and withdrawWorkaround through
  /graphql on --writers connections, each on a service of its own so that they never conflict
  (withdrawing every workaround it publishes keeps the dashboard the same size throughout);
- --subscribers open `restorationEvents` subscriptions over graphql-transport-ws, each checked
  at the end to have received every timeline entry written since it opened, once and in order.

Reports ops/s and p50/p99 latency by kind of operation, errors (target 0), deliveries and
their latency (mutation sent -> subscriber), and the API server's resident memory after the
warm-up, half-way, at the end and at its highest, so that a leak shows (as growth that goes on
in the second half, not the first allocations settling). Exits 1 on any error or any
delivery missing, repeated or out of order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# The repo root replaces this folder on the path: bench/graphql.py must not shadow the graphql package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import orjson  # noqa: E402
import psycopg  # noqa: E402
import websockets  # noqa: E402

from api.database import eventsourcing_env  # noqa: E402
from api.tokens import Role, create_token  # noqa: E402
from bench.common import (  # noqa: E402
    ApiServer,
    HttpRequest,
    Row,
    api_server_process,
    at_most,
    fresh_database,
    read_response,
    report,
)
from bench.graphql import DASHBOARD, populate  # noqa: E402
from domain.application import RestorationApp  # noqa: E402

TIMELINE = """query Timeline($service: ID!) { timeline(serviceId: $service, first: 20) {
  edges { node { position kind summary actor occurredAt } } } }"""
REPORT_STATUS = "mutation($input: ReportStatusInput!) { reportStatus(input: $input) { position } }"
SET_ETA = "mutation($input: SetEtaInput!) { setEta(input: $input) { position } }"
PUBLISH_WORKAROUND = """mutation($input: PublishWorkaroundInput!) { publishWorkaround(input: $input) {
  position service { workarounds { id channel } } } }"""
WITHDRAW_WORKAROUND = "mutation($input: WithdrawWorkaroundInput!) { withdrawWorkaround(input: $input) { position } }"
SUBSCRIBE = "subscription($after: Int!) { restorationEvents(after: $after) { position } }"
KINDS = ["dashboard query", "service timeline query", "reportStatus", "setEta", "publishWorkaround",
         "withdrawWorkaround"]  # the mutations by their fields' names
SOAK_CHANNEL = "Soak test line"
STATUSES = ["MAJOR_OUTAGE", "PARTIAL_OUTAGE", "DEGRADED_PERFORMANCE"]
CATCH_UP_SECONDS = 60
MEMORY_SAMPLE_SECONDS = 0.5
ERRORS_SHOWN = 5


class OperationFailed(Exception):
    """An answer other than 200 with data and no errors."""


@dataclass
class Log:
    """Every operation's kind, start and latency; and every error, with where it happened."""

    operations: list[tuple[str, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def timed(self, kind: str, operation: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
        started = time.perf_counter()
        try:
            data = await operation
        except OperationFailed as failure:
            self.errors.append(f"{kind}: {failure}")
            return None
        self.operations.append((kind, started, time.perf_counter() - started))
        return data

    def latencies(self, start: float, end: float) -> dict[str, list[float]]:
        """Seconds taken by each kind's operations that started between ``start`` and ``end``."""
        by_kind: dict[str, list[float]] = defaultdict(list)
        for kind, started, seconds in self.operations:
            if start <= started < end:
                by_kind[kind].append(seconds)
        return by_kind


class GraphQLConnection:
    """One keep-alive HTTP/1.1 connection posting GraphQL operations, through the bare client of
    bench/common.py so that the load generator takes little of the CPU the server needs."""

    def __init__(self, address: str, token: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.address = address
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, address: str, token: str) -> GraphQLConnection:
        host, port = address.rsplit(":", 1)
        return cls(address, token, *await asyncio.open_connection(host, int(port)))

    async def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps({"query": query, "variables": variables})
        self.writer.write(HttpRequest("POST", "/graphql", self.headers, body).encode(self.address))
        status, answer = await read_response(self.reader)
        if status != 200:
            raise OperationFailed(f"HTTP {status}: {answer[:200]!r}")
        result = orjson.loads(answer)
        if result.get("errors") or not result.get("data"):
            raise OperationFailed(json.dumps(result.get("errors"))[:300])
        return result["data"]

    def close(self) -> None:
        self.writer.close()


async def read(address: str, token: str, kind: str, query: str, variables: list[dict[str, Any]],
               until: float, log: Log) -> None:
    """``query`` back to back until ``until``, taking turns with each of ``variables``."""
    connection = await GraphQLConnection.open(address, token)
    try:
        turn = 0
        while time.perf_counter() < until:
            await log.timed(kind, connection.post(query, variables[turn % len(variables)]))
            turn += 1
    finally:
        connection.close()


async def write(address: str, token: str, service: str, until: float, log: Log, sent: dict[int, float]) -> None:
    """An operator's round of changes to ``service``, again and again until ``until``; notes when
    each change was sent, by its position."""
    connection = await GraphQLConnection.open(address, token)

    async def change(kind: str, query: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        asked = time.perf_counter()
        data = await log.timed(kind, connection.post(query, {"input": {"serviceId": service, **fields}}))
        if data is not None:
            sent[data[kind]["position"]] = asked
        return data

    try:
        round_ = 0
        while time.perf_counter() < until:
            await change("reportStatus", REPORT_STATUS, {"status": STATUSES[round_ % len(STATUSES)],
                                                         "note": f"Soak round {round_}"})
            expected = datetime.now(timezone.utc) + timedelta(days=2, minutes=round_)
            await change("setEta", SET_ETA, {"expectedAt": expected.isoformat(), "confidence": "MEDIUM",
                                             "reason": "Supplier estimate"})
            published = await change("publishWorkaround", PUBLISH_WORKAROUND, {
                "channel": SOAK_CHANNEL, "instructions": f"Call the line, round {round_}."})
            if published is not None:
                workarounds = published["publishWorkaround"]["service"]["workarounds"]
                for workaround in workarounds:
                    if workaround["channel"] == SOAK_CHANNEL:
                        await change("withdrawWorkaround", WITHDRAW_WORKAROUND, {"workaroundId": workaround["id"]})
            round_ += 1
    finally:
        connection.close()


@dataclass
class Subscriber:
    """One `restorationEvents` subscription: the positions it received, and when."""

    positions: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    async def listen(self, address: str, token: str, after: int, log: Log) -> None:
        async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"],
                                      max_queue=None) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            acknowledged = json.loads(await ws.recv())
            if acknowledged["type"] != "connection_ack":
                log.errors.append(f"subscription: {acknowledged}")
                return
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": SUBSCRIBE, "variables": {"after": after}}}))
            async for raw in ws:
                message = orjson.loads(raw)
                if message["type"] == "next" and not message["payload"].get("errors"):
                    self.positions.append(message["payload"]["data"]["restorationEvents"]["position"])
                    self.arrivals.append(time.perf_counter())
                elif message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                else:
                    log.errors.append(f"subscription: {message}")
                    return

    def faults(self, expected: list[int]) -> int:
        """Deliveries missing, not expected, repeated or out of order."""
        received = set(self.positions)
        repeated = len(self.positions) - len(received)
        disordered = sum(1 for before, after in zip(self.positions, self.positions[1:]) if after < before)
        return len(set(expected) - received) + len(received - set(expected)) + repeated + disordered


def resident_bytes(pid: int) -> int:
    """The process's resident set size: from /proc on Linux, from ps elsewhere."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return int(subprocess.check_output(["ps", "-o", "rss=", "-p", str(pid)])) * 1024


async def sample_memory(pid: int, until: float) -> list[int]:
    samples = []
    while True:
        samples.append(resident_bytes(pid))
        if time.perf_counter() >= until:
            return samples
        await asyncio.sleep(min(MEMORY_SAMPLE_SECONDS, max(0.0, until - time.perf_counter())))


def timeline_after(url: str, after: int) -> list[int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT position FROM timeline WHERE position > %s ORDER BY position", (after,))
        return [position for (position,) in rows]


async def caught_up(subscribers: list[Subscriber], listening: list[asyncio.Task[None]], last: int) -> None:
    """Until every subscriber has received ``last`` (or stopped listening), for at most a minute."""
    deadline = time.perf_counter() + CATCH_UP_SECONDS
    while time.perf_counter() < deadline:
        if all(task.done() or (s.positions and s.positions[-1] >= last) for s, task in zip(subscribers, listening)):
            return
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Options:
    seconds: float
    warm_up: float
    readers: int
    writers: int
    subscribers: int


async def soak(url: str, server: ApiServer, viewer: str, operator: str, services: list[str], after: int,
               options: Options) -> list[Row | tuple[str, float, str]]:
    address = server.address
    log = Log()
    sent: dict[int, float] = {}
    subscribers = [Subscriber() for _ in range(options.subscribers)]
    listening = [asyncio.create_task(s.listen(address, viewer, after, log)) for s in subscribers]
    start = time.perf_counter() + options.warm_up
    end = start + options.seconds
    dashboard = [{}]
    written = services[:options.writers]
    timelines = [{"service": service} for service in written or services[:1]]
    load = [
        *[read(address, viewer, "dashboard query", DASHBOARD, dashboard, end, log) for _ in range(options.readers)],
        *[read(address, viewer, "service timeline query", TIMELINE, timelines, end, log)
          for _ in range(options.readers)],
        *[write(address, operator, service, end, log, sent) for service in written],
    ]
    running = asyncio.gather(*load)
    await asyncio.sleep(options.warm_up)
    memory = await sample_memory(server.pid, end)
    await running

    expected = await asyncio.to_thread(timeline_after, url, after)
    if expected:
        await caught_up(subscribers, listening, expected[-1])
    for task in listening:
        task.cancel()
    for outcome in await asyncio.gather(*listening, return_exceptions=True):
        if isinstance(outcome, Exception):
            log.errors.append(f"subscription: {outcome!r}")

    rows: list[Row | tuple[str, float, str]] = []
    latencies = log.latencies(start, end)
    for kind in KINDS:
        seconds = latencies[kind]
        rows += [(kind, len(seconds) / options.seconds, "ops/s"),
                 ("  p50", percentile(seconds, 0.5) * 1000, "ms"),
                 ("  p99", percentile(seconds, 0.99) * 1000, "ms")]
    delays = [arrived - sent[position]
              for s in subscribers for position, arrived in zip(s.positions, s.arrivals)
              if start <= sent.get(position, -1) < end]
    first = Row("server RSS after the warm-up (baseline)", memory[0] / 2**20, "MiB")
    rows += [
        Row("errors", len(log.errors), "", target=at_most(0)),
        ("timeline entries written", len(expected), ""),
        ("deliveries to subscribers", sum(len(s.positions) for s in subscribers), ""),
        Row("deliveries missing, repeated or out of order", sum(s.faults(expected) for s in subscribers), "",
            target=at_most(0)),
        ("delivery p50, mutation sent -> subscriber", percentile(delays, 0.5) * 1000, "ms"),
        ("  p99", percentile(delays, 0.99) * 1000, "ms"),
        first,
        Row("server RSS half-way", memory[len(memory) // 2] / 2**20, "MiB", baseline=first),
        Row("server RSS at the end", memory[-1] / 2**20, "MiB", baseline=first),
        Row("server RSS at its highest", max(memory) / 2**20, "MiB", baseline=first),
    ]
    for error, count in Counter(log.errors).most_common(ERRORS_SHOWN):
        print(f"{count} x {error}", file=sys.stderr)
    return rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measured run")
    parser.add_argument("--warm-up", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--services", type=int, default=100, help="services besides the demo's")
    parser.add_argument("--readers", type=int, default=2, help="connections for each of the two queries")
    parser.add_argument("--writers", type=int, default=4, help="operators writing, each to a service of its own")
    parser.add_argument("--subscribers", type=int, default=30)
    args = parser.parse_args()
    options = Options(args.seconds, args.warm_up, args.readers, args.writers, args.subscribers)
    with fresh_database() as url:
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            services = [str(s) for s in populate(app, max(args.services, args.writers, 1))]
            with psycopg.connect(url) as connection:
                _, viewer = create_token(connection, name="soak viewer", role=Role.VIEWER)
                _, operator = create_token(connection, name="soak operator", role=Role.OPERATOR)
            head = app.head_position()
            with api_server_process(url, head) as server:
                rows = asyncio.run(soak(url, server, viewer, operator, services, head, options))
        finally:
            app.close()
    report(f"Soak (bench/soak.py): {args.seconds:g} s after a {args.warm_up:g} s warm-up; {args.readers} "
           f"connections per query, {args.writers} writers, {args.subscribers} subscriptions", rows)
    failed = [row for row in rows if isinstance(row, Row) and row.met is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
