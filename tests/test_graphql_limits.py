"""Bad input and abuse: limits, production hardening, codes on every error."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from api.tokens import Role
from domain.application import RestorationApp
from domain.values import Provenance
from tests.graphql_support import running_api


async def test_production_has_no_introspection_ide_or_suggestions(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url, environment="production") as api:
        introspection = await api.gql("query { __schema { types { name } } }")
        assert introspection["errors"][0]["extensions"]["code"] == "VALIDATION"
        typo = await api.gql("query { timelin { edges { cursor } } }")
        assert "Did you mean" not in typo["errors"][0]["message"]
        ide = await api.client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in ide.text.lower()


async def test_development_offers_the_ide_and_suggestions(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url) as api:
        typo = await api.gql("query { timelin { edges { cursor } } }")
        assert "Did you mean" in typo["errors"][0]["message"]
        ide = await api.client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" in ide.text.lower()


async def test_oversized_deep_and_alias_heavy_requests_are_refused(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url) as api:
        huge = await api.client.post("/graphql", json={"query": "query { timeline { edges { cursor } } }", "pad": "x" * 400_000})
        assert huge.status_code == 413
        assert huge.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"

        aliases = " ".join(f"a{n}: timeline(first: 1) {{ edges {{ cursor }} }}" for n in range(30))
        result = await api.gql(f"query {{ {aliases} }}")
        assert result["errors"][0]["extensions"]["code"] == "VALIDATION"

        deep = "query { services { " + "dependsOn { " * 10 + "id" + " }" * 10 + " } }"
        for _ in range(2):  # the second time from the validation cache
            result = await api.gql(deep)
            assert result["errors"][0]["extensions"]["code"] == "VALIDATION"
            assert "exceeds maximum operation depth" in result["errors"][0]["message"]

        malformed = await api.gql("query { timeline(first: ) }")
        assert malformed["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_an_unexpected_failure_is_masked_but_still_coded(app: RestorationApp, database_url: str) -> None:
    def rename(old: str, new: str) -> None:
        # A column, not the table: the worker, starting up beside this, would make the table again.
        with psycopg.connect(database_url) as connection:
            connection.execute(f"ALTER TABLE timeline RENAME COLUMN {old} TO {new}")

    async with running_api(app, database_url) as api:
        await asyncio.to_thread(rename, "summary", "summary_away")
        try:
            result = await api.gql("query { timeline(first: 1) { edges { cursor } } }")
        finally:
            await asyncio.to_thread(rename, "summary_away", "summary")
        [error] = result["errors"]
        assert error["extensions"] == {"code": "INTERNAL"}
        assert error["message"] == "Unexpected error."  # nothing about the table or the SQL


FOUND_BY_FUZZING = {
    # Each was recorded or read, then failed inside: reading it back was a masked crash, or the
    # write stopped every view for good.
    "detectedAt in year 0 UTC": (
        'mutation { declareIncident(input: {title: "t", kind: OTHER, severity: MINOR, '
        'detectedAt: "0001-01-01T00:00:00+14:00"}) { position } }', "outside the years 1900 to 2999"),
    "asOf in year 0 UTC": ('{ services(asOf: "0001-01-01T00:00:00+14:00") { slug } }', "outside the years 1900 to 2999"),
    "NUL in a title": (
        'mutation { declareIncident(input: {title: "a\\u0000b", kind: OTHER, severity: MINOR}) { position } }',
        "unwritable character"),
    "a count beyond bigint": (
        'mutation { correctEvent(input: {position: IMPACT, reason: "recount", '
        'changes: {residentsAffected: 100000000000000000000}}) { position } }', "from 0 to 2,147,483,647"),
}


@pytest.mark.parametrize(("query", "refusal"), FOUND_BY_FUZZING.values(), ids=FOUND_BY_FUZZING.keys())
async def test_what_the_fuzzer_found_is_refused_and_the_views_keep_up(
    app: RestorationApp, database_url: str, query: str, refusal: str
) -> None:
    by = Provenance("ops@example.org")
    incident = app.declare_incident(title="Outage", kind="OTHER", severity="MINOR", provenance=by)
    impact = app.record_impact(incident.id, residents_affected=10, provenance=by)
    async with running_api(app, database_url) as api:
        result = await api.gql(query.replace("IMPACT", str(impact.position)), role=Role.OPERATOR)
        [error] = result["errors"]
        assert error["extensions"]["code"] == "VALIDATION" and refusal in error["message"]
        await api.ok('mutation { recordImpact(input: {incidentId: "%s", residentsAffected: 11}) { position } }' % incident.id)
