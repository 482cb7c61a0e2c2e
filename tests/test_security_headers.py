"""The security headers, over real HTTP: on every response, with a policy for each page."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import httpx
import pytest

from api.demo import load_demo
from api.security_headers import NOTHING_ALLOWED
from domain.application import RestorationApp
from tests.graphql_support import running_api, served_over_tcp

QUERY = {"query": "query { services { slug } }"}


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def assert_baseline(reply: httpx.Response) -> None:
    assert reply.headers["x-content-type-options"] == "nosniff", reply.url
    assert reply.headers["referrer-policy"] == "no-referrer", reply.url
    assert reply.headers["x-frame-options"] == "DENY", reply.url
    assert directives(reply.headers["content-security-policy"])["frame-ancestors"] == ["'none'"], reply.url


def assert_allows_its_own_assets(page: httpx.Response) -> None:
    """Every script the page loads or runs inline, and every style sheet, is allowed; no other
    origin is, and nothing is evaluated from strings."""
    policy = directives(page.headers["content-security-policy"])
    origin = lambda url: "{0.scheme}://{0.netloc}".format(urlsplit(url))  # noqa: E731
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.text)
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    sheets = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', page.text, re.DOTALL)
    assert sources and inline and sheets
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()}'" for code in inline]
    assert sorted(policy["script-src"]) == sorted({origin(url) for url in sources} | set(hashes))
    assert {origin(url) for url in sheets} <= set(policy["style-src"])
    assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'self'"]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]


async def test_every_response_has_the_security_headers(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    with served_over_tcp(app, database_url) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            status_page = await client.get("/")
            assert status_page.status_code == 200
            assert_baseline(status_page)
            page_policy = directives(status_page.headers["content-security-policy"])
            assert page_policy["default-src"] == ["'none'"] and "script-src" not in page_policy  # no script at all

            dashboard = await client.get("/dashboard")
            assert_baseline(dashboard)
            assert directives(dashboard.headers["content-security-policy"])["script-src"] == ["'self'"]
            assert "unsafe" not in dashboard.headers["content-security-policy"]
            assert_baseline(await client.get("/dashboard/app.js"))

            for path in ("/graphql", "/docs"):  # development only, each from its CDN
                page = await client.get(path, headers={"Accept": "text/html"})
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
                assert_baseline(page)
                assert_allows_its_own_assets(page)

            for reply in [await client.get("/healthz"), await client.get("/status.json"),
                          await client.post("/graphql", json=QUERY), await client.get("/no-such-page")]:
                assert_baseline(reply)
                assert reply.headers["content-security-policy"] == NOTHING_ALLOWED


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_production_has_no_api_docs(app: RestorationApp, database_url: str, path: str) -> None:
    async with running_api(app, database_url, environment="production") as api:
        assert (await api.client.get(path)).status_code == 404
