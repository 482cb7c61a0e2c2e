"""The tracker's API under uvicorn, plus the benchmarks' baselines, in one process.

Run by bench/common.py `api_server` for bench/graphql.py and bench/statuspage.py. Baselines are
served by the same server in the same process as what they are compared with:

- `/bench/services.json`: the dashboard's rows, from the same table and pool, as plain JSON
  through FastAPI (what the GraphQL dashboard query costs without GraphQL).
- `/bench/static/…`: files in the directory given as the second argument, through Starlette's
  StaticFiles (a static web server's work).
- `/bench/saved/NAME`: the bytes of that directory's file NAME, read once and then returned as
  they are (the least a route of this framework can do).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repo root replaces this folder on the path: bench/graphql.py must not shadow the graphql package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import uvicorn  # noqa: E402
from fastapi import Request, Response  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402

from api.composition import open_tracker, projections_running  # noqa: E402
from api.config import Settings  # noqa: E402
from api.http import SERVER_OPTIONS, create_app  # noqa: E402
from projections import services as services_view  # noqa: E402


def main() -> None:
    port = int(sys.argv[1])
    static = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    with open_tracker(Settings.from_env()) as tracker, projections_running(tracker):
        app = create_app(tracker)

        @app.get("/bench/services.json")
        async def services_json(request: Request) -> JSONResponse:
            records = await request.app.state.runtime.pool.fetch(f"{services_view.SELECT_SERVICES} ORDER BY slug")
            rows = [services_view.service_from_record(r) for r in records]
            blocked = services_view.blocked_by_map(rows)
            return JSONResponse([
                {
                    "id": str(r.id), "slug": r.slug, "name": r.name, "status": r.status, "phase": r.phase,
                    "eta": {"expectedAt": r.eta.expected_at.isoformat(), "confidence": r.eta.confidence}
                    if r.eta and r.eta.expected_at else None,
                    "workarounds": [{"channel": w.channel, "instructions": w.instructions} for w in r.workarounds],
                    "blockedBy": [{"id": str(b)} for b in blocked[r.id]],
                }
                for r in rows
            ])

        if static is not None:
            app.mount("/bench/static", StaticFiles(directory=static), name="bench-static")
            saved: dict[str, bytes] = {}

            @app.get("/bench/saved/{name}")
            async def saved_bytes(name: str) -> Response:
                if name not in saved:
                    saved[name] = (static / Path(name).name).read_bytes()
                return Response(saved[name], media_type="text/html; charset=utf-8")

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)


if __name__ == "__main__":
    main()
