"""Webhooks end to end: real events, the dispatcher, the sender, and a receiver on loopback
that checks every signature with the `standardwebhooks` package."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.demo import DEMO_INCIDENT_ID, load_demo
from api.webhook_safety import ALLOW_PRIVATE_ENV, RefusedDestination, check_url
from api.webhook_sender import RetrySchedule, signed_headers
from api.webhooks import CreatedWebhook, create_webhook, delete_webhook, list_webhooks, webhook_deliveries
from domain.application import RestorationApp
from domain.errors import NotFound, ValidationError
from domain.values import Provenance
from projections.runner import catch_up, create_tables, rebuild
from projections.webhook_outbox import Endpoint, WebhookOutbox
from tests.projection_support import eventually, log_of, running_worker
from tests.webhook_support import receiving, sending

OPS = Provenance("ops@example.org")
ADMIN = "admin@example.org"


@pytest.fixture
def private_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers in these tests listen on loopback."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")


def create(database_url: str, app: RestorationApp, url: str, **filters: Any) -> CreatedWebhook:
    with psycopg.connect(database_url) as connection:
        return create_webhook(connection, log_of(app), url=url, actor=ADMIN, **filters)


def endpoint(database_url: str, endpoint_id: UUID) -> Endpoint:
    with psycopg.connect(database_url) as connection:
        (found,) = [e for e in list_webhooks(connection) if e.id == endpoint_id]
    return found


def write_status_reports(app: RestorationApp, count: int, services: int = 10) -> list[int]:
    """``count`` events: ``services`` registrations, then status reports; their positions."""
    ids = [app.register_service(slug=f"svc-{n}", name=f"Service {n}", category="Test",
                                resident_facing=True, provenance=OPS) for n in range(services)]
    statuses = ["MAJOR_OUTAGE", "PARTIAL_OUTAGE", "DEGRADED_PERFORMANCE", "OPERATIONAL"]
    reports = [app.report_status(ids[n % services].id, status=statuses[n % 4], provenance=OPS)
               for n in range(count - services)]
    return [r.position for r in [*ids, *reports]]


@contextmanager
def delivering(database_url: str, app: RestorationApp, **options: Any) -> Iterator[None]:
    with running_worker(database_url, app, [WebhookOutbox()], heartbeat_seconds=0.2), sending(database_url, **options):
        yield


def test_a_receiver_that_was_down_then_failing_gets_every_event_once_and_in_order(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    with receiving(start=False) as receiver:
        created = create(database_url, app, receiver.url)
        receiver.secret = created.secret
        with delivering(database_url, app):
            positions = write_status_reports(app, 200)
            eventually(lambda: "ConnectError" in (endpoint(database_url, created.endpoint.id).last_error or ""),
                       "a refused connection to be logged")
            receiver.status = 500
            receiver.start()
            eventually(lambda: endpoint(database_url, created.endpoint.id).last_status == 500, "a 500 to be logged")
            receiver.status = 200
            eventually(lambda: len(receiver.first_deliveries()) == 200, "every event to arrive")
            eventually(lambda: endpoint(database_url, created.endpoint.id).pending == 0, "the log to catch up")
        assert [p["position"] for p in receiver.first_deliveries()] == positions
        assert receiver.rejected == []
        stats = endpoint(database_url, created.endpoint.id)
    assert (stats.delivered, stats.pending, stats.last_status) == (200, 0, 200)
    assert stats.failed >= 2 and stats.disabled_at is None


def test_a_message_carries_the_event_so_the_receiver_needs_no_second_call(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    with receiving() as receiver:
        created = create(database_url, app, receiver.url)
        receiver.secret = created.secret
        with delivering(database_url, app):
            email = app.register_service(slug="email", name="Email", category="Systems",
                                         resident_facing=True, provenance=OPS)
            report = app.report_status(email.id, status="MAJOR_OUTAGE", public_note="Down", provenance=OPS)
            eventually(lambda: len(receiver.received) == 2, "both events to arrive")
    message_id, payload = receiver.received[1]
    assert message_id == f"msg_{created.endpoint.id.hex}_{report.position}"
    assert payload["type"] == "StatusReported" and payload["position"] == report.position
    assert payload["serviceId"] == str(email.id) and payload["public"] is True
    assert payload["occurredAt"] and payload["recordedAt"] and payload["summary"].startswith("Email: major outage")
    assert payload["data"]["status"] == "MAJOR_OUTAGE" and payload["data"]["public_note"] == "Down"


def test_the_receiver_rejects_a_bad_signature_and_a_stale_timestamp() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    with receiving() as receiver:
        receiver.secret = secret
        body = b'{"type":"StatusReported","position":1}'
        good = signed_headers(secret, "msg_1", body)
        forged = signed_headers("whsec_" + base64.b64encode(b"x" * 32).decode(), "msg_1", body)
        stale = signed_headers(secret, "msg_1", body, timestamp=int(time.time()) - 600)
        answers = [httpx.post(receiver.url, content=body, headers=h).status_code for h in (good, forged, stale)]
    assert answers == [200, 400, 400]
    assert receiver.rejected == ["No matching signature found", "Message timestamp too old"]


def test_410_gone_disables_the_endpoint(app: RestorationApp, database_url: str, private_allowed: None) -> None:
    with receiving() as receiver:
        created = create(database_url, app, receiver.url)
        receiver.secret, receiver.status = created.secret, 410
        with delivering(database_url, app):
            app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
            eventually(lambda: endpoint(database_url, created.endpoint.id).disabled_at is not None, "the endpoint to be disabled")
            app.register_service(slug="phones", name="Phones", category="Contact", provenance=OPS)
            stats = endpoint(database_url, created.endpoint.id)
    assert stats.last_status == 410 and "410" in (stats.disabled_reason or "")
    assert stats.delivered == 0 and stats.failed == 1


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hooks", "http://localhost/hooks", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/", "http://100.100.100.200/", "http://0.0.0.0/", "https://224.0.0.1/",
])
def test_private_loopback_link_local_and_metadata_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(RefusedDestination, match="webhooks are only sent to public addresses"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True).host


def test_public_addresses_pass() -> None:
    assert check_url("https://93.184.215.14:8443/hooks", allow_private=False).port == 8443
    assert check_url("http://[2001:4860:4860::8888]/", allow_private=False).host == "2001:4860:4860::8888"


@pytest.mark.parametrize("url", ["ftp://example.org/", "/hooks", "http://", "not a url"])
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(RefusedDestination, match="must be an absolute http:// or https:// URL|not a valid URL"):
        check_url(url, allow_private=True)


def test_creating_a_webhook_to_a_private_address_needs_the_flag(
    app: RestorationApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    with pytest.raises(ValidationError, match="127.0.0.1 resolves to 127.0.0.1, a loopback address"):
        create(database_url, app, "http://127.0.0.1:9/hooks")
    with pytest.raises(ValidationError, match="url must not be empty"):
        create(database_url, app, " ")
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    # A lone surrogate passed the URL check, then failed the insert as an internal error.
    with pytest.raises(ValidationError, match="unwritable character"):
        create(database_url, app, "http://127.0.0.1:9/\ud800")
    assert create(database_url, app, "http://127.0.0.1:9/hooks").endpoint.url == "http://127.0.0.1:9/hooks"


def test_a_private_address_is_refused_again_at_send_time(
    app: RestorationApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if the host's DNS answer had changed to a private address since it was checked."""
    with receiving() as receiver:
        monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
        created = create(database_url, app, receiver.url)
        monkeypatch.delenv(ALLOW_PRIVATE_ENV)
        receiver.secret = created.secret
        with delivering(database_url, app):
            app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
            eventually(lambda: endpoint(database_url, created.endpoint.id).failed >= 1, "the attempt to be refused")
        stats = endpoint(database_url, created.endpoint.id)
    assert receiver.received == [] and stats.pending == 1
    assert (stats.last_error or "").startswith("Refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address")


def test_the_secret_is_a_standard_webhooks_secret_shown_once(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    created = create(database_url, app, "http://127.0.0.1:9/hooks", description="Website")
    assert created.secret.startswith("whsec_") and len(base64.b64decode(created.secret[6:])) >= 24
    assert created.secret != create(database_url, app, "http://127.0.0.1:9/hooks").secret
    with psycopg.connect(database_url) as connection:
        listed = list_webhooks(connection)
    assert created.secret not in repr(listed)
    assert [(e.url, e.description) for e in listed] == [("http://127.0.0.1:9/hooks", "Website"), ("http://127.0.0.1:9/hooks", None)]


def dispatched(database_url: str, endpoint_id: UUID) -> list[tuple[str, bool]]:
    """(kind, public) of each delivery queued for the endpoint."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT m.kind, (m.body::jsonb->>'public')::boolean FROM webhook_deliveries d "
            "JOIN webhook_messages m USING (position) WHERE d.endpoint_id = %s ORDER BY d.position",
            (endpoint_id,),
        ).fetchall()
    return [(kind, public) for kind, public in rows]


def test_filters_choose_kinds_services_and_public_events_from_creation_on(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    load_demo(app)
    telephony = app.service_by_slug("telephony").id  # resident-facing
    email = app.service_by_slug("email").id  # staff only
    url = "http://127.0.0.1:9/hooks"
    everything = create(database_url, app, url).endpoint.id
    public = create(database_url, app, url, public_only=True).endpoint.id
    statuses = create(database_url, app, url, kinds=["StatusReported"], service_ids=[telephony]).endpoint.id
    app.report_status(telephony, status="PARTIAL_OUTAGE", provenance=OPS)
    app.report_status(email, status="PARTIAL_OUTAGE", provenance=OPS)
    impact = app.record_impact(DEMO_INCIDENT_ID, residents_affected=1, provenance=OPS)
    app.correct_event(impact.position, changes={"residents_affected": 2}, provenance=Provenance("l", reason="typo"))
    update = app.post_update(DEMO_INCIDENT_ID, audience="PUBLIC", message="Phones are back", service_ids=[telephony], provenance=OPS)
    app.correct_event(update.position, changes={"message": "Phones are back."}, provenance=Provenance("l", reason="typo"))
    with psycopg.connect(database_url) as connection:
        create_tables(connection, WebhookOutbox())
        catch_up(connection, log_of(app), WebhookOutbox(), batch_size=3)
        with pytest.raises(ValueError, match="cannot be rebuilt"):  # it would send everything again
            rebuild(connection, log_of(app), WebhookOutbox())
    assert dispatched(database_url, everything) == [
        ("StatusReported", True), ("StatusReported", False), ("ImpactRecorded", False), ("Corrected", False),
        ("UpdatePosted", True), ("Corrected", True),
    ]
    assert dispatched(database_url, public) == [("StatusReported", True), ("UpdatePosted", True), ("Corrected", True)]
    assert dispatched(database_url, statuses) == [("StatusReported", True)]


def test_a_service_corrected_to_staff_only_stops_going_to_public_endpoints(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    phones = app.register_service(slug="phones", name="Phones", category="Contact", resident_facing=True, provenance=OPS)
    public = create(database_url, app, "http://127.0.0.1:9/hooks", public_only=True).endpoint.id
    app.report_status(phones.id, status="MAJOR_OUTAGE", provenance=OPS)
    app.correct_event(1, changes={"resident_facing": False}, provenance=Provenance("l", reason="staff line"))
    app.report_status(phones.id, status="PARTIAL_OUTAGE", provenance=OPS)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, WebhookOutbox())
        catch_up(connection, log_of(app), WebhookOutbox())
    assert dispatched(database_url, public) == [("StatusReported", True), ("Corrected", True)]


def test_unknown_kinds_are_refused_and_deleting_twice_is_not_found(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    with pytest.raises(ValidationError, match="Unknown event kinds StatusChanged"):
        create(database_url, app, "http://127.0.0.1:9/", kinds=["StatusChanged"])
    created = create(database_url, app, "http://127.0.0.1:9/", kinds=["StatusReported"])
    app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    with psycopg.connect(database_url) as connection:
        delete_webhook(connection, created.endpoint.id)
        assert list_webhooks(connection) == []
        with pytest.raises(NotFound):
            delete_webhook(connection, created.endpoint.id)
        with pytest.raises(NotFound):
            webhook_deliveries(connection, created.endpoint.id)


def test_the_delivery_log_keeps_status_attempts_and_a_short_response(
    app: RestorationApp, database_url: str, private_allowed: None
) -> None:
    with receiving() as receiver:
        created = create(database_url, app, receiver.url)
        receiver.secret, receiver.status = created.secret, 503
        with delivering(database_url, app, schedule=RetrySchedule(first_seconds=3600)):
            app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
            eventually(lambda: endpoint(database_url, created.endpoint.id).failed == 1, "the first attempt")
        with psycopg.connect(database_url) as connection:
            (entry,) = webhook_deliveries(connection, created.endpoint.id)
    assert (entry.position, entry.kind, entry.attempts, entry.status_code) == (1, "Registered", 1, 503)
    assert entry.last_error == "HTTP 503" and entry.response_prefix == '{"status": 503}'
    assert entry.delivered_at is None and entry.next_attempt_at is not None
    assert entry.next_attempt_at > entry.last_attempt_at  # an hour, less up to half for jitter


def test_the_back_off_grows_to_its_cap_with_jitter() -> None:
    schedule = RetrySchedule(first_seconds=5, factor=2, max_seconds=86400, jitter=0.5)
    delays = [schedule.delay(n, random.Random(n)) for n in range(1, 30)]
    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10
    assert all(43200 <= d <= 86400 for d in delays[-5:])
