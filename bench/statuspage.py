"""The public status page under a spike: `/` beside a static file of the same bytes.

Requests/s and p99 for `GET /` (the demo, uncompressed) with 64 concurrent keep-alive
connections, beside the same bytes served by the same server in the same run: as a static file
through StaticFiles (`/bench/static/index.html`), and returned as they are by a bare route
(`/bench/saved/index.html`). Also the revalidation a CDN makes (`If-None-Match` → 304) and the
gzipped page most browsers get. Target: `/` ÷ static file ≥ 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

# The repo root replaces this folder on the path: bench/graphql.py must not shadow the graphql package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx  # noqa: E402

from api.database import eventsourcing_env  # noqa: E402
from api.demo import load_demo  # noqa: E402
from bench.common import HttpRequest, Row, Throughput, api_server, at_least, fresh_database, load, report  # noqa: E402
from domain.application import RestorationApp  # noqa: E402

TARGET_RATIO = 0.5
IDENTITY = {"accept-encoding": "identity"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="restoration-static-") as static:
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            load_demo(app)
            with api_server(url, app.head_position(), Path(static)) as address:
                page = httpx.get(f"http://{address}/", headers=IDENTITY)
                page.raise_for_status()
                (Path(static) / "index.html").write_bytes(page.content)
                for copy in ("/bench/static/index.html", "/bench/saved/index.html"):
                    if httpx.get(f"http://{address}{copy}").content != page.content:
                        raise SystemExit(f"{copy} does not serve the page's bytes")
                requests = {
                    "static file (StaticFiles, baseline)": HttpRequest("GET", "/bench/static/index.html", IDENTITY),
                    "same bytes from a bare route": HttpRequest("GET", "/bench/saved/index.html", IDENTITY),
                    "status page /": HttpRequest("GET", "/", IDENTITY),
                    "status page /, gzip": HttpRequest("GET", "/", {"accept-encoding": "gzip"}),
                    "status page /, If-None-Match (304)": HttpRequest(
                        "GET", "/", {**IDENTITY, "if-none-match": page.headers["etag"]}, expect=304),
                }
                asyncio.run(load(address, requests["status page /"], args.concurrency, 1.0))  # warm up
                measured: dict[str, Throughput] = {
                    name: asyncio.run(load(address, request, args.concurrency, args.seconds))
                    for name, request in requests.items()
                }
        finally:
            app.close()
    static_file = measured.pop("static file (StaticFiles, baseline)")
    static_rate = Row("static file (StaticFiles, baseline)", static_file.per_second, "req/s")
    static_p99 = Row("  p99", static_file.p99_ms, "ms")
    rows: list[Row | tuple[str, float, str]] = [static_rate, static_p99]
    for name, throughput in measured.items():
        target = at_least(TARGET_RATIO, ratio=True) if name == "status page /" else None
        rows += [Row(name, throughput.per_second, "req/s", baseline=static_rate, target=target),
                 Row("  p99", throughput.p99_ms, "ms", baseline=static_p99)]
    rows += [
        ("page size", len(page.content) / 1024, "kB"),
        ("ratio / ÷ bare route",
         measured["status page /"].per_second / measured["same bytes from a bare route"].per_second, ""),
    ]
    report(f"Status page (bench/statuspage.py): the demo, {args.concurrency} concurrent connections", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
