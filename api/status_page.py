"""The public status page (``/``), ``/status.json`` and ``/feed.atom``, built for a spike.

After an attack, hundreds of thousands of people check the page at once, so a request must
cost almost nothing and never a query:

- The three documents are rendered together from one snapshot of the read models
  (api.status_site) and kept in memory with the version they came from: the positions the
  services, incidents and progress views have reached.
- They are trusted until the views' doorbell rings (every projection batch commits with a
  NOTIFY, heard on the process's one LISTEN connection) or an expected date they show passes.
  Then the next request reads the version, one cheap query; only if it moved are the views
  read and the documents rendered again. One request does that while the others wait for it.
- Each response has a strong ETag of its bytes (a re-render with the same bytes keeps it), so
  ``If-None-Match`` answers 304, and ``Cache-Control`` lets a CDN hold it briefly, revalidate
  in the background, and keep serving it if the tracker cannot answer.
- If the database cannot be read, the last documents are still served (the page matters most
  when things are broken) and reading is retried after a pause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from api.listener import Doorbell
from api.outage import RETRY_AFTER_SECONDS
from api.status_site import CONTENT_SECURITY_POLICY, Document, Documents, Site, read_snapshot, read_version, render_site

log = logging.getLogger(__name__)

CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=300, stale-if-error=86400"
"""Fresh for 30 s (how late a change may reach someone behind a CDN); after that a CDN may
serve the old copy while it revalidates, and for a day if the tracker is down."""
RETRY_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 5.0
HTML_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY}  # the rest: api.security_headers
DATA_HEADERS = {
    "access-control-allow-origin": "*",  # widgets on other sites read status.json from the browser
}
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Unavailable(Exception):
    """Nothing has been rendered yet and the database cannot be read."""


class PublicDocuments:
    """The rendered documents, and when to render them again."""

    def __init__(self, site: Site, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.site = site
        self.clock = clock
        self.renders = 0
        """How many times the views were read and rendered (for tests and metrics)."""
        self._documents: Documents | None = None
        self._version: tuple[int, ...] | None = None
        self._ticket: asyncio.Event | None = None
        self._retry_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self, pool: asyncpg.Pool, bell: Doorbell) -> Documents:
        if not self._settled():
            async with self._lock:
                if not self._settled():  # another request may have refreshed while this one waited
                    await self._refresh(pool, bell)
        if self._documents is None:
            raise Unavailable
        return self._documents

    def _settled(self) -> bool:
        """True while there is no reason to look at the views again."""
        if time.monotonic() < self._retry_at:
            return True  # the database failed a moment ago: serve what there is until the pause ends
        documents = self._documents
        if documents is None or self._ticket is None or self._ticket.is_set():
            return False
        return documents.changes_at is None or self.clock() < documents.changes_at

    async def _refresh(self, pool: asyncpg.Pool, bell: Doorbell) -> None:
        ticket = bell.ticket()  # taken before reading, so a change committed meanwhile is not missed
        now = self.clock()
        outdated = self._documents is None or (
            self._documents.changes_at is not None and now >= self._documents.changes_at
        )
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS), pool.acquire() as connection:
                if outdated or await read_version(connection) != self._version:
                    snapshot = await read_snapshot(connection)
                    self._documents = render_site(snapshot, self.site, now)
                    self._version = snapshot.version
                    self.renders += 1
        except DATABASE_ERRORS as error:
            log.warning("status page: cannot read the views (%s); serving the last rendered page", error)
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        self._ticket = ticket
        self._retry_at = 0.0


def status_router(
    documents: PublicDocuments,
    *,
    pool: Callable[[Request], asyncpg.Pool],
    doorbell: Callable[[Request], Doorbell],
) -> APIRouter:
    """Routes serving ``documents``; ``doorbell`` rings whenever the views may have changed."""
    router = APIRouter(tags=["public"])

    async def serve(request: Request, pick: Callable[[Documents], Document], headers: dict[str, str]) -> Response:
        try:
            current = await documents.current(pool(request), doorbell(request))
        except Unavailable:
            return PlainTextResponse(
                "The status page cannot be shown for a moment. Please try again shortly.",
                status_code=503, headers={"retry-after": str(RETRY_AFTER_SECONDS), "cache-control": "no-store"},
            )
        return conditional_response(request, pick(current), headers)

    @router.api_route("/", methods=["GET", "HEAD"], response_class=Response,
                      summary="The public status page (HTML, works without JavaScript)")
    async def status_page(request: Request) -> Response:
        return await serve(request, lambda d: d.page, HTML_HEADERS)

    @router.api_route("/status.json", methods=["GET", "HEAD"], response_class=Response,
                      summary="Status in the common status-page summary format")
    async def status_json(request: Request) -> Response:
        return await serve(request, lambda d: d.summary, DATA_HEADERS)

    @router.api_route("/feed.atom", methods=["GET", "HEAD"], response_class=Response,
                      summary="Public updates as an Atom feed")
    async def feed(request: Request) -> Response:
        return await serve(request, lambda d: d.feed, DATA_HEADERS)

    return router


def conditional_response(request: Request, document: Document, headers: dict[str, str]) -> Response:
    """The document, gzipped if the client takes it, or 304 if the client has it already."""
    gzipped = accepts_gzip(request.headers.get("accept-encoding"))
    reply_headers = {
        **headers,
        "etag": document.gzip_etag if gzipped else document.etag,
        "cache-control": CACHE_CONTROL,
        "vary": "Accept-Encoding",
    }
    if has_current(request.headers.get("if-none-match"), document):
        return Response(status_code=304, headers=reply_headers)
    if gzipped:
        reply_headers["content-encoding"] = "gzip"
    return Response(document.gzipped if gzipped else document.body, headers=reply_headers,
                    media_type=document.media_type)


def has_current(if_none_match: str | None, document: Document) -> bool:
    """Whether ``If-None-Match`` names this document, in either encoding (weak comparison)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or document.etag in tags or document.gzip_etag in tags


def accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").split(","):
        coding, _, parameters = part.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            quality = parameters.strip().removeprefix("q=")
            return not quality or _quality(quality) > 0
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
