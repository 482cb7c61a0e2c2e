"""Exactly once under crashes: a `restoration worker` killed with SIGKILL again and again while
it catches up must leave every view exactly as a replay from position 0 builds it."""

from __future__ import annotations

import random
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from bench.common import start_worker
from bench.workload import Workload
from domain.application import RestorationApp
from domain.values import Provenance
from projections.catalog import all_projections
from projections.runner import lags
from tests.projection_support import WAIT_SECONDS, assert_views_match_a_replay, log_of, wait_while_running

pytestmark = pytest.mark.slow

EVENTS = 20_000
CHUNK = 2_000
CRASHES = 5


def write(app: RestorationApp, workload: Workload, events: int) -> None:
    """``events`` facts, many per save, as one save per chunk."""
    for _ in range(0, events, CHUNK):
        app.save(*workload.events(CHUNK))


def write_through_commands(app: RestorationApp, workload: Workload) -> None:
    """A few facts the way an operator records them, a back-dated one corrected."""
    service_id = workload.service_ids[-1]
    late = datetime.now(timezone.utc) - timedelta(days=3)
    reported = app.report_status(
        service_id, status="MAJOR_OUTAGE", phase="ISOLATED",
        provenance=Provenance("ops@example.org", reason="Reported late", occurred_at=late),
    )
    app.correct_event(reported.position, changes={"status": "PARTIAL_OUTAGE"},
                      provenance=Provenance("lead@example.org", reason="Misheard on the phone"))
    app.set_eta(service_id, expected_at=late + timedelta(days=5), confidence="LOW",
                provenance=Provenance("lead@example.org", reason="Supplier estimate", occurred_at=late))
    app.publish_workaround(service_id, channel="Web form", instructions="Use the web form.",
                           provenance=Provenance("comms@example.org"))


def test_killed_workers_leave_every_view_as_a_replay_builds_it(
    app: RestorationApp, database_url: str, tmp_path: Path
) -> None:
    workload = Workload(seed=5)
    write(app, workload, EVENTS)
    write_through_commands(app, workload)
    projections = [p for p in all_projections() if p.rebuildable]  # views, not dispatchers
    log = log_of(app)
    log_file = tmp_path / "worker.log"
    chance = random.Random(11)

    with psycopg.connect(database_url, autocommit=True) as connection, log_file.open("ab") as output:

        def positions() -> dict[str, int]:
            return {lag.projection: lag.position for lag in lags(connection, log, projections)}

        # Kill the worker while each projection in turn is catching up (the worker catches
        # them up one after another), until every projection has been interrupted and at
        # least CRASHES kills left work undone.
        names = [projection.name for projection in projections]
        interrupted: set[str] = set()
        crashes = runs = 0
        while crashes < CRASHES or len(interrupted) < len(names):
            runs += 1
            assert runs <= 5 * (CRASHES + len(names)), f"no kill caught {set(names) - interrupted} mid catch-up"
            target = min(set(names) - interrupted) if len(interrupted) < len(names) else names[runs % len(names)]
            before, head = positions(), app.head_position()
            if head - before[target] < CHUNK:  # give it something to catch up on
                write(app, workload, CHUNK)
                head = app.head_position()
            worker = start_worker(database_url, output)
            wait_while_running(lambda: positions()[target] > before[target], [worker], log_file,
                               f"{target} to apply a batch")
            time.sleep(chance.uniform(0, 0.05))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            after = positions()
            caught = {name for name in names if before[name] < after[name] < head}
            crashes += bool(caught)
            interrupted |= caught

        worker = start_worker(database_url, output)
        try:
            wait_while_running(lambda: set(positions().values()) == {app.head_position()}, [worker], log_file,
                               "every projection to catch up")
        finally:
            worker.terminate()
            worker.wait(timeout=WAIT_SECONDS)

        assert positions() == {name: app.head_position() for name in names}
        assert_views_match_a_replay(connection, log, projections)
