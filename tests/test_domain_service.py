"""Service rules, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from domain.service import Service
from domain.values import LONG_TEXT_LIMIT, Phase, Provenance, Status

NOW = datetime.now(timezone.utc)
OPS = Provenance("ops@example.org")


def at(hours_ago: float, reason: str | None = None) -> Provenance:
    return Provenance("ops@example.org", reason=reason, occurred_at=NOW - timedelta(hours=hours_ago))


def email() -> Service:
    return Service.register(slug="email", name="Email", category="Systems", provenance=at(100))


def test_a_registered_service_is_operational_with_no_phase() -> None:
    service = email()
    assert service.status is Status.OPERATIONAL
    assert service.phase is None
    assert service.id == Service.create_id("email")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slug", "Email Service", "lower-case letters"),
        ("slug", "", "must not be empty"),
        ("name", "   ", "must not be empty"),
        ("name", "x" * 201, "limit is 200"),
        ("description", "x" * (LONG_TEXT_LIMIT + 1), "limit is 10,000"),
        ("tier", 9, "tier must be 1"),
    ],
)
def test_registration_refuses_bad_input(field: str, value: object, message: str) -> None:
    details = {"slug": "email", "name": "Email", "category": "Systems", field: value}
    with pytest.raises(ValidationError, match=message):
        Service.register(provenance=OPS, **details)  # type: ignore[arg-type]


def test_phases_move_forward_and_may_skip() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(50))
    service.report_status(phase="RESTORING", provenance=at(40))
    service.report_status(phase="RESTORED", status="OPERATIONAL", provenance=at(30))
    assert (service.status, service.phase) == (Status.OPERATIONAL, Phase.RESTORED)


def test_a_service_never_affected_cannot_be_restored() -> None:
    service = email()
    with pytest.raises(InvalidTransition, match="no recovery phase yet"):
        service.report_status(phase="RESTORED", provenance=OPS)


def test_a_regression_needs_a_reason() -> None:
    service = email()
    service.report_status(phase="RESTORING", provenance=at(20))
    service.report_status(phase="RESTORED", provenance=at(10))
    with pytest.raises(InvalidTransition, match="regression"):
        service.report_status(phase="ISOLATED", status="MAJOR_OUTAGE", provenance=at(5))
    service.report_status(
        phase="ISOLATED", status="MAJOR_OUTAGE", provenance=at(5, reason="Suspicious sign-ins")
    )
    assert service.phase is Phase.ISOLATED


def test_a_report_needs_status_or_phase_and_valid_values() -> None:
    service = email()
    with pytest.raises(ValidationError, match="status, a recovery phase, or both"):
        service.report_status(provenance=OPS)
    with pytest.raises(ValidationError, match="status must be one of OPERATIONAL"):
        service.report_status(status="DOWN", provenance=OPS)


def test_occurred_at_may_be_back_dated_but_not_in_the_future() -> None:
    service = email()
    with pytest.raises(ValidationError, match="in the future"):
        service.report_status(
            status="MAJOR_OUTAGE",
            provenance=Provenance("ops", occurred_at=NOW + timedelta(minutes=10)),
        )
    service.report_status(
        status="MAJOR_OUTAGE", provenance=Provenance("ops", occurred_at=NOW + timedelta(minutes=2))
    )
    with pytest.raises(ValidationError, match="UTC offset"):
        service.report_status(status="MAJOR_OUTAGE", provenance=Provenance("ops", occurred_at=datetime(2022, 6, 17)))


LATE_IN_UTC_OFFSET = timezone(timedelta(hours=14))


@pytest.mark.parametrize(
    "moment",
    [
        datetime.min.replace(tzinfo=LATE_IN_UTC_OFFSET),  # year 0 in UTC
        datetime(1899, 12, 31, 23, 59, tzinfo=timezone.utc),
    ],
)
def test_a_fact_from_before_1900_is_refused(moment: datetime) -> None:
    # Found by fuzzing: year 1 at +14:00 is year 0 in UTC, which the views cannot store; the
    # fact was recorded and then stopped every view.
    with pytest.raises(ValidationError, match="outside the years 1900 to 2999"):
        email().report_status(status="MAJOR_OUTAGE", provenance=Provenance("ops", occurred_at=moment))


def test_an_eta_after_2999_is_refused() -> None:
    with pytest.raises(ValidationError, match="outside the years 1900 to 2999"):
        email().set_eta(expected_at=datetime.max.replace(tzinfo=timezone(-timedelta(hours=14))),
                        confidence="LOW", provenance=at(1, reason="supplier said so"))


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\ud800"])
def test_text_with_an_unwritable_character_is_refused(character: str) -> None:
    # Found by fuzzing: a NUL was recorded and then stopped every view (PostgreSQL text
    # cannot hold it); other control characters would make the Atom feed invalid XML.
    with pytest.raises(ValidationError, match="unwritable character"):
        email().report_status(status="MAJOR_OUTAGE", note=f"down{character}", provenance=OPS)


def test_text_may_hold_tabs_and_line_breaks() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", note="Down:\n\t- email\r\n", provenance=OPS)
    assert service.reports[-1].note == "Down:\n\t- email"


def test_back_dated_reports_are_placed_by_when_they_happened() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(48))
    service.report_status(status="PARTIAL_OUTAGE", phase="RESTORING", provenance=at(2))
    # Entered last, but true a day ago: it does not become the current state.
    service.report_status(status="MAJOR_OUTAGE", phase="ASSESSING", provenance=at(24))
    assert (service.status, service.phase) == (Status.PARTIAL_OUTAGE, Phase.RESTORING)
    assert service.phase_at(NOW - timedelta(hours=20)) is Phase.ASSESSING


def test_back_dated_transitions_are_checked_against_the_state_at_that_time() -> None:
    service = email()
    service.report_status(phase="RESTORING", provenance=at(48))
    service.report_status(phase="RESTORED", provenance=at(2))
    # At 24 hours ago the service was RESTORING, so VALIDATING then is forward, not a regression.
    service.report_status(phase="VALIDATING", provenance=at(24))
    assert service.phase is Phase.RESTORED


def test_an_eta_must_be_after_the_time_it_was_given_and_have_a_reason() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(10))
    with pytest.raises(ValidationError, match="reason is required"):
        service.set_eta(expected_at=NOW + timedelta(days=1), confidence="LOW", provenance=OPS)
    with pytest.raises(ValidationError, match="after the time it was given"):
        service.set_eta(
            expected_at=NOW - timedelta(hours=6), confidence="LOW", provenance=at(5, reason="x")
        )
    with pytest.raises(ValidationError, match="confidence must be one of"):
        service.set_eta(expected_at=NOW + timedelta(days=1), confidence="SURE", provenance=at(1, "x"))


def test_etas_are_revised_not_overwritten() -> None:
    service = email()
    first, second = NOW + timedelta(days=2), NOW + timedelta(days=9)
    service.set_eta(expected_at=first, confidence="LOW", provenance=at(3, reason="vendor"))
    service.set_eta(expected_at=second, confidence="MEDIUM", provenance=at(1, reason="slipped"))
    assert service.eta is not None and service.eta.expected_at == second
    assert [e.expected_at for e in service.eta_revisions] == [first, second]
    service.clear_eta(provenance=OPS)
    assert service.eta is None
    with pytest.raises(InvalidTransition, match="no ETA to clear"):
        service.clear_eta(provenance=OPS)


def test_an_eta_is_cleared_only_where_one_was_in_force() -> None:
    # Found writing the stateful model: a clearing back-dated to before the ETA was given was
    # recorded, yet the ETA stayed in force.
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(48))
    service.set_eta(expected_at=NOW + timedelta(days=1), confidence="LOW", provenance=at(1, reason="supplier"))
    with pytest.raises(InvalidTransition, match="no ETA to clear"):
        service.clear_eta(provenance=at(24))
    service.clear_eta(provenance=at(0.5))
    assert service.eta is None


def test_no_eta_for_a_restored_service() -> None:
    service = email()
    service.report_status(phase="RESTORING", provenance=at(3))
    service.report_status(phase="RESTORED", provenance=at(2))
    with pytest.raises(InvalidTransition, match="already restored"):
        service.set_eta(expected_at=NOW + timedelta(days=1), confidence="LOW", provenance=at(1, "x"))


def test_workarounds_are_published_and_withdrawn() -> None:
    service = email()
    service.publish_workaround(
        workaround_id="webmail", channel="Webmail", instructions="Use webmail.", provenance=OPS
    )
    with pytest.raises(Conflict):
        service.publish_workaround(
            workaround_id="webmail", channel="Webmail", instructions="Again", provenance=OPS
        )
    assert [w.channel for w in service.active_workarounds] == ["Webmail"]
    service.withdraw_workaround(workaround_id="webmail", provenance=OPS)
    assert service.active_workarounds == []
    with pytest.raises(InvalidTransition, match="already withdrawn"):
        service.withdraw_workaround(workaround_id="webmail", provenance=OPS)
    with pytest.raises(NotFound, match="no workaround 'fax'"):
        service.withdraw_workaround(workaround_id="fax", provenance=OPS)


def test_a_correction_replaces_the_value_and_keeps_both_in_history() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(5))
    wrong_version = service.version
    with pytest.raises(ValidationError, match="reason is required"):
        service.correct(version=wrong_version, changes={"status": "PARTIAL_OUTAGE"}, provenance=OPS)
    service.correct(
        version=wrong_version,
        changes={"status": "PARTIAL_OUTAGE"},
        provenance=Provenance("lead", reason="Only some mailboxes were down"),
    )
    assert service.status is Status.PARTIAL_OUTAGE
    assert service.version == wrong_version + 1  # a new event; the old one is untouched
    events = service.collect_events()
    assert type(events[-2]).__name__ == "StatusReported" and events[-2].status == "MAJOR_OUTAGE"
    assert type(events[-1]).__name__ == "Corrected"


def test_corrections_refuse_unknown_versions_and_fields() -> None:
    service = email()
    fix = Provenance("lead", reason="typo")
    with pytest.raises(NotFound, match="no version 7"):
        service.correct(version=7, changes={"name": "Mail"}, provenance=fix)
    with pytest.raises(ValidationError, match="only category, description"):
        service.correct(version=1, changes={"slug": "mail"}, provenance=fix)
    service.correct(version=1, changes={"name": "Staff email"}, provenance=fix)
    assert service.name == "Staff email"
    with pytest.raises(InvalidTransition, match="not a fact that can be corrected"):
        service.correct(version=2, changes={"name": "x"}, provenance=fix)


def test_replaying_the_events_gives_the_same_state() -> None:
    service = email()
    service.report_status(status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(5))
    service.set_eta(expected_at=NOW + timedelta(days=3), confidence="LOW", provenance=at(4, "x"))
    service.correct(version=2, changes={"phase": "ASSESSING"}, provenance=Provenance("l", reason="r"))
    replayed = None
    for domain_event in service.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert (replayed.status, replayed.phase, replayed.eta) == (service.status, service.phase, service.eta)
