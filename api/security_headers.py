"""The security headers on every HTTP response, and the policy for pages built from a CDN.

Every response says nosniff, sends no referrer, may not be framed and, unless its route set
its own, has a Content-Security-Policy that allows nothing at all: right for JSON, feeds and
errors, and a safe default for anything added later. The pages set their own policy: the
status page (no script; its one style sheet by hash, in api.status_site), the dashboard
(script, style and connections from this origin only, in api.dashboard) and, in development
only, GraphiQL and the API docs, whose pages load their code from public CDNs and run one
inline script: :func:`page_with_its_assets` allows exactly the origins and inline scripts the
page itself names, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOTHING_ALLOWED = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": NOTHING_ALLOWED,
}


class SecurityHeaders:
    """Adds each of :data:`BASELINE` that the response has not set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASELINE.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_with_its_assets(html: str) -> HTMLResponse:
    """``html`` served with a policy allowing the script, style and icon origins it names and
    the hashes of its inline scripts. Styles may also be inline: these pages' components set
    them at run time. For third-party pages that take no data (GraphiQL, the API docs)."""
    assets = _Assets()
    assets.feed(html)
    assets.close()
    inline = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in assets.inline]
    policy = "; ".join([
        "default-src 'none'",
        " ".join(["script-src", *sorted(assets.scripts), *inline]),
        " ".join(["style-src", *sorted(assets.styles), "'unsafe-inline'"]),
        " ".join(["font-src", *sorted(assets.styles), "data:"]),  # fonts come with the style sheets
        " ".join(["img-src", "'self'", "data:", *sorted(assets.images)]),
        "connect-src 'self'",  # the page's own fetches and websocket, to this origin
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return HTMLResponse(html, headers={"content-security-policy": policy})


class _Assets(HTMLParser):
    """The origins of a page's scripts, style sheets and icons, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: set[str] = set()
        self.styles: set[str] = set()
        self.images: set[str] = set()
        self.inline: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src"):
                self.scripts.add(_origin(attributes["src"] or ""))
            else:
                self._script = []
        elif tag == "link" and attributes.get("href"):
            relations = (attributes.get("rel") or "").lower().split()
            if "stylesheet" in relations:
                self.styles.add(_origin(attributes["href"] or ""))
            elif "icon" in relations:
                self.images.add(_origin(attributes["href"] or ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.inline.append("".join(self._script))
            self._script = None


def _origin(url: str) -> str:
    """How a policy names where ``url`` is: its origin, ``data:``, or ``'self'`` if relative."""
    parts = urlsplit(url.strip())
    if parts.scheme == "data":
        return "data:"
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return "'self'"
