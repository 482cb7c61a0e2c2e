"""The dashboard's files over HTTP: public, data-free, and locked down by their headers."""

from __future__ import annotations

import re

from domain.application import RestorationApp
from tests.graphql_support import running_api


async def test_the_page_is_served_without_a_token_under_a_strict_policy(app: RestorationApp, database_url: str) -> None:
    async with running_api(app, database_url) as api:
        page = await api.client.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        # Scripts only from files, so the policy needs no 'unsafe-inline'.
        assert re.findall(r"<script[^>]*>", page.text) == ['<script type="module" src="/dashboard/app.js">']
        assert ' style="' not in page.text

        for name, media_type in [("app.js", "text/javascript"), ("view.js", "text/javascript"),
                                 ("dashboard.css", "text/css")]:
            asset = await api.client.get(f"/dashboard/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(media_type)
        for name in ["nope.js", "..%2F..%2Fdashboard.py", "index.html"]:
            assert (await api.client.get(f"/dashboard/{name}")).status_code == 404, name


async def test_the_scripts_never_write_html(app: RestorationApp, database_url: str) -> None:
    """Data goes into the page as text: no innerHTML, outerHTML, insertAdjacentHTML or document.write."""
    async with running_api(app, database_url) as api:
        for name in ["app.js", "view.js", "graphql.js", "format.js"]:
            source = (await api.client.get(f"/dashboard/{name}")).text
            assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", source), name
