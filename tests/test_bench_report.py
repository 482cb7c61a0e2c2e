"""The benchmark report: what the benchmarks record as they print, BENCHMARKS.md made from it,
and the soak's check that every subscriber got every event once and in order."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bench.common import Row, at_least, at_most, fresh_database, report
from bench.report import render, results_from
from bench.soak import Subscriber


def test_each_figure_is_reported_beside_its_baseline_ratio_and_target(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("BENCH_RESULTS", str(results))
    monkeypatch.setenv("BENCH_DATABASE_URL", server_url)
    with fresh_database() as url, psycopg.connect(url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]

    raw = Row("raw INSERT + COMMIT (baseline)", 100.0, "rows/s")
    report("Writes", [raw, Row("commands", 40.0, "commands/s", baseline=raw, target=at_least(0.5, ratio=True)),
                      ("events/s, 10 facts per command", 1234.5, "events/s")])
    plain = Row("plain route (baseline)", 800.0, "req/s")
    plain_p99 = Row("  p99", 10.0, "ms")
    report("Reads", [plain, plain_p99, Row("query", 600.0, "req/s", baseline=plain),
                     Row("  p99", 20.0, "ms", baseline=plain_p99), Row("latency p99", 80.0, "ms", target=at_most(100))])

    printed = capsys.readouterr().out
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    assert "commands 40.0 commands/s 0.40 x raw INSERT + COMMIT (baseline)" in lines
    assert "p99 20.0 ms 2.00 x plain route (baseline), p99" in lines
    assert "BELOW TARGET: commands ratio 0.40 (target ratio >= 0.5)" in printed
    assert "PASS: latency p99 80.0 ms (target <= 100 ms)" in printed

    markdown = render(results_from(results))
    assert f"| PostgreSQL | {version}, " in markdown
    assert "| Python | CPython 3." in markdown
    assert "| commands | 40 commands/s | raw INSERT + COMMIT (baseline): 100 rows/s | 0.40 | ratio ≥ 0.5 | " \
           "**BELOW TARGET** |" in markdown
    assert "| events/s, 10 facts per command | 1,234 events/s |  |  |  |  |" in markdown
    assert "| &emsp;p99 | 20 ms | plain route (baseline), p99: 10 ms | 2.00 |  |  |" in markdown
    summary = markdown.split("## Targets", 1)[1].split("\n## ", 1)[0]
    assert "| commands | ratio 0.40 | ratio ≥ 0.5 | **BELOW TARGET** |" in summary
    assert "| latency p99 | 80 ms | ≤ 100 ms | PASS |" in summary


@pytest.mark.parametrize(("received", "faults"), [
    ([1, 2, 4], 0),
    ([1, 4], 1),  # 2 missing
    ([1, 2, 2, 4], 1),  # 2 twice
    ([1, 4, 2], 1),  # 2 after 4
    ([1, 2, 3, 4], 1),  # 3 was never written
])
def test_the_soak_counts_every_delivery_missing_repeated_or_out_of_order(received: list[int], faults: int) -> None:
    assert Subscriber(positions=received).faults([1, 2, 4]) == faults
