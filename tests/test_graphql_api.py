"""The GraphQL contract end to end: reads, writes that read back, errors, and roles."""

from __future__ import annotations

from typing import Any

import pytest

from api.demo import DEMO_INCIDENT_ID, load_demo
from api.tokens import Role
from domain.application import RestorationApp
from tests.graphql_support import caught_up, running_api

DASHBOARD = """query { services { slug name status phase residentFacing
  eta { expectedAt confidence } etaSlipSeconds workarounds { channel contact }
  dependsOn { slug } blockedBy { slug } } }"""

INCIDENT = """query($id: ID!) { incident(id: $id) { title phase residentsAffected propertiesAffected
  services { slug } updates { audience message }
  progress { total restored percentRestored byStatus { status count } curve { at restored total } }
  communication { nextUpdateBy overdue downWithoutEta { serviceId } } } }"""


@pytest.fixture
def demo(app: RestorationApp) -> RestorationApp:
    load_demo(app)
    return app


async def test_the_dashboard_reads_every_service(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        services = {s["slug"]: s for s in (await api.ok(DASHBOARD, role=Role.VIEWER))["services"]}
        assert len(services) == 9
        rent = services["rent-by-phone"]
        assert {b["slug"] for b in rent["blockedBy"]} == {"telephony", "housing-management"}
        assert {w["channel"] for w in rent["workarounds"]} >= {"Standing order", "Card payment phone line"}
        telephony = services["telephony"]
        assert (telephony["status"], telephony["phase"]) == ("PARTIAL_OUTAGE", "RESTORING")
        assert telephony["eta"]["expectedAt"].startswith("2022-08-05T16:00:00")
        assert telephony["etaSlipSeconds"] == 35 * 86400

        public = (await api.ok(DASHBOARD, role=None))["services"]
        assert public and all(s["residentFacing"] for s in public)
        assert "email" not in {s["slug"] for s in public}


async def test_the_incident_shows_progress_updates_and_cadence(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        incident = (await api.ok(INCIDENT, {"id": str(DEMO_INCIDENT_ID)}, role=Role.VIEWER))["incident"]
        assert (incident["residentsAffected"], incident["propertiesAffected"]) == (350_000, 125_000)
        assert incident["progress"]["total"] == 8 and incident["progress"]["curve"]
        assert {u["audience"] for u in incident["updates"]} == {"PUBLIC", "INTERNAL"}
        anonymous = (await api.ok(INCIDENT, {"id": str(DEMO_INCIDENT_ID)}, role=None))["incident"]
        assert {u["audience"] for u in anonymous["updates"]} == {"PUBLIC"}

        clocks = "query($id: ID!) { incident(id: $id) { obligations { regulator state dueAt } } }"
        denied = await api.gql(clocks, {"id": str(DEMO_INCIDENT_ID)})
        assert denied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        obligations = (await api.ok(clocks, {"id": str(DEMO_INCIDENT_ID)}, role=Role.VIEWER))["incident"]["obligations"]
        ico = next(o for o in obligations if o["regulator"] == "ICO")
        assert ico["state"] == "FILED_ON_TIME" and ico["dueAt"].startswith("2022-06-21")


REPORT = """mutation($input: ReportStatusInput!) { reportStatus(input: $input) {
  position service { slug status phase statusSince } } }"""


async def test_a_write_reads_back_at_once(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        email = str(demo.service_by_slug("email").id)
        result = await api.ok(REPORT, {"input": {"serviceId": email, "status": "MAJOR_OUTAGE", "phase": "ISOLATED",
                                                  "reason": "Phishing campaign", "note": "Mail gateway off"}})
        payload = result["reportStatus"]
        assert payload["position"] == demo.head_position()
        assert (payload["service"]["status"], payload["service"]["phase"]) == ("MAJOR_OUTAGE", "ISOLATED")
        # The same read again, straight after, sees it too (views have caught up).
        again = await api.ok('query($id: ID!) { service(id: $id) { status } }', {"id": email}, role=Role.VIEWER)
        assert again["service"]["status"] == "MAJOR_OUTAGE"
        entries = await api.ok("query { timeline(first: 1, after: \"%d\") { edges { node { actor reason } } } }"
                               % (payload["position"] - 1), role=Role.VIEWER)
        assert entries["timeline"]["edges"][0]["node"] == {"actor": "test-operator", "reason": "Phishing campaign"}


@pytest.mark.parametrize(
    ("variables", "code", "words"),
    [
        ({"serviceId": "00000000-0000-0000-0000-000000000000", "status": "MAJOR_OUTAGE"}, "NOT_FOUND", "No service"),
        ({"serviceId": "not-an-id", "status": "MAJOR_OUTAGE"}, "VALIDATION", "must be an id"),
        ({"status": "MAJOR_OUTAGE", "occurredAt": "2099-01-01T00:00:00+00:00"}, "VALIDATION", "in the future"),
        ({"phase": "ISOLATED", "status": "MAJOR_OUTAGE"}, "INVALID_TRANSITION", "regression"),
        ({"note": "x" * 10_001, "status": "MAJOR_OUTAGE"}, "VALIDATION", "limit is 10,000"),
    ],
)
async def test_refused_writes_say_why_with_a_code(
    demo: RestorationApp, database_url: str, variables: dict[str, Any], code: str, words: str
) -> None:
    async with running_api(demo, database_url) as api:
        variables.setdefault("serviceId", str(demo.service_by_slug("email").id))
        head = demo.head_position()
        result = await api.gql(REPORT, {"input": variables}, role=Role.OPERATOR)
        error = result["errors"][0]
        assert error["extensions"]["code"] == code
        assert words in error["message"]
        assert demo.head_position() == head


async def test_duplicates_conflict_and_corrections_apply(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        register = """mutation($input: RegisterServiceInput!) { registerService(input: $input) { position service { id slug } } }"""
        duplicate = await api.gql(register, {"input": {"slug": "email", "name": "Email", "category": "Systems"}},
                                  role=Role.OPERATOR)
        assert duplicate["errors"][0]["extensions"]["code"] == "CONFLICT"

        email = str(demo.service_by_slug("email").id)
        wrong = (await api.ok(REPORT, {"input": {"serviceId": email, "status": "MAJOR_OUTAGE", "phase": "ISOLATED",
                                                 "reason": "scare"}}))["reportStatus"]["position"]
        correct = """mutation($input: CorrectEventInput!) { correctEvent(input: $input) { position service { status } } }"""
        fixed = await api.ok(correct, {"input": {"position": wrong, "changes": {"status": "DEGRADED_PERFORMANCE"},
                                                 "reason": "Only slow, not down"}})
        assert fixed["correctEvent"]["service"]["status"] == "DEGRADED_PERFORMANCE"


ANON, VIEWER, OPERATOR, AUDITOR, ADMIN = None, Role.VIEWER, Role.OPERATOR, Role.AUDITOR, Role.ADMIN
EVERYONE = (ANON, VIEWER, OPERATOR, AUDITOR, ADMIN)
TOKEN_HOLDERS = (VIEWER, OPERATOR, AUDITOR, ADMIN)

OPERATIONS: list[tuple[str, str, dict[str, Any], tuple[Role | None, ...]]] = [
    ("services", "query { services { slug } }", {}, EVERYONE),
    ("service", 'query($slug: String) { service(slug: $slug) { slug } }', {"slug": "website"}, EVERYONE),
    ("incidents", "query { incidents { title } }", {}, EVERYONE),
    ("incident", "query($id: ID!) { incident(id: $id) { title } }", {"id": str(DEMO_INCIDENT_ID)}, EVERYONE),
    ("obligations", "query($id: ID!) { incident(id: $id) { obligations { state } } }", {"id": str(DEMO_INCIDENT_ID)},
     TOKEN_HOLDERS),
    ("timeline", "query { timeline(first: 5) { edges { cursor } } }", {}, EVERYONE),
    ("events", "query { events(first: 5) { position } }", {}, (AUDITOR, ADMIN)),
    ("declareIncident", "mutation($i: DeclareIncidentInput!) { declareIncident(input: $i) { position } }",
     {"i": {"title": "Flood", "kind": "FACILITIES", "severity": "MINOR"}}, (OPERATOR, ADMIN)),
    ("registerService", "mutation($i: RegisterServiceInput!) { registerService(input: $i) { position } }",
     {"i": {"slug": "fax-{n}", "name": "Fax", "category": "Contact"}}, (OPERATOR, ADMIN)),
    ("reportStatus", "mutation($i: ReportStatusInput!) { reportStatus(input: $i) { position } }",
     {"i": {"serviceId": "{website}", "status": "DEGRADED_PERFORMANCE"}}, (OPERATOR, ADMIN)),
    ("setEta", "mutation($i: SetEtaInput!) { setEta(input: $i) { position } }",
     {"i": {"serviceId": "{telephony}", "expectedAt": "2099-01-01T00:00:00+00:00", "confidence": "LOW", "reason": "r"}},
     (OPERATOR, ADMIN)),
    ("publishWorkaround", "mutation($i: PublishWorkaroundInput!) { publishWorkaround(input: $i) { position } }",
     {"i": {"serviceId": "{telephony}", "channel": "Web chat", "instructions": "Use web chat."}}, (OPERATOR, ADMIN)),
    ("postUpdate", "mutation($i: PostUpdateInput!) { postUpdate(input: $i) { position } }",
     {"i": {"incidentId": str(DEMO_INCIDENT_ID), "audience": "PUBLIC", "message": "Still working on it."}},
     (OPERATOR, ADMIN)),
    ("recordImpact", "mutation($i: RecordImpactInput!) { recordImpact(input: $i) { position } }",
     {"i": {"incidentId": str(DEMO_INCIDENT_ID), "residentsAffected": 350001}}, (OPERATOR, ADMIN)),
    ("webhooks", "query { webhooks { url } }", {}, (ADMIN,)),
    ("createWebhook", "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret } }",
     {"i": {"url": "http://127.0.0.1:9/hook-{n}"}}, (ADMIN,)),
]


@pytest.mark.parametrize(("name", "query", "variables", "allowed"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
async def test_every_operation_for_every_role(
    demo: RestorationApp, database_url: str, name: str, query: str, variables: dict[str, Any],
    allowed: tuple[Role | None, ...], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESTORATION_WEBHOOK_ALLOW_PRIVATE", "1")
    slugs = {"website": str(demo.service_by_slug("website").id), "telephony": str(demo.service_by_slug("telephony").id)}
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        for n, role in enumerate(EVERYONE):
            filled = _fill(variables, n, slugs)
            result = await api.gql(query, filled, role=role)
            if role in allowed:
                assert "errors" not in result, (name, role, result.get("errors"))
            else:
                expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
                assert result["errors"][0]["extensions"]["code"] == expected, (name, role, result)


def _fill(value: Any, n: int, slugs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, n, slugs) for k, v in value.items()}
    if isinstance(value, str):
        for key, replacement in slugs.items():
            value = value.replace("{" + key + "}", replacement)
        return value.replace("{n}", str(n))
    return value


async def test_services_as_of_a_moment_and_as_known_then(demo: RestorationApp, database_url: str) -> None:
    query = """query($asOf: DateTime, $knownAt: DateTime) { services(asOf: $asOf, knownAt: $knownAt) {
      slug status phase eta { expectedAt confidence } workarounds { channel } blockedBy { slug } } }"""
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        then = {s["slug"]: s for s in (await api.ok(query, {"asOf": "2022-07-01T12:00:00+01:00"}, role=Role.VIEWER))["services"]}
        telephony = then["telephony"]
        assert (telephony["status"], telephony["phase"]) == ("MAJOR_OUTAGE", "ASSESSING")
        assert telephony["eta"] == {"expectedAt": "2022-07-08T16:00:00+00:00", "confidence": "LOW"}
        assert then["email"]["phase"] == "RESTORING"
        assert {b["slug"] for b in then["rent-by-phone"]["blockedBy"]} == {"telephony", "housing-management"}
        before_loading = await api.ok(query, {"asOf": "2022-07-01T12:00:00+01:00", "knownAt": "2020-01-01T00:00:00+00:00"},
                                      role=Role.VIEWER)
        assert before_loading["services"] == []
        bad = await api.gql(query, {"asOf": "2022-07-01T12:00:00"}, role=Role.VIEWER)
        assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_admins_create_list_and_delete_webhooks(
    demo: RestorationApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver would be on loopback
    create = """mutation($i: CreateWebhookInput!) { createWebhook(input: $i) {
      secret webhook { id url kinds publicOnly pending } } }"""
    async with running_api(demo, database_url) as api:
        created = (await api.ok(create, {"i": {"url": "http://127.0.0.1:9/ivr", "kinds": ["StatusReported"],
                                               "publicOnly": True}}, role=Role.ADMIN))["createWebhook"]
        assert created["secret"].startswith("whsec_")
        assert created["webhook"]["kinds"] == ["StatusReported"] and created["webhook"]["publicOnly"]
        listed = (await api.ok("query { webhooks { id url } }", role=Role.ADMIN))["webhooks"]
        assert listed == [{"id": created["webhook"]["id"], "url": "http://127.0.0.1:9/ivr"}]
        assert "secret" not in str(listed)

        bad = await api.gql(create, {"i": {"url": "ftp://example.org/x"}}, role=Role.ADMIN)
        assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"

        delete = "mutation($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { id } }"
        await api.ok(delete, {"i": {"id": created["webhook"]["id"]}}, role=Role.ADMIN)
        assert (await api.ok("query { webhooks { id } }", role=Role.ADMIN))["webhooks"] == []
        missing = await api.gql(delete, {"i": {"id": created["webhook"]["id"]}}, role=Role.ADMIN)
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
