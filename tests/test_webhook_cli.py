"""The webhook commands: `restoration webhooks send|list`, and `rebuild` leaving the outbox alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli import cli
from api.webhook_safety import ALLOW_PRIVATE_ENV
from api.webhooks import create_webhook
from domain.application import RestorationApp
from domain.values import Provenance
from projections.webhook_outbox import WebhookOutbox
from tests.projection_support import eventually, log_of, running_worker
from tests.webhook_support import receiving

ROOT = Path(__file__).resolve().parent.parent
OPS = Provenance("ops@example.org")


def test_help_lists_webhooks_and_the_relay() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "webhooks" in result.output and "relay" in result.output


def test_rebuild_leaves_the_outbox_alone(app: RestorationApp, database_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    refused = runner.invoke(cli, ["rebuild", "webhook_outbox"], env=env)
    assert refused.exit_code == 2 and "dispatcher" in refused.output
    everything = runner.invoke(cli, ["rebuild"], env=env)
    assert everything.exit_code == 0, everything.output
    rebuilt = everything.output[everything.output.index("Rebuilt "):]
    assert "timeline" in rebuilt and "webhook_outbox" not in rebuilt


def test_webhooks_send_delivers_until_sigterm_and_list_shows_it(
    app: RestorationApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    with receiving() as receiver, running_worker(database_url, app, [WebhookOutbox()]):
        with psycopg.connect(database_url) as connection:
            receiver.secret = create_webhook(connection, log_of(app), url=receiver.url, actor="admin").secret
        sender = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "webhooks", "send"],
            env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
            eventually(lambda: len(receiver.received) == 1, "the sender to deliver")
        finally:
            sender.send_signal(signal.SIGTERM)
            output, _ = sender.communicate(timeout=30)
    assert sender.returncode == 0, output.decode()
    assert b"Stopped." in output
    listed = CliRunner().invoke(cli, ["webhooks", "list"], env={"DATABASE_URL": database_url})
    assert listed.exit_code == 0 and receiver.url in listed.output
