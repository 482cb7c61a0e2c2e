"""``GET /dashboard``: the live operations dashboard, a static page that reads GraphQL.

The page and its assets hold no data, so they are served to anyone: the data needs a token.
A browser cannot put an ``Authorization`` header on a navigation, so the page asks for the
token once, keeps it in ``sessionStorage`` (gone when the tab closes), and sends it on every
GraphQL request and in the websocket's ``connection_init`` payload. The strict
Content-Security-Policy (scripts, styles and connections only from this origin, nothing
inline) is what keeps a token in ``sessionStorage`` safe from injected script; the page
also writes all data with ``textContent``, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static" / "dashboard"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # GraphQL over fetch and the same-origin websocket
    "base-uri 'none'",
    "form-action 'none'",  # the sign-in form is handled by script, never submitted
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,  # the rest: api.security_headers
    # Revalidate, so a new release's assets are picked up; the files are small.
    "Cache-Control": "no-cache",
}


def dashboard_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """The router; mount it with ``app.include_router(dashboard_router())``.

    Serves ``index.html`` at ``/dashboard`` and the other files of ``static_dir`` (read once,
    here: nothing outside that list can be asked for) at ``/dashboard/<name>``.
    """
    router = APIRouter(tags=["dashboard"])
    assets = {path.name: path for path in static_dir.iterdir()
              if path.is_file() and path.suffix in MEDIA_TYPES and path.name != "index.html"}

    def send(path: Path) -> FileResponse:
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)

    @router.get("/dashboard", summary="The live operations dashboard (asks for an API token).",
                response_class=FileResponse)
    async def page() -> FileResponse:
        return send(static_dir / "index.html")

    @router.get("/dashboard/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        path = assets.get(name)
        if path is None:
            raise HTTPException(status_code=404, detail="No such dashboard file.")
        return send(path)

    return router
