"""Webhook delivery: throughput and end-to-end latency to a local receiver.

Production shape, one process each: the writer (this one), `restoration worker` (the
projections, including the webhook dispatcher), `restoration webhooks send`, and a receiver
(bench/receiver.py) on loopback.

- Latency: events written at --rate events/s (default 50) for --seconds, --endpoints (default
  10) endpoints each wanting every event; latency = arrival at the receiver - the writer's
  commit. Target: p99 <= 500 ms.
- Throughput: a backlog of --backlog events (x endpoints deliveries) queued while the sender
  is stopped, then drained. Baseline: the same number of signed POSTs to the same receiver
  straight from httpx, one sequential lane per endpoint, no database, in the same run.

BENCH_LOG_DIR=DIR keeps the processes' logs there (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from api.composition import event_log  # noqa: E402
from api.database import eventsourcing_env  # noqa: E402
from api.webhook_safety import ALLOW_PRIVATE_ENV  # noqa: E402
from api.webhook_sender import signed_headers  # noqa: E402
from api.webhooks import create_webhook, list_webhooks  # noqa: E402
from bench.common import Row, at_most, fresh_database, report  # noqa: E402
from domain.application import RestorationApp  # noqa: E402
from domain.service import Service  # noqa: E402
from domain.values import Provenance, Status  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 500.0
OPS = Provenance("bench@example.org")
STATUSES = list(Status)
WAIT_SECONDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def restoration(*args: str) -> list[str]:
    return [sys.executable, "-c", "from api.cli import main; main()", *args]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def received(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as response:
        return int(response.read())


def pending(url: str) -> int:
    with psycopg.connect(url) as connection:
        return sum(e.pending for e in list_webhooks(connection))


def paced_writes(app: RestorationApp, service_ids: list, rate: float, seconds: float) -> dict[int, float]:
    """One status report every 1/rate seconds; each position's commit time (wall clock)."""
    committed: dict[int, float] = {}
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        recorded = app.report_status(service_ids[n % len(service_ids)], status=STATUSES[n % 5], provenance=OPS)
        committed[recorded.position] = time.time()  # type: ignore[index]
    return committed


def backlog(app: RestorationApp, events: int) -> None:
    """``events`` facts, ten per save, as fast as the store takes them."""
    for n in range(events // 10):
        service = Service.register(slug=f"backlog-{n}", name=f"Backlog {n}", category="Bench", provenance=OPS)
        for i in range(9):
            service.report_status(status=STATUSES[i % 5], provenance=OPS)
        app.save(service)


def arrivals(path: Path) -> list[tuple[float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        at, message_id = line.split(" ", 1)
        rows.append((float(at), message_id))
    return rows


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def direct_posts(url: str, lanes: int, per_lane: int, body: bytes) -> float:
    """Signed POSTs straight from httpx, ``lanes`` sequential lanes at once; requests/s."""
    secret = "whsec_" + "a" * 43 + "="

    async def lane(client: httpx.AsyncClient, lane_id: int) -> None:
        for n in range(per_lane):
            response = await client.post(url, content=body, headers=signed_headers(secret, f"direct-{lane_id}-{n}", body))
            response.raise_for_status()

    async with httpx.AsyncClient(trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(lane(client, i) for i in range(lanes)))
        return lanes * per_lane / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=2000, help="events queued for the throughput run")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # still stop the processes started
    os.environ[ALLOW_PRIVATE_ENV] = "1"  # the receiver is on loopback
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="restoration-bench-") as scratch:
        scratch = os.environ.get("BENCH_LOG_DIR", scratch)
        logs = Path(scratch)
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        port = free_port()
        receiver = start([sys.executable, "-m", "bench.receiver", "--port", str(port), "--out", str(logs / "arrivals.txt")],
                         env, logs / "receiver.log")
        app = RestorationApp(env=eventsourcing_env(url))
        worker = sender = None
        try:
            until(lambda: _answers(port), "the receiver to listen")
            services = [app.register_service(slug=f"svc-{n}", name=f"Service {n}", category="Bench",
                                             provenance=OPS).id for n in range(20)]
            with psycopg.connect(url) as connection:
                for n in range(args.endpoints):
                    create_webhook(connection, event_log(app), url=f"http://127.0.0.1:{port}/hooks/{n}", actor="bench")
            worker = start(restoration("worker"), env, logs / "worker.log")
            sender = start(restoration("webhooks", "send"), env, logs / "sender.log")
            app.report_status(services[0], status="MAJOR_OUTAGE", provenance=OPS)  # warm-up
            until(lambda: received(port) == args.endpoints, "the warm-up event to arrive")

            before = received(port)
            committed = paced_writes(app, services, args.rate, args.seconds)
            expected = before + len(committed) * args.endpoints
            until(lambda: received(port) >= expected, "the paced events to arrive")

            stop(sender)
            before = received(port)
            backlog(app, args.backlog)
            head = app.head_position()
            until(lambda: _dispatched(url) >= head, "the dispatcher to queue the backlog")
            queued = pending(url)
            started = time.perf_counter()
            sender = start(restoration("webhooks", "send"), env, logs / "sender.log")
            until(lambda: received(port) >= before + queued, "the backlog to be delivered")
            drained = queued / (time.perf_counter() - started)
            body = _sample_body(url)
            baseline = asyncio.run(direct_posts(f"http://127.0.0.1:{port}/direct", args.endpoints,
                                                max(queued // args.endpoints, 1), body))
        finally:
            for process in (sender, worker, receiver):
                if process is not None and process.poll() is None:
                    stop(process)
            app.close()
        latencies = [
            (at - committed[position]) * 1000
            for at, message_id in arrivals(logs / "arrivals.txt")
            if message_id.startswith("msg_") and (position := int(message_id.rsplit("_", 1)[1])) in committed
        ]
    direct = Row("direct httpx POSTs (baseline)", baseline, "requests/s")
    report(
        f"Webhooks (bench/webhooks.py): {args.endpoints} endpoints, {args.rate:g} events/s for {args.seconds:g} s",
        [
            ("deliveries timed (latency run)", float(len(latencies)), ""),
            ("latency p50, commit -> receiver", percentile(latencies, 0.50), "ms"),
            Row("latency p99", percentile(latencies, 0.99), "ms", target=at_most(TARGET_P99_MS)),
            ("latency max", max(latencies), "ms"),
            Row("backlog drained", drained, "deliveries/s", baseline=direct),
            direct,
        ],
    )
    return 0


def _answers(port: int) -> bool:
    try:
        received(port)
    except OSError:
        return False
    return True


def _dispatched(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT position FROM webhook_outbox_tracking").fetchone()
    return int(row[0]) if row else 0


def _sample_body(url: str) -> bytes:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT body FROM webhook_messages ORDER BY position DESC LIMIT 1").fetchone()
    return row[0].encode() if row else b"{}"


if __name__ == "__main__":
    sys.exit(main())
