"""Audit throughput: verifying the hash chain and exporting the history, beside a raw baseline.

Baseline: ``COPY`` of the events table to a file with psycopg, on the same server, in the same
run. Targets: verify >= 50,000 events/s; export (decoded JSON Lines with hashes, to a file)
>= 0.3 of the raw COPY rate. Sealing (the audit_chain projection catching up from 0, signing a
checkpoint every 1,000 events) is shown for information; verify checks those signatures too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from api.audit import history_writer  # noqa: E402
from api.composition import event_log  # noqa: E402
from api.database import eventsourcing_env  # noqa: E402
from bench.common import Row, at_least, fresh_database, report  # noqa: E402
from domain.application import RestorationApp  # noqa: E402
from domain.service import Service  # noqa: E402
from domain.values import Phase, Provenance, Status  # noqa: E402
from projections.audit_chain import AuditChain, history, verify_chain  # noqa: E402
from projections.runner import catch_up, create_tables  # noqa: E402

VERIFY_TARGET = 50_000
EXPORT_TARGET_RATIO = 0.3
SERVICES_PER_SAVE = 100
START = datetime(2022, 6, 17, 9, tzinfo=timezone.utc)
T = TypeVar("T")


def record_history(app: RestorationApp, count: int) -> int:
    """About ``count`` events: services that go down, get ETAs and workarounds, and come back.

    Saved a hundred services (about a thousand events) at a time, like the demo scenario.
    """
    recorded = 0
    serial = 0
    while recorded < count:
        events = []
        for _ in range(SERVICES_PER_SAVE):
            events.extend(_one_service(serial))
            serial += 1
        app.save(*events)
        recorded += len(events)
    return recorded


def _one_service(serial: int) -> list[object]:
    def by(hours: int, actor: str = "it.recovery@example.org", reason: str | None = None) -> Provenance:
        return Provenance(actor, reason=reason, occurred_at=START + timedelta(hours=hours))

    service = Service.register(slug=f"service-{serial}", name=f"Service {serial}", category="Bench",
                               resident_facing=serial % 2 == 0, provenance=by(0))
    service.report_status(status=Status.MAJOR_OUTAGE, phase=Phase.ISOLATED, note="Taken offline to contain it.",
                          public_note="Unavailable while we deal with a cyber attack.", provenance=by(1))
    service.set_eta(expected_at=START + timedelta(days=5), confidence="LOW",
                    provenance=by(2, "lead@example.org", "Depends on the forensic review."))
    service.publish_workaround(workaround_id="phone", channel="Card payment line",
                               instructions="Call the automated line with your reference ready.",
                               contact="020 7946 0123", audience="All residents", provenance=by(3))
    for hours, phase in ((24, Phase.ASSESSING), (48, Phase.RESTORING), (72, Phase.VALIDATING)):
        service.report_status(phase=phase, provenance=by(hours))
    service.set_eta(expected_at=START + timedelta(days=8), confidence="MEDIUM",
                    provenance=by(80, "lead@example.org", "Rebuilding on clean infrastructure."))
    service.report_status(status=Status.OPERATIONAL, phase=Phase.RESTORED, provenance=by(96))
    service.withdraw_workaround(workaround_id="phone", provenance=by(97))
    return list(service.collect_events())


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events to record (at least)")
    args = parser.parse_args()
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="restoration-audit-") as scratch:
        app = RestorationApp(env=eventsourcing_env(url))
        try:
            count = record_history(app, args.events)
            log = event_log(app)
            with psycopg.connect(url) as connection:
                key = Ed25519PrivateKey.generate()
                sealer = AuditChain(signing_key=key)
                create_tables(connection, sealer)
                _, sealing = timed(lambda: catch_up(connection, log, sealer))

                def copy_out() -> None:
                    with open(Path(scratch) / "events.copy", "wb") as file, \
                            connection.cursor().copy(f"COPY {log.table} TO STDOUT") as copy:
                        for data in copy:
                            file.write(data)
                    connection.commit()

                def export() -> None:
                    with open(Path(scratch) / "events.jsonl", "w", encoding="utf-8") as file:
                        write = history_writer("jsonl", file, header=False)
                        for record in history(connection, log.table):
                            write(record)

                _, raw = timed(copy_out)
                checked, verifying = timed(lambda: verify_chain(connection, log.table, public_keys=[key.public_key()]))
                _, exporting = timed(export)
        finally:
            app.close()
    assert checked.intact and checked.events_verified == count
    raw_copy = Row("raw COPY of the events table (baseline)", count / raw, "rows/s")
    report(
        f"Audit throughput (bench/audit.py), {count:,} events",
        [
            ("sealing from position 0 (information)", count / sealing, "events/s"),
            Row("verify the chain", count / verifying, "events/s", target=at_least(VERIFY_TARGET)),
            raw_copy,
            Row("export, JSON Lines with hashes", count / exporting, "events/s",
                baseline=raw_copy, target=at_least(EXPORT_TARGET_RATIO, ratio=True)),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
