"""Write throughput: single-event commands through the application, beside a raw baseline.

Baseline: single-row INSERT + COMMIT with psycopg on the same server, in the same run.
Target: commands/s ÷ baseline inserts/s ≥ 0.5. Also: events/s when one command records 10 facts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from api.database import eventsourcing_env  # noqa: E402
from bench.common import Row, at_least, fresh_database, report  # noqa: E402
from domain.application import RestorationApp  # noqa: E402
from domain.service import Service  # noqa: E402
from domain.values import Provenance, Status  # noqa: E402

TARGET_RATIO = 0.5
OPS = Provenance("bench@example.org")


def raw_inserts(url: str, count: int) -> float:
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE raw_baseline (id uuid, version bigint, topic text, state bytea, "
            "position bigserial, PRIMARY KEY (id, version))"
        )
        connection.commit()
        state = b'{"status": "MAJOR_OUTAGE", "actor": "bench@example.org"}' * 3
        started = time.perf_counter()
        for n in range(count):
            connection.execute(
                "INSERT INTO raw_baseline (id, version, topic, state) VALUES (gen_random_uuid(), %s, %s, %s)",
                (n, "domain.service:Service.StatusReported", state),
            )
            connection.commit()
        return count / (time.perf_counter() - started)


def single_event_commands(app: RestorationApp, count: int, services: int) -> float:
    ids = [
        app.register_service(slug=f"svc-{n}", name=f"Service {n}", category="Bench", provenance=OPS).id
        for n in range(services)
    ]
    statuses = list(Status)
    started = time.perf_counter()
    for n in range(count):
        app.report_status(ids[n % services], status=statuses[n % len(statuses)], provenance=OPS)
    return count / (time.perf_counter() - started)


def ten_fact_commands(app: RestorationApp, count: int) -> float:
    statuses = list(Status)
    started = time.perf_counter()
    for n in range(count):
        service = Service.register(slug=f"batch-{n}", name=f"Batch {n}", category="Bench", provenance=OPS)
        for i in range(9):
            service.report_status(status=statuses[i % len(statuses)], provenance=OPS)
        app.save(service)
    return count * 10 / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=2000, help="single-event commands to time")
    args = parser.parse_args()
    with fresh_database() as url:
        baseline = raw_inserts(url, args.commands)
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            commands = single_event_commands(app, args.commands, services=50)
            batched = ten_fact_commands(app, args.commands // 10)
        finally:
            app.close()
    raw = Row("raw INSERT + COMMIT (baseline)", baseline, "rows/s")
    report(
        "Write throughput (bench/write.py)",
        [
            raw,
            Row("reportStatus commands", commands, "commands/s",
                baseline=raw, target=at_least(TARGET_RATIO, ratio=True)),
            ("events/s, 10 facts per command", batched, "events/s"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
