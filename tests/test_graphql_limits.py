"""Bad input and abuse: limits, production hardening, codes on every error."""

from __future__ import annotations

import asyncio

import psycopg

from domain.application import RestorationApp
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
