"""The audit chain: sealing, and finding exactly where the stored history was tampered with."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.audit import generate_signing_key
from api.demo import load_demo
from domain.application import RestorationApp
from domain.values import Provenance
from projections.audit_chain import (
    GENESIS,
    AuditChain,
    chain_hash,
    checkpoint_message,
    checkpoints,
    history,
    load_public_key,
    load_signing_key,
    verify_chain,
)
from projections.runner import catch_up, create_tables, rebuild, table_rows
from projections.base import event_data
from tests.projection_support import eventful_history, log_of

OPS = Provenance("ops@example.org")
EVENTS = "restoration_events"


def seal(app: RestorationApp, url: str, sealer: AuditChain | None = None) -> int:
    sealer = sealer or AuditChain(checkpoint_every=10)
    with psycopg.connect(url) as connection:
        create_tables(connection, sealer)
        return catch_up(connection, log_of(app), sealer, batch_size=7)


def verify(url: str, **options: object):  # type: ignore[no-untyped-def]
    with psycopg.connect(url) as connection:
        return verify_chain(connection, EVENTS, **options)  # type: ignore[arg-type]


def edit_state(position: int, old: str, new: str) -> str:
    """SQL that rewrites text inside one stored event's state, as an intruder would."""
    return (f"UPDATE {EVENTS} SET state = convert_to(replace(convert_from(state, 'UTF8'), '{old}', '{new}'), 'UTF8') "
            f"WHERE notification_id = {position}")


def tamper(url: str, statement: str, *params: object) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(statement, params)


def test_an_untouched_history_verifies_up_to_the_head(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    head = seal(app, database_url)
    report = verify(database_url)
    assert report.intact and report.problem is None
    assert (report.head, report.sealed_head, report.verified_up_to, report.events_verified) == (head, head, head, head)
    assert report.unsealed == 0
    assert report.checkpoints_verified == head // 10 == report.unsigned_checkpoints


def test_each_seal_is_the_documented_encoding_of_the_stored_event(app: RestorationApp, database_url: str) -> None:
    app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    seal(app, database_url)
    with psycopg.connect(database_url) as connection:
        originator_id, version, topic, state = connection.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {EVENTS}").fetchone()
        position, hash_, previous = connection.execute(
            "SELECT position, hash, previous_hash FROM audit_chain").fetchone()
    encoding = (GENESIS + position.to_bytes(8, "big") + originator_id.bytes + version.to_bytes(8, "big")
                + len(topic.encode()).to_bytes(4, "big") + topic.encode() + len(state).to_bytes(4, "big") + state)
    assert hash_ == hashlib.sha256(encoding).digest() == chain_hash(GENESIS, position, originator_id.bytes,
                                                                    version, topic.encode(), state)
    assert previous == GENESIS


def test_a_gap_left_by_a_failed_insert_is_sealed_as_a_gap(app: RestorationApp, database_url: str) -> None:
    app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    tamper(database_url, f"SELECT nextval('{EVENTS}_notification_id_seq')")  # what a rolled-back insert does
    app.register_service(slug="phones", name="Phones", category="Contact", provenance=OPS)
    assert seal(app, database_url) == 3
    report = verify(database_url)
    assert report.intact and report.events_verified == 2 and report.verified_up_to == 3


def test_events_not_yet_sealed_are_counted_not_called_tampering(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    sealed = seal(app, database_url)
    for slug in ("extra-1", "extra-2"):
        app.register_service(slug=slug, name=slug, category="Systems", provenance=OPS)
    report = verify(database_url)
    assert report.intact
    assert (report.sealed_head, report.unsealed, report.head) == (sealed, 2, sealed + 2)


@pytest.mark.parametrize(
    ("statement", "at", "reason"),
    [
        pytest.param(edit_state(1, "Email", "Emai1"), 1, "changed", id="state changed"),
        pytest.param(f"UPDATE {EVENTS} SET topic = 'domain.service:Service.Registered' "
                     "WHERE notification_id = 40 AND topic <> 'domain.service:Service.Registered'",
                     40, "changed", id="type changed"),
        pytest.param(f"DELETE FROM {EVENTS} WHERE notification_id = 30", 30, "missing", id="event deleted"),
        pytest.param(f"UPDATE {EVENTS} e SET state = o.state FROM {EVENTS} o WHERE "
                     "(e.notification_id, o.notification_id) IN ((20, 50), (50, 20))", 20, "reordered",
                     id="payloads swapped"),
        pytest.param(f"DELETE FROM {EVENTS} WHERE notification_id >= 70", 70, "missing", id="tail truncated"),
    ],
)
def test_tampering_is_found_at_the_exact_position(
    app: RestorationApp, database_url: str, statement: str, at: int, reason: str
) -> None:
    load_demo(app)
    seal(app, database_url)
    tamper(database_url, statement)
    report = verify(database_url)
    assert not report.intact and report.problem is not None
    assert (report.problem.position, report.problem.reason) == (at, reason), report.problem.detail
    assert report.verified_up_to == at - 1


def test_an_event_slipped_into_a_sealed_gap_is_found(app: RestorationApp, database_url: str) -> None:
    app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    tamper(database_url, f"SELECT nextval('{EVENTS}_notification_id_seq')")
    app.register_service(slug="phones", name="Phones", category="Contact", provenance=OPS)
    seal(app, database_url)
    tamper(database_url, f"INSERT INTO {EVENTS} SELECT originator_id, 99, topic, state, 2 FROM {EVENTS} "
                         "WHERE notification_id = 1")
    problem = verify(database_url).problem
    assert problem is not None and (problem.position, problem.reason) == (2, "inserted")


def test_removing_an_event_with_its_seal_breaks_the_next_link(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    seal(app, database_url)
    tamper(database_url, f"DELETE FROM {EVENTS} WHERE notification_id = 30")
    tamper(database_url, "DELETE FROM audit_chain WHERE position = 30")
    problem = verify(database_url).problem
    assert problem is not None and (problem.position, problem.reason) == (31, "missing")


def test_removing_the_tail_with_its_seals_is_found_from_the_sealers_own_position(
    app: RestorationApp, database_url: str
) -> None:
    load_demo(app)
    seal(app, database_url)
    tamper(database_url, f"DELETE FROM {EVENTS} WHERE notification_id >= 70")
    tamper(database_url, "DELETE FROM audit_chain WHERE position >= 70")
    tamper(database_url, "DELETE FROM audit_checkpoints WHERE position >= 70")
    problem = verify(database_url).problem
    assert problem is not None and (problem.position, problem.reason) == (70, "missing")


def test_rebuilding_the_sealer_gives_the_same_rows_signatures_included(
    app: RestorationApp, database_url: str
) -> None:
    load_demo(app)
    sealer = AuditChain(checkpoint_every=10, signing_key=Ed25519PrivateKey.generate())
    seal(app, database_url, sealer)
    with psycopg.connect(database_url) as connection:
        before = {t: table_rows(connection, t) for t in sealer.tables}
        rebuild(connection, log_of(app), sealer, batch_size=13)
        after = {t: table_rows(connection, t) for t in sealer.tables}
    assert before == after and len(after["audit_checkpoints"]) == 8


def test_signed_checkpoints_verify_with_the_public_key_only(
    app: RestorationApp, database_url: str, tmp_path: Path
) -> None:
    load_demo(app)
    public_path = generate_signing_key(tmp_path / "signing.pem")
    seal(app, database_url, AuditChain(checkpoint_every=10, signing_key=load_signing_key(tmp_path / "signing.pem")))
    with psycopg.connect(database_url) as connection:
        published = list(checkpoints(connection))
    public_key = load_public_key(public_path)
    assert [c.position for c in published] == list(range(10, 81, 10))
    assert all(c.signed_by(public_key) for c in published)
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        (tenth,) = log_of(app).read(cursor, 9, 1)
    assert published[0].recorded_at == tenth.recorded_at
    report = verify(database_url, public_keys=[public_key])
    assert report.intact and report.signatures_verified == 8 and report.unsigned_checkpoints == 0
    stranger = Ed25519PrivateKey.generate().public_key()
    problem = verify(database_url, public_keys=[stranger]).problem
    assert problem is not None and (problem.position, problem.reason) == (10, "signature")


def test_a_forged_checkpoint_signature_is_found(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    key = Ed25519PrivateKey.generate()
    seal(app, database_url, AuditChain(checkpoint_every=10, signing_key=key))
    with psycopg.connect(database_url) as connection:
        (recorded_at,) = connection.execute("SELECT recorded_at FROM audit_checkpoints WHERE position = 30").fetchone()
    forged = Ed25519PrivateKey.generate().sign(checkpoint_message(30, bytes(32), recorded_at))
    tamper(database_url, "UPDATE audit_checkpoints SET signature = %s WHERE position = 30", forged)
    problem = verify(database_url, public_keys=[key.public_key()]).problem
    assert problem is not None and (problem.position, problem.reason) == (30, "signature")


def test_a_history_re_sealed_after_tampering_contradicts_its_checkpoints(app: RestorationApp, database_url: str) -> None:
    """Someone with the database but not the key rewrites an event and recomputes every seal."""
    load_demo(app)
    seal(app, database_url)
    tamper(database_url, edit_state(25, '"actor":"', '"actor":"not '))
    with psycopg.connect(database_url) as connection:
        previous = bytes(connection.execute("SELECT hash FROM audit_chain WHERE position = 24").fetchone()[0])
        rows = connection.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS} "
            "WHERE notification_id >= 25 ORDER BY notification_id").fetchall()
        for position, originator_id, version, topic, state in rows:
            hash_ = chain_hash(previous, position, originator_id.bytes, version, topic.encode(), state)
            connection.execute(
                "UPDATE audit_chain SET hash = %s, previous_hash = %s, state_digest = %s WHERE position = %s",
                (hash_, previous, hashlib.sha256(state).digest(), position))
            previous = hash_
    problem = verify(database_url).problem
    assert problem is not None and (problem.position, problem.reason) == (30, "checkpoint")


def test_the_sealer_is_configured_from_the_environment(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "key.pem")
    sealer = AuditChain.from_env({"RESTORATION_SIGNING_KEY": str(tmp_path / "key.pem"),
                                  "RESTORATION_CHECKPOINT_EVERY": "250"})
    assert sealer.checkpoint_every == 250 and sealer.signing_key is not None
    unsigned = AuditChain.from_env({})
    assert unsigned.checkpoint_every == 1000 and unsigned.signing_key is None
    with pytest.raises(ValueError, match="Cannot read the Ed25519 signing key"):
        AuditChain.from_env({"RESTORATION_SIGNING_KEY": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match="whole number"):
        AuditChain.from_env({"RESTORATION_CHECKPOINT_EVERY": "often"})


def test_the_exported_history_says_what_the_application_decodes(app: RestorationApp, database_url: str) -> None:
    """The export reads the stored JSON itself (for speed); it must carry the same facts as
    the application's own decoding, for every kind of event, corrections included."""
    eventful_history(app)
    head = seal(app, database_url)
    with psycopg.connect(database_url) as connection:
        records = list(history(connection, EVENTS))
    stored = {n.id: n for n in app.recorder.select_notifications(1, head)}
    assert [r["position"] for r in records] == sorted(stored)
    for record in records:
        event = app.mapper.to_domain_event(stored[record["position"]])
        assert (record["originatorId"], record["version"], record["type"]) == (
            str(event.originator_id), event.originator_version, type(event).__qualname__)
        assert record["recordedAt"] == event.timestamp.isoformat()
        assert record["payload"] == event_data(event)
        assert record["occurredAt"] == record["payload"].get("occurred_at")
        assert record["hash"] is not None and len(record["hash"]) == 64
    assert {r["type"] for r in records} >= {"Service.Corrected", "Incident.Corrected", "Incident.Closed"}
