"""The application on a real PostgreSQL: commands are stored, races are never lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import psycopg
import pytest

from api.database import eventsourcing_env
from api.demo import DEMO_INCIDENT_ID, load_demo
from domain.application import RestorationApp
from domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from domain.regulation import ObligationState
from domain.values import Phase, Provenance, Status

OPS = Provenance("ops@example.org")


def register(app: RestorationApp, slug: str = "email") -> object:
    return app.register_service(slug=slug, name=slug.title(), category="Systems", provenance=OPS)


def test_commands_are_stored_and_return_their_position(app: RestorationApp) -> None:
    email = register(app)
    incident = app.declare_incident(title="Attack", kind="CYBER_ATTACK", severity="CRITICAL", provenance=OPS)
    reported = app.report_status(
        email.id, status="MAJOR_OUTAGE", phase="ISOLATED", incident_id=incident.id, provenance=OPS
    )
    assert reported.position == app.head_position() == 4  # registered, declared, affected, reported
    reloaded = RestorationApp(env=app.env)  # a second process would see the same
    try:
        service = reloaded.service(email.id)
        assert (service.status, service.phase) == (Status.MAJOR_OUTAGE, Phase.ISOLATED)
        assert reloaded.incident(incident.id).affects(email.id)
    finally:
        reloaded.close()


def test_every_event_carries_actor_reason_and_both_times(app: RestorationApp, database_url: str) -> None:
    email = register(app)
    back_then = datetime(2022, 6, 17, 9, 30, tzinfo=timezone.utc)
    app.report_status(
        email.id, status="MAJOR_OUTAGE", provenance=Provenance("lead", reason="paper log", occurred_at=back_then)
    )
    notification = app.recorder.select_notifications(start=2, limit=1)[0]
    event = app.mapper.to_domain_event(notification)
    assert (event.actor, event.reason, event.occurred_at) == ("lead", "paper log", back_then)
    assert event.timestamp > back_then  # recorded now, true then


def test_unknown_ids_and_duplicates_are_clear_errors(app: RestorationApp) -> None:
    register(app)
    with pytest.raises(Conflict, match="slug 'email' already exists"):
        register(app)
    with pytest.raises(NotFound, match="No service has the id"):
        app.report_status(uuid4(), status="MAJOR_OUTAGE", provenance=OPS)
    with pytest.raises(NotFound, match="No incident has the id"):
        app.post_update(uuid4(), audience="PUBLIC", message="x", provenance=OPS)
    with pytest.raises(NotFound, match="No event is recorded at position 99"):
        app.correct_event(99, changes={"name": "x"}, provenance=Provenance("l", reason="r"))


def test_refused_commands_record_nothing(app: RestorationApp) -> None:
    email = register(app)
    head = app.head_position()
    with pytest.raises(InvalidTransition):
        app.report_status(email.id, phase="RESTORED", provenance=OPS)
    with pytest.raises(ValidationError):
        app.report_status(email.id, status="MAJOR_OUTAGE", note="x" * 10_001, provenance=OPS)
    assert app.head_position() == head


def test_a_status_report_on_a_closed_incident_is_refused(app: RestorationApp) -> None:
    email = register(app)
    incident = app.declare_incident(title="Attack", kind="CYBER_ATTACK", severity="CRITICAL", provenance=OPS)
    app.close_incident(incident.id, provenance=OPS)
    with pytest.raises(InvalidTransition, match="closed"):
        app.report_status(email.id, status="MAJOR_OUTAGE", incident_id=incident.id, provenance=OPS)


def test_dependency_cycles_are_refused_across_services(app: RestorationApp) -> None:
    a, b, c = (register(app, slug).id for slug in ("portal", "website", "hosting"))
    app.add_dependency(a, depends_on_id=b, provenance=OPS)
    app.add_dependency(b, depends_on_id=c, provenance=OPS)
    with pytest.raises(ValidationError, match="cycle"):
        app.add_dependency(c, depends_on_id=a, provenance=OPS)
    with pytest.raises(NotFound):
        app.add_dependency(a, depends_on_id=uuid4(), provenance=OPS)
    assert app.dependency_graph().depends_on(a) == [b]


def test_a_correction_by_position(app: RestorationApp) -> None:
    email = register(app)
    wrong = app.report_status(email.id, status="MAJOR_OUTAGE", provenance=OPS)
    with pytest.raises(ValidationError, match="reason is required"):
        app.correct_event(wrong.position, changes={"status": "PARTIAL_OUTAGE"}, provenance=OPS)
    app.correct_event(
        wrong.position, changes={"status": "PARTIAL_OUTAGE"}, provenance=Provenance("lead", reason="typo")
    )
    assert app.service(email.id).status is Status.PARTIAL_OUTAGE


def test_concurrent_reports_on_one_service_are_all_stored_or_refused(
    app: RestorationApp, database_url: str
) -> None:
    """20 threads report at once: every accepted command is stored, versions are
    contiguous, and nothing is lost; a command that kept losing is told so (CONFLICT)."""
    email = register(app)
    accepted: list[int] = []
    refused: list[Exception] = []
    start = threading.Barrier(20)
    statuses = list(Status)

    def report(n: int) -> None:
        start.wait()
        for i in range(5):
            try:
                recorded = app.report_status(
                    email.id, status=statuses[(n + i) % len(statuses)], note=f"thread {n} report {i}", provenance=OPS
                )
                accepted.append(recorded.position)
            except Conflict as error:
                refused.append(error)

    threads = [threading.Thread(target=report, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(accepted) + len(refused) == 100
    assert len(accepted) >= 90, f"only {len(accepted)} of 100 accepted"
    with psycopg.connect(database_url) as connection:
        versions = [
            row[0]
            for row in connection.execute(
                f"SELECT originator_version FROM {app.recorder.events_table_name} "
                "WHERE originator_id = %s ORDER BY 1",
                (email.id,),
            )
        ]
    assert versions == list(range(1, len(accepted) + 2))  # registration + every accepted report
    notes = [r.note for r in app.service(email.id).reports]
    assert len(notes) == len(set(notes)) == len(accepted)


@pytest.fixture
def other_process(database_url: str) -> Iterator[RestorationApp]:
    """A second application on the same database, as another tracker process would be."""
    other = RestorationApp(env=eventsourcing_env(database_url))
    try:
        yield other
    finally:
        other.close()


def test_two_processes_taking_turns_lose_no_update(app: RestorationApp, other_process: RestorationApp) -> None:
    """Each process keeps the aggregates it saved to decide its next command on; the other's
    writes make that copy stale every turn, and every command must still be stored."""
    email = register(app)
    statuses = list(Status)
    for n in range(20):
        writer = app if n % 2 == 0 else other_process
        writer.report_status(email.id, status=statuses[n % len(statuses)], note=f"turn {n}", provenance=OPS)
    assert [r.note for r in app.service(email.id).reports] == [f"turn {n}" for n in range(20)]
    assert app.service(email.id).version == other_process.service(email.id).version == 21


def test_a_refusal_is_never_judged_on_a_stale_copy(app: RestorationApp, other_process: RestorationApp) -> None:
    email = register(app)
    app.report_status(email.id, status=Status.MAJOR_OUTAGE, provenance=OPS)  # app keeps version 2
    published = other_process.publish_workaround(
        email.id, channel="Phone", instructions="Call 0300 123 4567.", provenance=OPS
    )
    workaround_id = other_process.service(email.id).workarounds.popitem()[0]
    # app's own copy has never heard of the workaround; it must decide on the stored state.
    withdrawn = app.withdraw_workaround(email.id, workaround_id=workaround_id, provenance=OPS)
    assert withdrawn.position is not None and withdrawn.position > published.position
    assert app.service(email.id).workarounds[workaround_id].withdrawn
    with pytest.raises(InvalidTransition):  # and a refusal on fresh state still stands
        other_process.withdraw_workaround(email.id, workaround_id=workaround_id, provenance=OPS)


def test_the_demo_loads_once(app: RestorationApp) -> None:
    assert load_demo(app) is True
    head = app.head_position()
    assert load_demo(app) is False
    assert app.head_position() == head

    incident = app.incident(DEMO_INCIDENT_ID)
    assert incident.impact().residents_affected == 350_000
    assert incident.impact().properties_affected == 125_000
    regulators = {o.regulator for o in incident.obligations.values()}
    assert {"ICO", "Regulator of Social Housing", "Housing Ombudsman", "FCA"} <= regulators
    assert any("law enforcement" in r.lower() or "crime" in r.lower() for r in regulators)
    now = datetime.now(timezone.utc)
    assert incident.obligations["UK_GDPR_ART33"].state(now) is ObligationState.FILED_ON_TIME

    telephony = app.service_by_slug("telephony")
    assert len(telephony.eta_revisions) >= 3  # the ETA slipped, more than once
    rent = app.service_by_slug("rent-by-phone")
    assert {w.channel for w in rent.active_workarounds} >= {
        "Standing order", "Online payment portal", "Card payment phone line"
    }
    email = app.service_by_slug("email")
    assert email.phase is Phase.RESTORED
    assert any(r.phase is Phase.ISOLATED for r in email.reports[1:])  # a regression, with a reason
    public_updates = [u for u in incident.updates if u.audience == "PUBLIC"]
    assert len(public_updates) >= 6
    assert min(u.occurred_at for u in public_updates) >= datetime(2022, 6, 17, tzinfo=timezone.utc)
    assert max(r.occurred_at for r in telephony.reports) - min(r.occurred_at for r in telephony.reports) > timedelta(weeks=2)
