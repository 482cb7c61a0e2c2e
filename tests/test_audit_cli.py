"""``restoration audit``: keys, checkpoints, verify and export, as an auditor runs them."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from api.cli import cli

EVENTS = "restoration_events"


def run(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "400", **env})  # no wrapped messages


def sealed_demo(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The demo, sealed by a worker that signs a checkpoint every 10 events; the CLI's environment."""
    assert run({}, "audit", "keygen", "--out", str(tmp_path / "signing.pem")).exit_code == 0
    env = {"DATABASE_URL": database_url, "RESTORATION_SIGNING_KEY": str(tmp_path / "signing.pem"),
           "RESTORATION_CHECKPOINT_EVERY": "10"}
    assert run(env, "demo").exit_code == 0
    rebuilt = run(env, "rebuild", "audit_chain")
    assert rebuilt.exit_code == 0, rebuilt.output
    return env


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    result = run({}, "audit", "keygen", "--out", str(tmp_path / "k.pem"))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert str(tmp_path / "k.pem.pub") in result.stdout
    assert b"PUBLIC KEY" in (tmp_path / "k.pem.pub").read_bytes()
    again = run({}, "audit", "keygen", "--out", str(tmp_path / "k.pem"))
    assert again.exit_code == 2 and "already exists" in again.output


def test_verify_passes_then_names_the_tampered_position(database_url: str, tmp_path: Path) -> None:
    env = sealed_demo(database_url, tmp_path)
    key = str(tmp_path / "signing.pem.pub")
    intact = run(env, "audit", "verify", "--public-key", key)
    assert intact.exit_code == 0, intact.output
    assert "Intact: 84 events up to position 84" in intact.stdout
    assert "8 checkpoint signatures are valid" in intact.stdout
    with psycopg.connect(database_url) as connection:
        connection.execute(f"DELETE FROM {EVENTS} WHERE notification_id = 42")
    tampered = run(env, "audit", "verify", "--public-key", key)
    assert tampered.exit_code == 1
    assert "TAMPERED at position 42 (missing)" in tampered.stdout
    assert "intact up to position 41" in tampered.stdout


def test_checkpoints_print_as_json_lines(database_url: str, tmp_path: Path) -> None:
    env = sealed_demo(database_url, tmp_path)
    result = run(env, "audit", "checkpoints")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [c["position"] for c in lines] == list(range(10, 81, 10))
    assert all(len(c["hash"]) == 64 and c["signature"] and c["keyId"] for c in lines)


def test_export_is_resumable_and_carries_the_chain(database_url: str, tmp_path: Path) -> None:
    env = sealed_demo(database_url, tmp_path)
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    assert run(env, "audit", "export", "--out", str(whole)).exit_code == 0
    first = run(env, "audit", "export", "--until", "30", "--out", str(part))
    assert first.exit_code == 0, first.output
    rest = run(env, "audit", "export", "--after", "30", "--out", str(part))
    assert rest.exit_code == 0, rest.output
    assert part.read_text() == whole.read_text()
    records = [json.loads(line) for line in whole.read_text().splitlines()]
    assert [r["position"] for r in records] == list(range(1, 85))
    assert all(r["previousHash"] == before["hash"] for before, r in zip(records, records[1:]))
    first_status = next(r for r in records if r["type"] == "Service.StatusReported")
    assert first_status["occurredAt"] == "2022-06-17T10:00:00+01:00"
    assert first_status["actor"] == "it.recovery@clarion.example"
    assert first_status["payload"]["status"] == "MAJOR_OUTAGE"
    assert first_status["recordedAt"] > "2022"


def test_export_as_csv_to_stdout_and_until_a_time(database_url: str, tmp_path: Path) -> None:
    env = sealed_demo(database_url, tmp_path)
    everything = run(env, "audit", "export", "--format", "csv")
    assert everything.exit_code == 0, everything.output
    rows = list(csv.DictReader(everything.stdout.splitlines()))
    assert len(rows) == 84 and json.loads(rows[0]["payload"])["slug"] == "email"
    recorded = rows[-1]["recordedAt"]
    before_all = run(env, "audit", "export", "--format", "csv", "--until", "2000-01-01T00:00:00Z")
    assert list(csv.DictReader(before_all.stdout.splitlines())) == []
    up_to_now = run(env, "audit", "export", "--format", "csv", "--until", recorded)
    assert len(list(csv.DictReader(up_to_now.stdout.splitlines()))) == 84
    naive = run(env, "audit", "export", "--until", "2022-07-01T12:00")
    assert naive.exit_code == 2 and "no offset" in naive.output


def test_replay_compares_every_view_with_the_log(app: RestorationApp, database_url: str) -> None:
    from api.composition import event_log, prepare_read_side
    from api.demo import load_demo
    from projections.catalog import all_projections
    from projections.runner import catch_up

    load_demo(app)
    prepare_read_side(database_url)
    with psycopg.connect(database_url) as connection:
        for projection in all_projections():
            catch_up(connection, event_log(app), projection)
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    clean = runner.invoke(cli, ["audit", "replay"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "All 8 views are exactly what the event log gives." in clean.output

    with psycopg.connect(database_url) as connection:  # someone edits a view by hand
        connection.execute("UPDATE current_services SET status = 'OPERATIONAL' WHERE slug = 'telephony'")
    tampered = runner.invoke(cli, ["audit", "replay"], env=env)
    assert tampered.exit_code == 1
    assert "services: 2 rows differ" in tampered.output
    assert "current_services: only in live" in tampered.output
