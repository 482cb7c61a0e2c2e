"""Projections: rebuild throughput and lag, beside baselines measured in the same run.

(a) Rebuild: every projection in the catalog rebuilt from position 0 over N events (default
    100,000): each alone (projections.runner.rebuild, as `restoration rebuild NAME` does),
    all of them in one pass over the log (rebuild_together, as `restoration rebuild`
    with no name does), and all of them shared out among one process per core
    (`restoration rebuild --jobs CORES`). Baseline: reading the same event rows with
    asyncpg, nothing decoded or applied.
    Target: >= 20,000 events/s, for each view's rebuild (judged on the slowest), for the
    one pass, which does every view's work for each event, and for the processes. Each
    figure, baselines included, is the best of --repeat rounds (as timeit reports): on a
    shared machine another tenant's burst only ever slows a run down, and the rounds
    interleave the views so no one view takes all of a burst.
(b) Lag: commit -> visible in the views, under a steady load of commands (default 75/s for
    20 s) with `restoration worker` running as its own process. "Visible" is when the
    projection's tracking position (committed with its rows) reaches the command's position,
    polled from another connection; "commit" is when the command returned to the writer.
    Baseline: the commands' own latency. Target: p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import random
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from api.composition import Tracker, event_log, rebuild_views  # noqa: E402
from api.config import Settings  # noqa: E402
from api.database import eventsourcing_env  # noqa: E402
from bench.common import Row, at_least, at_most, fresh_database, report, start_worker  # noqa: E402
from bench.workload import Workload  # noqa: E402
from domain.application import RestorationApp  # noqa: E402
from domain.values import Provenance, Status  # noqa: E402
from projections.base import Projection  # noqa: E402
from projections.catalog import all_projections  # noqa: E402
from projections.runner import REBUILD_BATCH_SIZE, EventLog, collecting_less_often, rebuild_together  # noqa: E402

TARGET_REBUILD = 20_000
TARGET_LAG_P99_MS = 100.0
SAVE_CHUNK = 2_000
OPS = Provenance("bench@example.org")


# ---- (a) rebuild ---------------------------------------------------------------------------

def write_events(app: RestorationApp, count: int) -> Workload:
    workload = Workload(seed=1)
    while app.head_position() < count:
        app.save(*workload.events(SAVE_CHUNK))
    return workload


async def raw_read(url: str, table: str) -> float:
    """Events/s reading every event row in a rebuild's batches, without decoding them."""
    connection = await asyncpg.connect(url)
    try:
        query = (f"SELECT notification_id, originator_id, originator_version, topic, state FROM {table} "
                 "WHERE notification_id > $1 ORDER BY notification_id LIMIT $2")
        started, position, count = time.perf_counter(), 0, 0
        while rows := await connection.fetch(query, position, REBUILD_BATCH_SIZE):
            position, count = rows[-1]["notification_id"], count + len(rows)
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


def read_and_decode(url: str, log: EventLog) -> float:
    """Events/s reading and decoding every event as the runner does, applying nothing."""
    with collecting_less_often(), psycopg.connect(url) as connection, connection.cursor() as cursor:
        started, position, count = time.perf_counter(), 0, 0
        while batch := log.read(cursor, position, REBUILD_BATCH_SIZE):
            position, count = batch[-1].position, count + len(batch)
        return count / (time.perf_counter() - started)


def rebuild_seconds(url: str, log: EventLog, projections: list[Projection]) -> float:
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        rebuild_together(connection, log, projections)
        return time.perf_counter() - started


def rebuild_in_processes_seconds(url: str, app: RestorationApp, projections: list[Projection], processes: int) -> float:
    started = time.perf_counter()
    rebuild_views(Tracker(Settings.from_env(), url, app), projections, processes=processes)
    return time.perf_counter() - started


# ---- (b) lag -------------------------------------------------------------------------------

class TrackingPoller(threading.Thread):
    """Records when each projection's tracking position moves, polling as fast as it can."""

    def __init__(self, url: str, projections: list[Projection]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.names = [p.name for p in projections]
        self.query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, position FROM {}").format(sql.Literal(p.name), sql.Identifier(p.tracking_table))
            for p in projections
        )
        self.moves: dict[str, tuple[list[int], list[float]]] = {name: ([], []) for name in self.names}
        self.round_trips: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stopping.is_set():
                asked = time.perf_counter()
                rows = connection.execute(self.query).fetchall()
                seen = time.perf_counter()
                self.round_trips.append(seen - asked)
                for name, position in rows:
                    positions, times = self.moves[name]
                    if not positions or position > positions[-1]:
                        positions.append(position)
                        times.append(seen)
                time.sleep(0.0005)

    def visible_at(self, name: str, position: int) -> float | None:
        """When ``name`` was first seen at or past ``position``."""
        positions, times = self.moves[name]
        index = bisect.bisect_left(positions, position)
        return times[index] if index < len(positions) else None

    def caught_up(self, head: int) -> bool:
        return all(self.moves[name][0] and self.moves[name][0][-1] >= head for name in self.names)


def wait_until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.01)


def steady_load(
    app: RestorationApp, services: list[UUID], incident: UUID, rate: float, seconds: float
) -> list[tuple[int, float, float]]:
    """Commands at ``rate``/s for ``seconds``: (position, sent, returned) of each."""
    chance = random.Random(2)
    last_report = None
    done: list[tuple[int, float, float]] = []
    started = time.perf_counter()
    for n in range(int(rate * seconds)):
        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        sent = time.perf_counter()
        roll = chance.random()
        if roll < 0.1 and last_report is not None:
            recorded = app.correct_event(last_report, changes={"status": chance.choice(list(Status))},
                                         provenance=Provenance("lead@example.org", reason="Misheard"))
        elif roll < 0.2:
            recorded = app.post_update(incident, audience="PUBLIC", message=f"Update {n}", provenance=OPS)
        elif roll < 0.3:
            recorded = app.publish_workaround(chance.choice(services), channel="Web form",
                                              instructions="Use the web form.", provenance=OPS)
        else:
            recorded = app.report_status(chance.choice(services), status=chance.choice(list(Status)),
                                         note=f"Report {n}", provenance=OPS)
            last_report = recorded.position
        assert recorded.position is not None
        done.append((recorded.position, sent, time.perf_counter()))
    return done


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# ---- running it ----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events to rebuild from")
    parser.add_argument("--rate", type=float, default=75.0, help="commands/s during the lag run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the lag run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of rebuilds; each figure is the best")
    args = parser.parse_args()
    projections = [p for p in all_projections() if p.rebuildable]  # views, not dispatchers
    with fresh_database() as url:
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            started = time.perf_counter()
            workload = write_events(app, args.events)
            head = app.head_position()
            written = head / (time.perf_counter() - started)
            log = event_log(app)
            rounds = range(args.repeat)
            baseline = max(asyncio.run(raw_read(url, log.table)) for _ in rounds)
            decoded = max(read_and_decode(url, log) for _ in rounds)
            alone = {p.name: float("inf") for p in projections}
            for _ in rounds:
                for p in projections:
                    alone[p.name] = min(alone[p.name], rebuild_seconds(url, log, [p]))
            together = head / min(rebuild_seconds(url, log, projections) for _ in rounds)
            cores = os.cpu_count() or 1
            apart = head / min(rebuild_in_processes_seconds(url, app, projections, cores) for _ in rounds)
            lags, latencies, round_trips = measure_lag(url, app, workload, projections, args.rate, args.seconds)
        finally:
            app.close()

    raw = Row("raw asyncpg read of the rows (baseline)", baseline, "events/s")
    slowest = max(alone, key=alone.__getitem__)
    report(f"Rebuild throughput over {head:,} events, best of {args.repeat} (bench/projections.py)", [
        ("generate + save the events (setup)", written, "events/s"),
        raw,
        Row("read + decode as the runner does", decoded, "events/s", baseline=raw),
        *[Row(f"rebuild {name} alone", head / s, "events/s", baseline=raw) for name, s in alone.items()],
        Row(f"slowest view rebuilt alone ({slowest})", head / alone[slowest], "events/s",
            baseline=raw, target=at_least(TARGET_REBUILD)),
        Row("rebuild all, one after another", head / sum(alone.values()), "events/s", baseline=raw),
        Row(f"rebuild all {len(projections)} in one pass", together, "events/s",
            baseline=raw, target=at_least(TARGET_REBUILD)),
        Row(f"rebuild all {len(projections)} in {cores} processes (--jobs {cores}, one per core)", apart, "events/s",
            baseline=raw, target=at_least(TARGET_REBUILD)),
    ])

    all_views = lags["all views"]
    command_p50 = Row("command latency p50 (baseline)", percentile(latencies, 0.5) * 1000, "ms")
    command_p99 = Row("command latency p99 (baseline)", percentile(latencies, 0.99) * 1000, "ms")
    report(f"Lag, commit -> visible, {len(latencies):,} commands at {args.rate:g}/s with `restoration worker`", [
        command_p50,
        command_p99,
        ("poll round trip p50 (resolution)", percentile(round_trips, 0.5) * 1000, "ms"),
        *[row for name, values in lags.items() if name != "all views" for row in (
            (f"{name} p50", percentile(values, 0.5) * 1000, "ms"),
            (f"{name} p99", percentile(values, 0.99) * 1000, "ms"))],
        Row("all views p50", percentile(all_views, 0.5) * 1000, "ms", baseline=command_p50),
        Row("all views p99", percentile(all_views, 0.99) * 1000, "ms",
            baseline=command_p99, target=at_most(TARGET_LAG_P99_MS)),
        ("all views max", max(all_views) * 1000, "ms"),
    ])
    return 0


def measure_lag(
    url: str, app: RestorationApp, workload: Workload, projections: list[Projection], rate: float, seconds: float
) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Per projection and for all views: seconds from each command's return to visibility."""
    worker = start_worker(url)
    poller = TrackingPoller(url, projections)
    try:
        poller.start()  # the rebuilds created the tracking tables it polls
        # Only a running worker can apply this first command: measuring starts once it has.
        declared = app.declare_incident(title="Lag benchmark", kind="SYSTEM_OUTAGE", severity="MINOR", provenance=OPS)
        wait_until(lambda: poller.caught_up(declared.position), 60, "the worker to start")
        done = steady_load(app, workload.service_ids[-200:], declared.id, rate, seconds)
        wait_until(lambda: poller.caught_up(done[-1][0]), 60, "the views to show the last command")
    finally:
        poller.stopping.set()
        worker.terminate()
        worker.wait(timeout=30)
    lags: dict[str, list[float]] = {p.name: [] for p in projections}
    lags["all views"] = []
    for position, _sent, returned in done:
        visible = {p.name: poller.visible_at(p.name, position) for p in projections}
        for name, at in visible.items():
            lags[name].append(max(0.0, at - returned))  # type: ignore[operator]
        lags["all views"].append(max(0.0, max(visible.values()) - returned))  # type: ignore[type-var, operator]
    return lags, [returned - sent for _position, sent, returned in done], poller.round_trips


if __name__ == "__main__":
    sys.exit(main())
