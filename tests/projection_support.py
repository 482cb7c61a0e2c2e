"""Helpers for projection tests: an event log for an app, building a view, waiting for a
condition, comparing views with a replay, and a history full of back-dated facts and corrections."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic

from api.composition import event_log
from api.demo import DEMO_INCIDENT_ID, load_demo, when
from api.background import in_background
from domain.application import RestorationApp
from domain.incident import Incident
from domain.values import Provenance
from projections.base import Projection
from projections.runner import EventLog, Worker, catch_up, create_tables, rebuild, replay_differences, table_rows

WAIT_SECONDS = 120.0
"""How long a broken build may hang before a test gives up: generous, for shared and busy machines."""


def log_of(app: RestorationApp) -> EventLog:
    return event_log(app)


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a hang guard, not a speed check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_while_running(
    condition: Callable[[], bool], processes: Iterable[subprocess.Popen[bytes]], log_file: Path, what: str
) -> None:
    """Wait for ``condition`` while the processes live (a hang guard, not a speed check); if
    one exits or time runs out, fail with what the processes wrote to ``log_file``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args} exited ({process.returncode}) before {what}:\n"
                                     f"{log_file.read_text()}")
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}:\n{log_file.read_text()}")


def assert_views_match_a_replay(connection: psycopg.Connection, log: EventLog, projections: Iterable[Projection]) -> None:
    """Every view holds exactly the rows a replay of its events from position 0 gives."""
    for projection in projections:
        differences = replay_differences(connection, log, projection)
        assert not differences, f"{projection.name}: {len(differences)} rows differ, e.g. {differences[:4]}"


@contextmanager
def running_worker(url: str, app: RestorationApp, projections: list[Projection], **options: object) -> Iterator[Worker]:
    worker = Worker(url, log_of(app), projections, **options)  # type: ignore[arg-type]
    with in_background(worker.run, worker.stop, name="test-worker"):
        yield worker


def build(url: str, app: RestorationApp, projection: Projection) -> None:
    """Create the projection's tables and apply every event recorded so far."""
    with psycopg.connect(url) as connection:
        create_tables(connection, projection)
        catch_up(connection, log_of(app), projection)


def position_of(app: RestorationApp, event_class: type, originator_id: UUID, nth: int = 0) -> int:
    """The global position of the ``nth`` event of this class recorded for the aggregate."""
    found = app.recorder.select_notifications(start=1, limit=10**6, topics=[get_topic(event_class)])
    return [n.id for n in found if UUID(str(n.originator_id)) == originator_id][nth]


def assert_same_rows_however_built(url: str, app: RestorationApp, projection: Projection) -> None:
    """Batches of 1, 7 and 1000 events give the same rows, and so does a rebuild from 0."""
    with psycopg.connect(url) as connection:
        built = {}
        for size in (1, 7, 1000):
            schema = f"batches_of_{size}"
            create_tables(connection, projection, schema)
            catch_up(connection, log_of(app), projection, schema=schema, batch_size=size)
            built[size] = {table: table_rows(connection, table, schema) for table in projection.tables}
        create_tables(connection, projection)
        catch_up(connection, log_of(app), projection)
        rebuild(connection, log_of(app), projection)
        rebuilt = {table: table_rows(connection, table) for table in projection.tables}
    assert all(built[1000].values()), "every table should have rows for the comparison to mean anything"
    assert built[1] == built[7] == built[1000] == rebuilt


def eventful_history(app: RestorationApp) -> None:
    """The demo, then back-dated facts and corrections of every kind the clocks follow,
    some correcting facts recorded just before them (same batch) and some long after."""
    load_demo(app)
    paper = Provenance("it.recovery@clarion.example", reason="Entered from the paper log")
    fix = Provenance("incident.lead@clarion.example", reason="Wrong on the paper log")
    portal = app.service_by_slug("online-payment-portal").id
    card_line = app.service_by_slug("card-payment-line").id
    telephony = app.service_by_slug("telephony").id

    dip = app.report_status(portal, status="MAJOR_OUTAGE", phase="ISOLATED", incident_id=DEMO_INCIDENT_ID,
                            provenance=replace(paper, occurred_at=when(1, 9, month=7)))
    app.report_status(portal, status="OPERATIONAL", phase="RESTORED", incident_id=DEMO_INCIDENT_ID,
                      provenance=replace(paper, occurred_at=when(5, 9, month=7)))
    app.correct_event(dip.position, changes={"occurred_at": when(2, 9, month=7)}, provenance=fix)
    app.report_status(card_line, status="DEGRADED_PERFORMANCE", phase="ASSESSING", incident_id=DEMO_INCIDENT_ID,
                      provenance=replace(paper, occurred_at=when(20, 9)))
    eta = app.set_eta(card_line, expected_at=when(30, 17), confidence="LOW",
                      provenance=replace(paper, occurred_at=when(21, 9)))
    app.correct_event(eta.position, changes={"expected_at": when(1, 17, month=7)}, provenance=fix)
    app.clear_eta(telephony, provenance=replace(paper, occurred_at=when(6, 9, month=8)))
    update = app.post_update(DEMO_INCIDENT_ID, audience="PUBLIC", message="Phones: no date yet.",
                             next_update_by=when(12, 17, month=8),
                             provenance=replace(paper, occurred_at=when(4, 17, month=8)))
    app.correct_event(update.position, changes={"next_update_by": when(11, 17, month=8)}, provenance=fix)
    app.post_update(DEMO_INCIDENT_ID, audience="INTERNAL", message="Board briefed again.",
                    provenance=replace(paper, occurred_at=when(5, 9, month=8)))
    app.correct_event(position_of(app, Incident.AwarenessRecorded, DEMO_INCIDENT_ID),
                      changes={"aware_at": when(18, 9)}, provenance=fix)
    app.correct_event(position_of(app, Incident.RegulatorNotified, DEMO_INCIDENT_ID, nth=3),
                      changes={"reference": "HO-2022-0071"}, provenance=fix)

    supplier = app.declare_incident(title="Payment partner outage", kind="SUPPLIER_FAILURE", severity="MINOR",
                                    provenance=replace(paper, occurred_at=when(1, 9, month=8)))
    app.record_awareness(supplier.id, aware_at=when(1, 10, month=8), regimes=["UK_GDPR_ART33", "FCA_PRINCIPLE_11"],
                         provenance=replace(paper, occurred_at=when(1, 10, month=8)))
    app.record_regulator_notification(supplier.id, regime="UK_GDPR_ART33", reference="ICO/late",
                                      provenance=replace(paper, occurred_at=when(8, 9, month=8)))
    app.record_notification_decision(supplier.id, regime="FCA_PRINCIPLE_11", required=False,
                                     provenance=replace(paper, reason="No regulated activity affected"))
    app.report_status(card_line, status="OPERATIONAL", phase="RESTORED", incident_id=supplier.id,
                      provenance=replace(paper, occurred_at=when(9, 9, month=8)))
    app.close_incident(supplier.id, provenance=paper)
