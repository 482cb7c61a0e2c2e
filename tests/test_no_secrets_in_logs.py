"""No token and no webhook secret reaches a log, even at DEBUG, in any flow that carries one."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import httpx
import pytest
from click.testing import Result
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from typer.testing import CliRunner

from api.cli import cli
from api.webhook_safety import ALLOW_PRIVATE_ENV
from domain.application import RestorationApp
from domain.values import Provenance
from tests.graphql_support import served_over_tcp
from tests.webhook_support import receiving, sending

WAIT_SECONDS = 20  # only how long a broken build may hang, never a threshold
CREATE_WEBHOOK = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret } }"
REPORT = "mutation($i: ReportStatusInput!) { reportStatus(input: $i) { position } }"
LIVE_EVENTS = "subscription { restorationEvents(after: 0) { position } }"
SERVICES = {"query": "{ services { slug } }"}
WINDOW = 10
"""Characters of a secret that may not appear together in a log: a line cut short (a
websocket frame, say) shows only part of one, and 10 random characters never occur by chance."""


def command(database_url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"DATABASE_URL": database_url, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def next_payload(ws: AsyncWebSocketSession, operation: str) -> Any:
    while True:
        message = await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)
        if message.get("id") == operation:
            assert message["type"] == "next", message
            return message["payload"]


def windows(secret: str) -> set[str]:
    body = secret.split("_", 1)[1]  # past the prefix (rt_, whsec_), which the logs may name
    return {body[start:start + WINDOW] for start in range(len(body) - WINDOW + 1)}


async def test_no_secret_reaches_the_logs(
    app: RestorationApp, database_url: str, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")  # the webhook receiver listens on loopback
    created = [command(database_url, "token", "create", "--role", role, "--name", f"log-check-{role}")
               for role in ("admin", "operator")]
    admin, operator = (result.stdout.strip().splitlines()[-1] for result in created)
    listed = command(database_url, "token", "list")
    admin_id = next(line.split()[1] for line in listed.stdout.splitlines() if "log-check-admin" in line)
    guesses = ["rt_" + secrets.token_urlsafe(32) for _ in range(2)]
    email = app.register_service(slug="email", name="Email", category="Systems", provenance=Provenance("ops"))

    with served_over_tcp(app, database_url, log_level="debug", auth_failures_per_minute=2) as address, \
            receiving() as receiver, sending(database_url):
        base = f"http://{address}"
        async with httpx.AsyncClient(base_url=base) as client:
            # The admin's console: the token in connection_init and, as some clients do, in the
            # upgrade request's headers too; a webhook created over it, so its secret is in a frame.
            async with aconnect_ws(f"{base}/graphql", client, subprotocols=["graphql-transport-ws"],
                                   headers=bearer(admin)) as ws:
                await ws.send_json({"type": "connection_init", "payload": bearer(admin)})
                assert (await ws.receive_json())["type"] == "connection_ack"
                await ws.send_json({"id": "hook", "type": "subscribe",
                                    "payload": {"query": CREATE_WEBHOOK, "variables": {"i": {"url": receiver.url}}}})
                receiver.secret = webhook_secret = (await next_payload(ws, "hook"))["data"]["createWebhook"]["secret"]
                await ws.send_json({"id": "live", "type": "subscribe", "payload": {"query": LIVE_EVENTS}})

                reported = (await client.post("/graphql", headers=bearer(operator), json={
                    "query": REPORT, "variables": {"i": {"serviceId": str(email.id), "status": "MAJOR_OUTAGE"}}})).json()
                assert "errors" not in reported, reported
                for _ in range(WAIT_SECONDS * 20):  # the delivery, signed with the secret
                    if receiver.first_deliveries():
                        break
                    await asyncio.sleep(0.05)
                assert receiver.first_deliveries()

                await asyncio.to_thread(command, database_url, "token", "revoke", admin_id)
                with pytest.raises(WebSocketDisconnect):
                    while True:
                        await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)

            statuses = [(await client.post("/graphql", json=SERVICES, headers=bearer(token))).status_code
                        for token in [admin, *guesses]]
            assert statuses == [200, 200, 429]  # the revoked token and a guess fail (200 with errors); limited
            async with aconnect_ws(f"{base}/graphql", client, subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send_json({"type": "connection_init", "payload": bearer(guesses[0])})
                with pytest.raises(WebSocketDisconnect):
                    await asyncio.wait_for(ws.receive_json(), WAIT_SECONDS)

    printed = capfd.readouterr()
    logs = "\n".join([caplog.text, printed.out, printed.err, *(result.stderr for result in created), listed.stderr])
    # What was heard: the access log, websocket frames and handshakes, the webhook sender.
    assert '"POST /graphql HTTP/1.1" 429' in logs and "< TEXT" in logs and "webhook sender" in logs
    named = {"admin token": admin, "operator token": operator, "webhook secret": webhook_secret,
             **{f"guessed token {n}": guess for n, guess in enumerate(guesses)}}
    leaked = [name for name, secret in named.items() if any(fragment in logs for fragment in windows(secret))]
    assert not leaked, f"part of each of these is in the logs: {', '.join(leaked)}"
