"""`hub bench store`: load synthetic patients into a fresh embedded store, then time searches.

The load goes through `FhirStore.transaction` and the searches through `FhirStore.search`, the
same calls the REST API makes, without HTTP in between. Throughput is counted on the time spent
inside `transaction` (generating the data is timed apart), latency on each `search` call.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import click

from hub.fhir import FhirError
from hub.record import time_record
from hub.settings import HubSettings
from hub.store import FhirStore, open_store

from ._cpus import usable_cpus
from ._synthetic import (
    NHS_NUMBER_CAPACITY,
    NHS_NUMBER_SYSTEM,
    RESOURCES_PER_PATIENT,
    PatientFacts,
    bundle_patients,
    patient_facts,
    transaction_bundles,
)

TARGET_WRITES_PER_SECOND = 5_000
TARGET_SEARCH_P95_MS = 20.0
TARGET_RECORD_P95_MS = 100.0  # issue 9: `hub record` at 100,000 patients
SLICES = 10


@dataclass(frozen=True)
class SearchKind:
    name: str
    resource_type: str
    shape: str
    """The query as a reader sees it, with placeholders."""
    params: Callable[[PatientFacts], list[tuple[str, str]]]


SEARCHES = (
    SearchKind(
        "careplan_by_patient_nhs_number",
        "CarePlan",
        f"CarePlan?patient.identifier={NHS_NUMBER_SYSTEM}|<nhs number>",
        lambda p: [("patient.identifier", f"{NHS_NUMBER_SYSTEM}|{p.nhs_number}")],
    ),
    SearchKind(
        "patient_by_family_birthdate",
        "Patient",
        "Patient?family=<family>&birthdate=<birth date>",
        lambda p: [("family", p.family), ("birthdate", p.birth_date)],
    ),
)


@dataclass
class LoadSlice:
    """One tenth of the load: what it wrote, how fast, and the writers' memory at its end."""

    slice: int
    patients_loaded: int
    resources: int
    store_seconds: float
    wall_seconds: float
    rss_mb: float | None
    """Anonymous RSS (the process's own memory), the largest of the writers'."""
    mapped_mb: float | None
    """File-backed RSS: pages of the memory-mapped store, OS page cache, capped by mmap_size."""

    @property
    def per_second(self) -> float | None:
        return self.resources / self.wall_seconds if self.wall_seconds > 0 else None


class BenchFailed(click.ClickException):
    """The benchmark could not measure what it set out to (not: a target was missed)."""


# --- measuring ------------------------------------------------------------------------------
def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """Anonymous resident memory now (RssAnon): what the process itself holds. The store's
    memory-mapped file pages are counted apart (`mapped_mb`): they are the OS page cache,
    shared, reclaimable, and capped by SQLite's mmap_size. None where there is no /proc."""
    return _status_mb("RssAnon")


def mapped_mb() -> float | None:
    """File-backed resident memory now (RssFile): mostly the memory-mapped store."""
    return _status_mb("RssFile")


def peak_rss_mb() -> float:
    """`ru_maxrss` of this process: KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _machine() -> dict[str, Any]:
    usable = usable_cpus()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


class _Progress:
    """One line on stderr, rewritten in place on a terminal; a line per slice otherwise."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, done: int, per_second: float, *, slice_end: bool = False) -> None:
        now = time.monotonic()
        if not (slice_end or (self.tty and now - self._last >= 0.25)):
            return
        self._last = now
        rss = rss_mb()
        line = (
            f"loading {done:>11,} / {self.total:,} resources {100 * done / self.total:5.1f}%"
            f"  {per_second:8,.0f}/s  anon RSS {rss or 0:7,.1f} MB"
        )
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
        elif slice_end:
            self.stream.write(f"{line}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# --- running --------------------------------------------------------------------------------
def _existing_patients(store: FhirStore) -> int:
    page = store.search("Patient", [("_summary", "count")])
    return page.total or 0


def _check_response(response: dict[str, Any], sent: int) -> None:
    entries = response.get("entry") or []
    statuses = [str((e.get("response") or {}).get("status", "")) for e in entries]
    if len(statuses) != sent or not all(s.startswith("201") for s in statuses):
        bad = next((s for s in statuses if not s.startswith("201")), "missing entries")
        raise BenchFailed(f"transaction-response: expected {sent} x 201 Created, got {bad!r}")


@dataclass(frozen=True)
class _Written:
    """What one transaction wrote, reported by the writer that sent it."""

    resources: int
    seconds: float
    rss_mb: float | None
    mapped_mb: float | None


_DONE = "done"


def _write_share(
    store: FhirStore, seed: int, patients: int, batch: int, first: int, share: tuple[int, int]
) -> Iterator[_Written]:
    for number, bundle in enumerate(
        transaction_bundles(seed, patients, batch, first=first, share=share), 1
    ):
        sent = len(bundle["entry"])
        before = time.perf_counter()
        try:
            response = store.transaction(bundle)
        except FhirError as exc:
            raise BenchFailed(f"writer {share[0]}, transaction {number} failed: {exc}") from exc
        took = time.perf_counter() - before
        _check_response(response, sent)
        yield _Written(sent, took, rss_mb(), mapped_mb())


def _writer_process(settings: HubSettings, args: tuple[Any, ...], queue: Any) -> None:
    """One of several writers: its own process and store connection, sharing the store file."""
    store = open_store(settings)
    try:
        for written in _write_share(store, *args):
            queue.put(written)
        queue.put((_DONE, peak_rss_mb(), None))
    except BaseException as exc:
        queue.put((_DONE, peak_rss_mb(), f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


class _WriterPool:
    """`writers` processes writing their shares of the patients into one store file.

    Iterating yields each transaction as a writer reports it; afterwards `peak_rss_mb` holds
    each writer's peak RSS (the parent's own says nothing of theirs).
    """

    def __init__(self, settings: HubSettings, args: tuple[Any, ...], writers: int) -> None:
        self.settings, self.args, self.writers = settings, args, writers
        self.peak_rss_mb: list[float] = []

    def __iter__(self) -> Iterator[_Written]:
        context = multiprocessing.get_context("spawn")  # no SQLite handle crosses a fork
        queue = context.Queue()
        processes = [
            context.Process(
                target=_writer_process,
                args=(self.settings, (*self.args, (k, self.writers)), queue),
            )
            for k in range(self.writers)
        ]
        for process in processes:
            process.start()
        running, failures = self.writers, []
        try:
            while running:
                message = queue.get()
                if isinstance(message, _Written):
                    yield message
                    continue
                running -= 1
                self.peak_rss_mb.append(message[1])
                if message[2]:
                    failures.append(message[2])
        finally:
            for process in processes:
                process.join(timeout=60)
        if failures:
            raise BenchFailed("; ".join(failures))


def load(
    store: FhirStore,
    settings: HubSettings,
    *,
    seed: int,
    patients: int,
    batch: int,
    first: int,
    writers: int,
    progress: _Progress | None,
) -> dict[str, Any]:
    """Write the patients; return the figures of the load and of each tenth of it.

    Throughput is resources over the wall-clock time of the whole load, generating the data
    included, whatever the number of writers.
    """
    resources = patients * RESOURCES_PER_PATIENT
    boundaries = [math.ceil(resources * k / SLICES) for k in range(1, SLICES + 1)]
    slices: list[LoadSlice] = []
    written = bundles = slice_resources = 0
    store_seconds = slice_store = 0.0
    writer_rss: dict[int, float] = {}
    writer_mapped: dict[int, float] = {}
    args = (seed, patients, batch, first)
    pool = _WriterPool(settings, args, writers) if writers > 1 else None
    stream = pool if pool is not None else _write_share(store, *args, (0, 1))
    started = slice_started = time.perf_counter()
    for item in stream:
        bundles += 1
        written += item.resources
        slice_resources += item.resources
        store_seconds += item.seconds
        slice_store += item.seconds
        writer_rss[bundles % writers] = item.rss_mb or 0.0
        writer_mapped[bundles % writers] = item.mapped_mb or 0.0
        now = time.perf_counter()
        while len(slices) < SLICES and written >= boundaries[len(slices)]:
            slices.append(
                LoadSlice(
                    len(slices) + 1,
                    written // RESOURCES_PER_PATIENT,
                    slice_resources,
                    slice_store,
                    now - slice_started,
                    max(writer_rss.values()),
                    max(writer_mapped.values()),
                )
            )
            slice_resources, slice_store, slice_started = 0, 0.0, now
            if progress:
                progress.update(written, written / (now - started), slice_end=True)
        if progress:
            progress.update(written, written / (now - started))
    wall = time.perf_counter() - started
    if progress:
        progress.done()
    return {
        "resources": written,
        "bundles": bundles,
        "writers": writers,
        "patients_per_bundle": bundle_patients(batch),
        "wall_seconds": wall,
        "store_seconds": store_seconds,
        "per_second": written / wall if wall else None,
        "writer_peak_rss_mb": pool.peak_rss_mb if pool is not None else [],
        "slices": [{**asdict(s), "per_second": s.per_second} for s in slices],
    }


def time_searches(
    store: FhirStore, kind: SearchKind, *, seed: int, first: int, patients: int, count: int
) -> dict[str, Any]:
    """Run `count` searches for randomly chosen loaded patients; latencies in ms."""
    rng = random.Random(f"{seed}:{kind.name}")
    latencies: list[float] = []
    empty: list[str] = []
    matched = 0
    for _ in range(count):
        params = kind.params(patient_facts(seed, first + rng.randrange(patients)))
        before = time.perf_counter()
        page = store.search(kind.resource_type, params)
        latencies.append((time.perf_counter() - before) * 1000)
        matched += len(page.matches)
        if not page.matches:
            empty.append("&".join(f"{k}={v}" for k, v in params))
    latencies.sort()
    return {
        "query": kind.shape,
        "searches": count,
        "mean_matches": matched / count,
        "empty": len(empty),
        "empty_examples": empty[:3],
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1],
    }


def time_records(
    store: FhirStore,
    settings: HubSettings,
    *,
    seed: int,
    first: int,
    patients: int,
    count: int,
) -> dict[str, Any]:
    """`hub record` (read, summarise, draw) for `count` randomly chosen loaded patients."""
    rng = random.Random(f"{seed}:record")
    numbers = [
        patient_facts(seed, first + rng.randrange(patients)).nhs_number for _ in range(count)
    ]
    timings = time_record(store, numbers, settings.profiles_dir)
    return {
        "records": timings.count,
        "p50_ms": timings.median_ms,
        "p95_ms": timings.p95_ms,
        "max_ms": timings.max_ms,
    }


def run_store_bench(
    *,
    patients: int,
    batch: int,
    searches: int,
    seed: int,
    data_dir: Path,
    synchronous: str | None,
    writers: int,
    progress: _Progress | None,
) -> dict[str, Any]:
    settings = HubSettings(data_dir=data_dir, fhir_url="")
    if synchronous:
        settings = settings.model_copy(update={"sqlite_synchronous": synchronous})
    load_before = os.getloadavg()
    store = open_store(settings)
    try:
        first = _existing_patients(store)
        if first + patients > NHS_NUMBER_CAPACITY:
            raise BenchFailed(
                f"{first:,} patients already there: at most {NHS_NUMBER_CAPACITY:,} in all"
            )
        loaded = load(
            store,
            settings,
            seed=seed,
            patients=patients,
            batch=batch,
            first=first,
            writers=writers,
            progress=progress,
        )
        timed = {
            kind.name: time_searches(
                store, kind, seed=seed, first=first, patients=patients, count=searches
            )
            for kind in SEARCHES
        }
        record = time_records(
            store, settings, seed=seed, first=first, patients=patients, count=searches
        )
    finally:
        store.close()
    load_after = os.getloadavg()
    slice_rss = [s["rss_mb"] for s in loaded["slices"]]
    slice_mapped = [s["mapped_mb"] for s in loaded["slices"]]
    results: dict[str, Any] = {
        "config": {
            "patients": patients,
            "related_per_patient": RESOURCES_PER_PATIENT - 1,
            "batch": batch,
            "searches": searches,
            "seed": seed,
            "data_dir": str(data_dir),
            "synchronous": settings.sqlite_synchronous,
            "writers": writers,
            "patients_already_in_store": first,
        },
        "machine": {
            **_machine(),
            "load_average_start": list(load_before),
            "load_average_end": list(load_after),
        },
        "load": loaded,
        "searches": timed,
        "record": record,
        "memory": {
            "peak_rss_mb": peak_rss_mb(),
            "rss_mb_at_each_tenth": slice_rss,
            "mapped_mb_at_each_tenth": slice_mapped,
            "after_searches": {"rss_mb": rss_mb(), "mapped_mb": mapped_mb()},
        },
        "store_disk_bytes": _disk_bytes(data_dir),
    }
    results["targets"] = _targets(results)
    return results


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    per_second = results["load"]["per_second"] or 0.0
    targets = [
        {
            "name": "write throughput (resources/s)",
            "target": f">= {TARGET_WRITES_PER_SECOND:,}",
            "value": per_second,
            "pass": per_second >= TARGET_WRITES_PER_SECOND,
        }
    ]
    targets.append(
        {
            "name": "hub record p95 (ms)",
            "target": f"< {TARGET_RECORD_P95_MS:g}",
            "value": results["record"]["p95_ms"],
            "pass": results["record"]["p95_ms"] < TARGET_RECORD_P95_MS,
        }
    )
    for name, figures in results["searches"].items():
        targets.append(
            {
                "name": f"{name} p95 (ms)",
                "target": f"< {TARGET_SEARCH_P95_MS:g}",
                "value": figures["p95_ms"],
                "pass": figures["p95_ms"] < TARGET_SEARCH_P95_MS and not figures["empty"],
            }
        )
    return targets


# --- reporting ------------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_report(results: dict[str, Any], *, data_dir_note: str = "") -> str:
    config, machine, loaded = results["config"], results["machine"], results["load"]
    targets = {t["name"]: t for t in results["targets"]}
    write_target = targets["write throughput (resources/s)"]
    per_bundle = loaded["patients_per_bundle"]
    lines = [
        "hub bench store: the embedded SQLite store",
        f"  data dir      {config['data_dir']}{data_dir_note}",
        f"  data          {config['patients']:,} synthetic patients, each with "
        f"{config['related_per_patient']} related resources; seed {config['seed']}",
        f"  transactions  {per_bundle} patients ({per_bundle * RESOURCES_PER_PATIENT} resources)"
        f" per Bundle, from --batch {config['batch']}; SQLite synchronous={config['synchronous']}",
        f"  machine       {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable); "
        f"load average {machine['load_average_start'][0]:.2f} at start, "
        f"{machine['load_average_end'][0]:.2f} at end",
        f"  software      Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"{machine['platform']}",
        "",
        "Load",
        f"  written       {loaded['resources']:,} resources in {loaded['bundles']:,} transactions",
        f"  writers       {loaded['writers']} process(es), each with its own connection to "
        "the one store file",
        f"  elapsed       {loaded['wall_seconds']:,.1f} s wall clock, generating the data included"
        f" ({loaded['store_seconds']:,.1f} s inside store.transaction, summed over writers)",
        f"  throughput    {loaded['per_second'] or 0:,.0f} resources/s"
        f"   target {write_target['target']}  {_verdict(write_target['pass'])}",
        "",
        "  tenth  patients loaded  resources   wall s  resources/s  anon MB  mapped MB",
    ]
    for s in loaded["slices"]:
        rate = "-" if s["per_second"] is None else f"{s['per_second']:,.0f}"
        lines.append(
            f"  {s['slice']:>5}  {s['patients_loaded']:>15,}  {s['resources']:>9,}"
            f"  {s['wall_seconds']:>7.2f}  {rate:>11}  {_mb(s['rss_mb']):>7}"
            f"  {_mb(s['mapped_mb']):>9}"
        )
    rates = [s["per_second"] for s in loaded["slices"] if s["per_second"]]
    if len(rates) >= 2:
        lines.append(f"  last tenth / first tenth: {rates[-1] / rates[0]:.2f}x the throughput")
    lines += [
        "",
        f"Searches ({config['searches']:,} of each, for random loaded patients; latency in ms)",
    ]
    for name, s in results["searches"].items():
        t = targets[f"{name} p95 (ms)"]
        lines += [
            f"  {s['query']}",
            f"      p50 {s['p50_ms']:.2f}  p95 {s['p95_ms']:.2f}  p99 {s['p99_ms']:.2f}"
            f"  max {s['max_ms']:.2f}  matches {s['mean_matches']:.1f} on average"
            f"   target p95 {t['target']}  {_verdict(t['pass'])}",
        ]
        if s["empty"]:
            lines.append(f"      {s['empty']} found nothing, e.g. {s['empty_examples']}")
    record, t = results["record"], targets["hub record p95 (ms)"]
    lines += [
        f"  hub record <nhs number>  ({record['records']:,} records: read, summarised, drawn)",
        f"      p50 {record['p50_ms']:.2f}  p95 {record['p95_ms']:.2f}  max {record['max_ms']:.2f}"
        f"   target p95 {t['target']}  {_verdict(t['pass'])}",
    ]
    memory = results["memory"]
    writer_peaks = loaded["writer_peak_rss_mb"]
    lines += [
        "",
        "Memory and disk",
        "  anonymous RSS (the processes' own memory) at each tenth, largest writer:",
        "    " + "  ".join(_mb(v) for v in memory["rss_mb_at_each_tenth"]) + " MB",
        "  file-backed RSS (pages of the memory-mapped store: OS page cache, shared,",
        "  reclaimable, at most SQLite's mmap_size of 1 GiB) at each tenth, largest writer:",
        "    " + "  ".join(_mb(v) for v in memory["mapped_mb_at_each_tenth"]) + " MB",
        f"  after the searches, this process: {_mb(memory['after_searches']['rss_mb'])} MB "
        f"anonymous, {_mb(memory['after_searches']['mapped_mb'])} MB file-backed",
        f"  peak RSS (ru_maxrss, both kinds)   {_mb(memory['peak_rss_mb'])} MB this process"
        + (f"; writers {', '.join(_mb(v) for v in writer_peaks)} MB" if writer_peaks else ""),
        f"  store on disk          {results['store_disk_bytes'] / 1024**2:,.1f} MB",
        "",
        "Targets",
    ]
    width = max(len(name) for name in targets)
    for name, t in targets.items():
        lines.append(
            f"  {name:<{width}}  {t['target']:>8}  {t['value']:>10,.2f}  {_verdict(t['pass'])}"
        )
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------
def _prepare_data_dir(data_dir: Path | None, reuse: bool) -> tuple[Path, bool]:
    """The directory to load into, and whether it is a temporary one to remove afterwards."""
    if data_dir is None:
        return Path(tempfile.mkdtemp(prefix="hub-bench-")), True
    if data_dir.exists() and any(data_dir.iterdir()) and not reuse:
        raise click.UsageError(
            f"--data-dir {data_dir} is not empty: give an empty or new directory, or --reuse "
            "to add to the store in it"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, False


@click.command("store")
@click.option(
    "--patients",
    type=click.IntRange(1, NHS_NUMBER_CAPACITY),
    default=100_000,
    show_default=True,
    help=f"Synthetic patients to load, each with {RESOURCES_PER_PATIENT - 1} related resources "
    "(2 Encounters, a CarePlan, a QuestionnaireResponse, a Provenance).",
)
@click.option(
    "--batch",
    type=click.IntRange(RESOURCES_PER_PATIENT, 10_000),
    default=100,
    show_default=True,
    help="Resources per transaction Bundle, rounded down to whole patients (a patient and its "
    "related resources share a Bundle).",
)
@click.option(
    "--searches",
    type=click.IntRange(1, None),
    default=1_000,
    show_default=True,
    help="Searches of each kind to time after the load.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the store. Default: a new temporary directory, removed afterwards.",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="Allow a non-empty --data-dir: add to the store in it (numbering goes on after the "
    "patients already there).",
)
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"]),
    default=None,
    help="SQLite synchronous mode. Default: HUB_SQLITE_SYNCHRONOUS, else FULL.",
)
@click.option(
    "--writers",
    type=click.IntRange(1, 64),
    default=None,
    help="Writer processes sharing the store, as several hub workers do (each validates and "
    "indexes its Bundles outside SQLite's write lock). Default: the usable CPUs.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures to this JSON file.",
)
def store_bench_command(
    patients: int,
    batch: int,
    searches: int,
    seed: int,
    data_dir: Path | None,
    reuse: bool,
    synchronous: str | None,
    writers: int | None,
    json_path: Path | None,
) -> None:
    """Benchmark the embedded store: write throughput, search latency, memory.

    Loads synthetic patients through FhirStore.transaction, then times two searches through
    FhirStore.search, and compares the figures with the targets (>= 5,000 resources/s written,
    p95 < 20 ms for each search). Exits non-zero only when the benchmark itself fails (a
    transaction error, or a search that finds nothing), not when a target is missed.
    """
    directory, temporary = _prepare_data_dir(data_dir, reuse)
    total = patients * RESOURCES_PER_PATIENT
    try:
        results = run_store_bench(
            patients=patients,
            batch=batch,
            searches=searches,
            seed=seed,
            data_dir=directory,
            synchronous=synchronous,
            writers=writers or _machine()["cpus_usable"] or 1,
            progress=_Progress(sys.stderr, total),
        )
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    click.echo(format_report(results, data_dir_note=" (temporary, removed)" if temporary else ""))
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        click.echo(f"\nfigures written to {json_path}")
    empty = sum(s["empty"] for s in results["searches"].values())
    if empty:
        raise BenchFailed(f"{empty} searches found nothing: the search figures are not valid")
