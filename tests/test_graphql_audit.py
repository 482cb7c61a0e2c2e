"""Auditors through the API: sealed events, the chain report, and the NDJSON export."""

from __future__ import annotations

import json

import psycopg

from api.demo import load_demo
from api.tokens import Role
from domain.application import RestorationApp
from tests.graphql_support import caught_up, running_api

REPORT = "query { auditReport { intact head verifiedUpTo firstBadPosition problem } }"


async def test_events_carry_their_seals_and_the_chain_verifies(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    async with running_api(app, database_url) as api:
        await caught_up(api)
        events = (await api.ok("query { events(first: 3) { position hash previousHash } }", role=Role.AUDITOR))["events"]
        assert [e["position"] for e in events] == [1, 2, 3]
        assert events[0]["previousHash"] == "00" * 32
        assert events[1]["previousHash"] == events[0]["hash"]
        report = (await api.ok(REPORT, role=Role.AUDITOR))["auditReport"]
        assert report == {"intact": True, "head": app.head_position(), "verifiedUpTo": app.head_position(),
                          "firstBadPosition": None, "problem": None}

        with psycopg.connect(database_url) as connection:
            table = app.recorder.events_table_name
            connection.execute(f"UPDATE {table} SET state = state || ' '::bytea WHERE notification_id = 7")
        report = (await api.ok(REPORT, role=Role.AUDITOR))["auditReport"]
        assert (report["intact"], report["firstBadPosition"], report["problem"]) == (False, 7, "changed")


async def test_the_ndjson_export_is_for_auditors(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    async with running_api(app, database_url) as api:
        await caught_up(api)
        assert (await api.client.get("/audit/events")).status_code == 401
        viewer = {"Authorization": f"Bearer {api.token(Role.VIEWER)}"}
        assert (await api.client.get("/audit/events", headers=viewer)).status_code == 403
        auditor = {"Authorization": f"Bearer {api.token(Role.AUDITOR)}"}
        reply = await api.client.get("/audit/events?after=10&limit=5", headers=auditor)
        assert reply.status_code == 200
        lines = [json.loads(line) for line in reply.text.splitlines()]
        assert [line["position"] for line in lines] == [11, 12, 13, 14, 15]
        assert all(line["hash"] and line["recordedAt"] for line in lines)
