"""`hub bench ingest`: a large CSV file into the durable inbox with `hub ingest`, in bounded memory.

The input is a CSV mapping's worked example cloned, one business identifier made unique per row
(as `hub bench mappings` does), into a file of N rows. The real command then runs in a process of
its own, `python -m hub ingest MAPPING FILE --queue-only`, on SQLite state in a fresh data
directory, while this process watches it through /proc: its peak resident memory (VmHWM), and
when it opened and closed the file. Afterwards the inbox is counted: it must hold N items.

The same is done at N/10 rows: the peak memory at N must be no larger than at N/10 (bounded:
the file is streamed, not held). Then a slice of K rows is ingested without --queue-only into
another fresh data directory, for the end-to-end figure: rows/s applied to the embedded store.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from hub.mapping import MappingSet
from hub.pipeline import Inbox
from hub.settings import HubSettings
from hub.state import open_database

from ._cpus import usable_cpus
from ._mapping import KINDS, Kind, write_input
from ._store import BenchFailed, _disk_bytes

CSV_KINDS: dict[str, Kind] = {k.mapping: k for k in KINDS if k.example.endswith(".csv")}
DEFAULT_MAPPING = "district-nursing/visits"
MAX_PEAK_RATIO = 1.15
"""Bounded: the peak RSS at N rows is at most this times the peak at N/10 (allocator noise)."""
_POLL_SECONDS = 0.05
_MB = 1024 * 1024


# --- watching the command through /proc -----------------------------------------------------
def _status(pid: int) -> dict[str, float]:
    """VmHWM, VmRSS, RssAnon, RssFile of `pid` in MB; {} once it has gone (or without /proc).

    The child's own ru_maxrss (wait4, RUSAGE_CHILDREN) is no use here: Linux starts it from the
    parent's high-water mark at fork, so it would report this process's memory when larger."""
    wanted = ("VmHWM", "VmRSS", "RssAnon", "RssFile")
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in wanted:
                    found[name] = int(value.split()[0]) / 1024
    except (OSError, ValueError):
        return {}
    return found


def _find_fd(pid: int, target: str) -> int | None:
    """The descriptor on which `pid` has `target` open, if it has."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return int(fd)
        except OSError:
            continue
    return None


def _position(pid: int, fd: int, target: str) -> int | None:
    """How far `pid` has read `target` on `fd`; None once it closed it."""
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") != target:
            return None
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
            for line in info:
                if line.startswith("pos:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Watched:
    """What was seen of the command while it ran. Times are seconds since it was started."""

    peak_rss_mb: float | None = None
    """VmHWM, as last read before the process ended (it cannot be read after)."""
    max_rss_anon_mb: float | None = None
    """The largest anonymous RSS seen: the process's own memory."""
    max_rss_file_mb: float | None = None
    """The largest file-backed RSS seen: mapped files (the store's mmap), shared libraries."""
    file_opened_s: float | None = None
    file_closed_s: float | None = None
    peak_rss_mb_by_file_read: dict[str, float] = field(default_factory=dict)
    """VmHWM when each share of the file had been read ("10%", "50%", "100%")."""
    seconds_by_file_read: dict[str, float] = field(default_factory=dict)
    """When each tenth of the file had been read ("10%" ... "100%")."""
    samples: int = 0


_SHARES = (10, 50, 100)


class _Progress:
    """One line on stderr, rewritten in place on a terminal; otherwise a line at every tenth of
    the file read, and every 15 s while nothing else is said."""

    def __init__(self, stream: TextIO | None, label: str) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream is not None and stream.isatty()
        self._last = time.monotonic()
        self._tenth = -1

    def update(self, seconds: float, read: float | None, watched: Watched, phase: str) -> None:
        if self.stream is None:
            return
        tenth = -1 if read is None else int(read * 10)
        now = time.monotonic()
        if self.tty and now - self._last < 0.5:
            return
        if not self.tty and tenth <= self._tenth and now - self._last < 15:
            return
        self._last, self._tenth = now, max(tenth, self._tenth)
        share = "" if read is None else f" {100 * read:5.1f}% of the file read,"
        line = (
            f"{self.label}: {phase},{share} {seconds:6.1f} s, "
            f"peak RSS {watched.peak_rss_mb or 0:,.1f} MB"
        )
        self.stream.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def watch(
    process: subprocess.Popen[bytes], path: Path, progress: _Progress, after: str = "finishing"
) -> Watched:
    """Poll the running `process` until it exits: memory, and the input file's descriptor.
    `after` names what the process does once it has closed the file."""
    target, size = str(path.resolve()), max(path.stat().st_size, 1)
    watched = Watched()
    started = time.perf_counter()
    fd: int | None = None
    shares, tenths = list(_SHARES), list(range(1, 11))
    while process.poll() is None:
        seconds = time.perf_counter() - started
        status = _status(process.pid)
        if "VmHWM" in status:
            watched.samples += 1
            watched.peak_rss_mb = status["VmHWM"]
            watched.max_rss_anon_mb = max(watched.max_rss_anon_mb or 0, status.get("RssAnon", 0))
            watched.max_rss_file_mb = max(watched.max_rss_file_mb or 0, status.get("RssFile", 0))
        read: float | None = None
        if fd is None and watched.file_opened_s is None:
            fd = _find_fd(process.pid, target)
            if fd is not None:
                watched.file_opened_s = seconds
        if fd is not None:
            position = _position(process.pid, fd, target)
            if position is None:
                watched.file_closed_s, fd, read = seconds, None, 1.0
            else:
                read = position / size
        elif watched.file_closed_s is not None:
            read = 1.0
        while shares and read is not None and read * 100 >= shares[0] and status:
            watched.peak_rss_mb_by_file_read[f"{shares.pop(0)}%"] = status["VmHWM"]
        while tenths and read is not None and read * 10 >= tenths[0]:
            watched.seconds_by_file_read[f"{10 * tenths.pop(0)}%"] = seconds
        phase = (
            "starting"
            if watched.file_opened_s is None
            else "reading into the inbox"
            if watched.file_closed_s is None
            else after
        )
        progress.update(seconds, read, watched, phase)
        time.sleep(_POLL_SECONDS)
    progress.done()
    return watched


# --- one run of `hub ingest` ----------------------------------------------------------------
def _state_settings(data_dir: Path) -> HubSettings:
    return HubSettings(data_dir=data_dir, database_url="", fhir_url="")


def run_ingest(
    mapping: str, path: Path, data_dir: Path, *, queue_only: bool, progress: _Progress
) -> dict[str, Any]:
    """`python -m hub ingest MAPPING PATH [--queue-only]` on SQLite state in `data_dir`, watched;
    then what the inbox holds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_DATABASE_URL": "",  # SQLite state in the data directory, whatever .env says
        "HUB_FHIR_URL": "",  # the embedded store
        "HUB_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "hub", "ingest", mapping, str(path), "--no-progress"]
    if queue_only:
        command.append("--queue-only")
    out_path = data_dir.parent / f"{data_dir.name}.out"
    err_path = data_dir.parent / f"{data_dir.name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        try:
            watched = watch(process, path, progress, "finishing" if queue_only else "applying")
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        wall = time.perf_counter() - started
    output = out_path.read_text(encoding="utf-8", errors="replace").strip()
    errors = err_path.read_text(encoding="utf-8", errors="replace").strip()
    # Exit status 1: some records failed (dead letters), which the figures report.
    if process.returncode not in (0, 1) or (queue_only and process.returncode):
        tail = "\n".join(errors.splitlines()[-20:])
        raise BenchFailed(f"`{' '.join(command[2:])}` exited {process.returncode}:\n{tail}")
    database = open_database(_state_settings(data_dir).state_url)
    try:
        inbox = Inbox(database).counts().get(mapping, {})
    finally:
        database.close()
    read_seconds = None
    if watched.file_opened_s is not None and watched.file_closed_s is not None:
        read_seconds = watched.file_closed_s - watched.file_opened_s
    return {
        "command": " ".join(["hub", *command[3:]]),
        "exit_status": process.returncode,
        "output_last_line": output.splitlines()[-1] if output else "",
        "wall_seconds": wall,
        "file_open_seconds": read_seconds,
        "inbox": inbox,
        "inbox_items": sum(inbox.values()),
        "data_dir_bytes": _disk_bytes(data_dir),
        **asdict(watched),
    }


def _say(stream: TextIO | None, message: str) -> None:
    if stream is not None:
        stream.write(f"{message}\n")
        stream.flush()


def _generate(
    mappings: MappingSet, kind: Kind, rows: int, directory: Path, stream: TextIO | None
) -> dict[str, Any]:
    directory.mkdir(parents=True)
    _say(stream, f"generating {rows:,} rows of {kind.mapping} ...")
    started = time.perf_counter()
    path = write_input(mappings, kind, rows, directory)
    return {
        "path": path,
        "rows": rows,
        "file_bytes": path.stat().st_size,
        "generate_seconds": time.perf_counter() - started,
    }


def _queued(
    mapping: str, made: dict[str, Any], work: Path, name: str, stream: TextIO | None
) -> dict[str, Any]:
    """A file of rows into a fresh inbox with --queue-only; all of them must be there."""
    rows = made["rows"]
    label = f"hub ingest --queue-only, {rows:,} rows"
    _say(stream, f"{label} ...")
    run = run_ingest(
        mapping, made["path"], work / name, queue_only=True, progress=_Progress(stream, label)
    )
    if run["inbox"] != {"pending": rows}:
        raise BenchFailed(f"{rows:,} rows ingested, but the inbox holds {run['inbox']}")
    return _figures(made, run)


def _figures(made: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    rows = made["rows"]
    figures = {k: v for k, v in made.items() if k != "path"}
    figures.update(run)
    figures["rows_per_second"] = rows / run["wall_seconds"]
    open_s = run["file_open_seconds"]
    figures["rows_per_second_file_open"] = rows / open_s if open_s else None
    at = run["seconds_by_file_read"]
    opened, closed = run["file_opened_s"], run["file_closed_s"]
    first = at["10%"] - opened if opened is not None and "10%" in at else None
    last = closed - at["90%"] if closed is not None and "90%" in at else None
    figures["rows_per_second_first_tenth"] = rows / 10 / first if first else None
    figures["rows_per_second_last_tenth"] = rows / 10 / last if last else None
    return figures


def _machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def run_ingest_bench(
    *,
    mapping: str = DEFAULT_MAPPING,
    rows: int = 1_000_000,
    apply_rows: int = 20_000,
    work_dir: Path | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Every figure of `hub bench ingest`; temporary files are removed afterwards."""
    kind = CSV_KINDS[mapping]
    mappings = MappingSet(HubSettings().mappings_dir)
    results: dict[str, Any] = {
        "machine": {**_machine(), "load_average_start": os.getloadavg()},
        "mapping": mapping,
        "example": kind.example,
        "unique_columns": list(kind.unique),
    }
    small = max(1, rows // 10)
    with tempfile.TemporaryDirectory(prefix="hub-bench-ingest-", dir=work_dir) as tmp:
        work = Path(tmp)
        runs = []
        for name, count in (("small", small), ("full", rows)):
            made = _generate(mappings, kind, count, work / f"{name}-input", progress)
            runs.append(_queued(mapping, made, work, f"{name}-data", progress))
            made["path"].unlink()
        results["queue_only"] = runs
        peaks = [r["peak_rss_mb"] for r in runs]
        ratio = peaks[1] / peaks[0] if all(peaks) else None
        results["memory"] = {
            "peak_rss_ratio": ratio,
            "max_ratio": MAX_PEAK_RATIO,
            "bounded": None if ratio is None else ratio <= MAX_PEAK_RATIO,
        }
        if apply_rows:
            made = _generate(mappings, kind, apply_rows, work / "apply-input", progress)
            label = f"hub ingest (apply), {apply_rows:,} rows"
            _say(progress, f"{label} ...")
            run = run_ingest(
                mapping,
                made["path"],
                work / "apply-data",
                queue_only=False,
                progress=_Progress(progress, label),
            )
            applied = _figures(made, run)
            if run["inbox_items"] != apply_rows or {"pending", "processing"} & run["inbox"].keys():
                raise BenchFailed(f"{apply_rows:,} rows ingested, the inbox holds {run['inbox']}")
            applied["applied_per_second"] = run["inbox"].get("applied", 0) / run["wall_seconds"]
            results["apply"] = applied
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


# --- reporting ------------------------------------------------------------------------------
def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} MB"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def format_report(results: dict[str, Any]) -> str:
    machine, (small, full) = results["machine"], results["queue_only"]
    load_start = " ".join(f"{x:.2f}" for x in machine["load_average_start"])
    load_end = " ".join(f"{x:.2f}" for x in machine["load_average_end"])
    unique = ", ".join(results["unique_columns"]) or "none"
    lines = [
        f"hub bench ingest: {results['mapping']}, `hub ingest` run in a subprocess on SQLite "
        "state in a fresh data directory",
        f"  machine    {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable); load "
        f"average {load_start} at start, {load_end} at end",
        f"  software   Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"{machine['platform']}",
        f"  input      {results['example']} cloned row by row ({unique} unique per row), "
        f"{full['file_bytes'] / full['rows']:,.0f} bytes per row",
        "",
        "Into the inbox: hub ingest MAPPING FILE --queue-only",
    ]
    width = 44
    table = [
        ("", lambda r: f"{r['rows']:,} rows"),
        ("file size", lambda r: _mb(r["file_bytes"] / _MB)),
        ("wall time, whole command", lambda r: _seconds(r["wall_seconds"])),
        ("  of which the file was open", lambda r: _seconds(r["file_open_seconds"])),
        ("rows/s, whole command", lambda r: _rate(r["rows_per_second"])),
        ("rows/s, while the file was open", lambda r: _rate(r["rows_per_second_file_open"])),
        ("  in its first tenth / its last tenth", _tenths),
        ("peak RSS (VmHWM)", lambda r: _mb(r["peak_rss_mb"])),
        ("  at 10% / 50% / 100% of the file read", _by_share),
        ("largest anonymous RSS seen", lambda r: _mb(r["max_rss_anon_mb"])),
        ("inbox afterwards", lambda r: ", ".join(f"{n:,} {s}" for s, n in r["inbox"].items())),
        ("data dir on disk (hub.db, WAL)", lambda r: _mb(r["data_dir_bytes"] / _MB)),
    ]
    for label, show in table:
        lines.append(f"  {label:<{width}}{show(small):>22}{show(full):>22}")
    memory = results["memory"]
    if memory["peak_rss_ratio"] is None:
        lines.append("  peak RSS not measurable here (no /proc): boundedness not shown")
    else:
        verdict = "bounded" if memory["bounded"] else "NOT bounded: it grows with the input"
        lines += [
            f"  peak RSS at {full['rows']:,} rows / at {small['rows']:,} rows: "
            f"{memory['peak_rss_ratio']:.2f}x ({verdict}; limit {memory['max_ratio']:.2f}x)",
            f"  a {_mb(full['file_bytes'] / _MB)} file ingested with a peak of "
            f"{_mb(full['peak_rss_mb'])} "
            f"({full['peak_rss_mb'] * _MB / full['file_bytes']:.2f}x the file size)",
        ]
    applied = results.get("apply")
    if applied:
        inbox = applied["inbox"]
        outcome = ", ".join(f"{inbox.get(s, 0):,} {s}" for s in ("applied", "withheld", "waiting"))
        lines += [
            "",
            f"Applied end to end: hub ingest MAPPING FILE (no --queue-only), "
            f"{applied['rows']:,} rows, fresh data dir, embedded store",
            f"  wall time        {_seconds(applied['wall_seconds'])} (start-up, reading into "
            f"the inbox for {_seconds(applied['file_open_seconds'])}, then applying)",
            f"  applied          {_rate(applied['applied_per_second'])} rows/s end to end",
            f"  outcome          {outcome}, {inbox.get('failed', 0):,} failed",
            f"  peak RSS         {_mb(applied['peak_rss_mb'])} (VmHWM); largest seen: "
            f"anonymous {_mb(applied['max_rss_anon_mb'])} (SQLite's page caches included), "
            f"file-backed {_mb(applied['max_rss_file_mb'])} (the store's mmap, libraries)",
            f"  data dir         {_mb(applied['data_dir_bytes'] / _MB)} on disk",
        ]
    return "\n".join(lines)


def _tenths(run: dict[str, Any]) -> str:
    first, last = run["rows_per_second_first_tenth"], run["rows_per_second_last_tenth"]
    return f"{_rate(first)} / {_rate(last)}"


def _by_share(run: dict[str, Any]) -> str:
    shares = run["peak_rss_mb_by_file_read"]
    if not shares:
        return "-"
    return " / ".join(f"{shares[f'{s}%']:,.0f}" if f"{s}%" in shares else "-" for s in _SHARES)


# --- the command ----------------------------------------------------------------------------
@click.command("ingest")
@click.option(
    "--rows",
    type=click.IntRange(10),
    default=1_000_000,
    show_default=True,
    help="Rows in the big file; the memory comparison also runs a tenth of it.",
)
@click.option(
    "--mapping",
    type=click.Choice(sorted(CSV_KINDS)),
    default=DEFAULT_MAPPING,
    show_default=True,
    help="The CSV mapping whose worked example is cloned.",
)
@click.option(
    "--apply-rows",
    type=click.IntRange(0),
    default=20_000,
    show_default=True,
    help="Rows ingested and applied to the embedded store end to end (0: skip).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Where the temporary files and data directories go (they are removed afterwards). "
    "Default: the system's temporary directory. The inbox takes ~5x the file's size on disk.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def ingest_bench_command(
    rows: int, mapping: str, apply_rows: int, work_dir: Path | None, as_json: bool
) -> None:
    """Ingest a big synthetic CSV file with `hub ingest --queue-only` in a subprocess: rows/s
    into the inbox and peak memory, at N and N/10 rows (the peak must not grow with N); then
    a slice applied end to end. Exits 1 when the peak memory grew with the input."""
    results = run_ingest_bench(
        mapping=mapping, rows=rows, apply_rows=apply_rows, work_dir=work_dir, progress=sys.stderr
    )
    click.echo(json.dumps(results, indent=2) if as_json else format_report(results))
    if results["memory"]["bounded"] is False:
        sys.exit(1)
