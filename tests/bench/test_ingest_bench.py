"""`hub bench ingest` on a small input: the figures it reports are measured, not made up.

One run of the command (300 rows, 30 for the memory comparison, 20 applied), shared by the tests;
each `hub ingest` it starts is a real subprocess on a fresh SQLite data directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.bench._ingest import format_report, ingest_bench_command

ROWS, APPLY_ROWS = 300, 20
HAS_PROC = Path("/proc/self/status").exists()


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bench-ingest")
    result = CliRunner().invoke(
        ingest_bench_command,
        ["--rows", str(ROWS), "--apply-rows", str(APPLY_ROWS), "--work-dir", str(work), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert not any(work.iterdir()), "the temporary files are removed afterwards"
    return json.loads(result.stdout)


def test_every_generated_row_is_one_item_in_the_inbox(figures: dict[str, Any]) -> None:
    small, full = figures["queue_only"]
    assert (small["rows"], full["rows"]) == (ROWS // 10, ROWS)
    for run in (small, full):
        # Counted in the inbox afterwards: distinct rows (the inbox would keep one of equal rows).
        assert run["inbox"] == {"pending": run["rows"]}
        assert run["inbox_items"] == run["rows"]
        assert run["exit_status"] == 0
        assert run["output_last_line"].startswith(f"{run['rows']} accepted, 0 duplicate")
        assert "--queue-only" in run["command"]


def test_sizes_and_rates_come_from_the_run(figures: dict[str, Any]) -> None:
    for run in figures["queue_only"]:
        assert run["file_bytes"] > run["rows"] * 100  # a district nursing visit row: ~170 bytes
        assert run["data_dir_bytes"] > 0
        assert 0 < run["wall_seconds"] < 300
        assert run["rows_per_second"] == pytest.approx(run["rows"] / run["wall_seconds"])
    machine = figures["machine"]
    assert machine["cpus_usable"] >= 1
    assert len(machine["load_average_start"]) == len(machine["load_average_end"]) == 3


@pytest.mark.skipif(not HAS_PROC, reason="the child's memory is read from /proc")
def test_peak_memory_is_read_from_the_running_command(figures: dict[str, Any]) -> None:
    small, full = figures["queue_only"]
    for run in (small, full):
        assert run["samples"] > 0
        # A Python process running the hub: tens of MB, nowhere near 0 or gigabytes.
        assert 10 < run["peak_rss_mb"] < 2_000
        assert 0 < run["max_rss_anon_mb"] <= run["peak_rss_mb"]
    memory = figures["memory"]
    assert memory["peak_rss_ratio"] == pytest.approx(full["peak_rss_mb"] / small["peak_rss_mb"])
    assert memory["bounded"] is (memory["peak_rss_ratio"] <= memory["max_ratio"])


def test_the_applied_slice_ends_applied_in_the_store(figures: dict[str, Any]) -> None:
    applied = figures["apply"]
    assert applied["rows"] == APPLY_ROWS
    assert "--queue-only" not in applied["command"]
    assert applied["inbox"] == {"applied": APPLY_ROWS}
    assert applied["output_last_line"].startswith(f"{APPLY_ROWS} accepted, 0 duplicate; ")
    assert applied["applied_per_second"] == pytest.approx(APPLY_ROWS / applied["wall_seconds"])
    # The store's files are in the data directory beside the inbox, which alone is smaller.
    assert applied["data_dir_bytes"] > figures["queue_only"][0]["data_dir_bytes"]


def test_the_report_shows_the_figures(figures: dict[str, Any]) -> None:
    report = format_report(figures)
    assert f"{ROWS:,} rows" in report
    assert "load average" in report
    assert f"{APPLY_ROWS:,} applied" in report
    if HAS_PROC:
        assert "peak RSS at 300 rows / at 30 rows" in report
