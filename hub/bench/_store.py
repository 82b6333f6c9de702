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
import queue
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import click

from hub.fhir import FhirError
from hub.record import time_record
from hub.settings import HubSettings
from hub.store import FhirStore, open_store

from ._backends import (
    RunScope,
    comparison_rows,
    format_comparison,
    nhs_numbers_on,
    remove_run,
    stored_counts,
)
from ._cpus import usable_cpus
from ._synthetic import (
    NHS_NUMBER_CAPACITY,
    NHS_NUMBER_SYSTEM,
    RESOURCES_PER_PATIENT,
    PatientFacts,
    bundle_patients,
    nhs_number,
    patient_entries,
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

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, done: int, per_second: float, *, slice_end: bool = False) -> None:
        now = time.monotonic()
        if not (slice_end or (self.tty and now - self._last >= 0.25)):
            return
        self._last = now
        rss = rss_mb()
        line = (
            f"{self.label}: loading {done:>11,} / {self.total:,} resources"
            f" {100 * done / self.total:5.1f}%  {per_second:8,.0f}/s  anon RSS {rss or 0:7,.1f} MB"
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
@dataclass(frozen=True)
class LoadPlan:
    """The patients a run loads and searches for: the same on every backend it measures.

    Patients `first` .. `first + patients - 1` of the data set `seed`, in Bundles of `batch`
    resources; with a `scope`, each resource carries the run's tag and the patients whose NHS
    numbers the server already has are left out.
    """

    seed: int
    patients: int
    batch: int
    first: int
    scope: RunScope | None = None

    @property
    def patients_kept(self) -> int:
        return self.patients - len(self.scope.taken) if self.scope else self.patients

    def bundles(self, share: tuple[int, int]) -> Iterator[dict[str, Any]]:
        bundles = transaction_bundles(
            self.seed, self.patients, self.batch, first=self.first, share=share
        )
        if self.scope is None:
            yield from bundles
            return
        for bundle in bundles:
            scoped = self.scope.scoped(bundle)
            if scoped["entry"]:
                yield scoped

    def pick(self, rng: random.Random) -> PatientFacts:
        """A loaded patient chosen at random."""
        while True:
            facts = patient_facts(self.seed, self.first + rng.randrange(self.patients))
            if self.scope is None or facts.nhs_number not in self.scope.taken:
                return facts

    def owns(self, resource: dict[str, Any]) -> bool:
        """Whether the resource is one this run wrote (without a scope, the store is all ours)."""
        return self.scope is None or self.scope.owns(resource)


def _existing_patients(store: FhirStore) -> int:
    """The Patients of an embedded store that --reuse adds to: only benchmarks write there."""
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


_READY, _DONE = "ready", "done"


def _write_share(store: FhirStore, plan: LoadPlan, share: tuple[int, int]) -> Iterator[_Written]:
    for number, bundle in enumerate(plan.bundles(share), 1):
        sent = len(bundle["entry"])
        before = time.perf_counter()
        try:
            response = store.transaction(bundle)
        except FhirError as exc:
            raise BenchFailed(f"writer {share[0]}, transaction {number} failed: {exc}") from exc
        took = time.perf_counter() - before
        _check_response(response, sent)
        yield _Written(sent, took, rss_mb(), mapped_mb())


def _writer_process(
    settings: HubSettings, plan: LoadPlan, share: tuple[int, int], messages: Any, go: Any
) -> None:
    """One of several writers: its own process and store connection (to the one store file, or
    to the FHIR server). It says when its store is open, then waits for `go`."""
    store = None
    try:
        store = open_store(settings)
        messages.put(_READY)
        go.wait()
        for written in _write_share(store, plan, share):
            messages.put(written)
        messages.put((_DONE, peak_rss_mb(), None))
    except BaseException as exc:
        messages.put((_DONE, peak_rss_mb(), f"{type(exc).__name__}: {exc}"))
    finally:
        if store is not None:
            store.close()


class _WriterPool:
    """`writers` processes writing their shares of the patients into one store.

    `start` returns once every writer has its store open; iterating then yields each
    transaction as a writer reports it; afterwards `peak_rss_mb` holds each writer's peak RSS
    (the parent's own says nothing of theirs).
    """

    def __init__(self, settings: HubSettings, plan: LoadPlan, writers: int) -> None:
        self.settings, self.plan, self.writers = settings, plan, writers
        self.peak_rss_mb: list[float] = []
        self._context = multiprocessing.get_context("spawn")  # no SQLite handle crosses a fork
        self._queue = self._context.Queue()
        self._processes: list[Any] = []

    def start(self) -> None:
        """Start the writers and let them write once all are ready, so that starting Python
        processes (about a second) is not counted as writing time."""
        go = self._context.Event()
        self._processes = [
            self._context.Process(
                target=_writer_process,
                args=(self.settings, self.plan, (k, self.writers), self._queue, go),
            )
            for k in range(self.writers)
        ]
        for process in self._processes:
            process.start()
        for _ in range(self.writers):
            message = self._receive()
            if message != _READY:  # a writer could not open its store
                self._stop()
                raise BenchFailed(message[2])
        go.set()

    def _receive(self) -> Any:
        """The next message of any writer; BenchFailed when one died without a word (a
        crash, or killed), which would otherwise leave this process waiting for ever."""
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                dead = [p.exitcode for p in self._processes if p.exitcode not in (None, 0)]
                if dead:
                    self._stop()
                    raise BenchFailed(f"a writer process ended with exit code {dead[0]}") from None

    def _stop(self) -> None:
        for process in self._processes:
            process.terminate()
            process.join()

    def __iter__(self) -> Iterator[_Written]:
        running, failures = self.writers, []
        try:
            while running:
                message = self._receive()
                if isinstance(message, _Written):
                    yield message
                    continue
                running -= 1
                self.peak_rss_mb.append(message[1])
                if message[2]:
                    failures.append(message[2])
        finally:
            for process in self._processes:
                process.join(timeout=60)
        if failures:
            raise BenchFailed("; ".join(failures))


def load(
    store: FhirStore,
    settings: HubSettings,
    plan: LoadPlan,
    *,
    writers: int,
    progress: _Progress | None,
) -> dict[str, Any]:
    """Write the patients; return the figures of the load and of each tenth of it.

    Throughput is resources over the wall-clock time of the whole load, generating the data
    included, whatever the number of writers, from the moment every writer has its store open.
    """
    resources = plan.patients_kept * RESOURCES_PER_PATIENT
    boundaries = [math.ceil(resources * k / SLICES) for k in range(1, SLICES + 1)]
    slices: list[LoadSlice] = []
    written = bundles = slice_resources = 0
    store_seconds = slice_store = 0.0
    writer_rss: dict[int, float] = {}
    writer_mapped: dict[int, float] = {}
    pool = _WriterPool(settings, plan, writers) if writers > 1 else None
    if pool is not None:
        pool.start()
    stream = pool if pool is not None else _write_share(store, plan, (0, 1))
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
        "patients_per_bundle": bundle_patients(plan.batch),
        "wall_seconds": wall,
        "store_seconds": store_seconds,
        "per_second": written / wall if wall else None,
        "writer_peak_rss_mb": pool.peak_rss_mb if pool is not None else [],
        "slices": [{**asdict(s), "per_second": s.per_second} for s in slices],
    }


def time_searches(store: FhirStore, kind: SearchKind, plan: LoadPlan, count: int) -> dict[str, Any]:
    """Run `count` searches for randomly chosen loaded patients; latencies in ms. A search
    counts as empty when it finds none of this run's resources."""
    rng = random.Random(f"{plan.seed}:{kind.name}")
    latencies: list[float] = []
    empty: list[str] = []
    matched = 0
    for _ in range(count):
        params = kind.params(plan.pick(rng))
        before = time.perf_counter()
        page = store.search(kind.resource_type, params)
        latencies.append((time.perf_counter() - before) * 1000)
        matched += len(page.matches)
        if not any(plan.owns(match) for match in page.matches):
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
    store: FhirStore, settings: HubSettings, plan: LoadPlan, count: int
) -> dict[str, Any]:
    """`hub record` (read, summarise, draw) for `count` randomly chosen loaded patients."""
    rng = random.Random(f"{plan.seed}:record")
    numbers = [plan.pick(rng).nhs_number for _ in range(count)]
    timings = time_record(store, numbers, settings.profiles_dir)
    return {
        "records": timings.count,
        "p50_ms": timings.median_ms,
        "p95_ms": timings.p95_ms,
        "max_ms": timings.max_ms,
    }


@dataclass(frozen=True)
class RunOptions:
    """How a `hub bench store` run loads and measures, whichever store it runs on."""

    batch: int
    searches: int
    seed: int
    data_dir: Path
    """The embedded store's folder."""
    synchronous: str | None
    """The embedded store's SQLite synchronous mode; None: the settings' default."""
    writers: int
    progress: TextIO | None
    """Where to show the load's progress."""

    def embedded_settings(self) -> HubSettings:
        settings = HubSettings(data_dir=self.data_dir, fhir_url="")
        if self.synchronous:
            settings = settings.model_copy(update={"sqlite_synchronous": self.synchronous})
        return settings


def measure(
    store: FhirStore, settings: HubSettings, plan: LoadPlan, options: RunOptions, *, label: str
) -> dict[str, Any]:
    """The benchmark on one store: the load (its progress shown under `label`), then the
    searches and `hub record`."""
    total = plan.patients_kept * RESOURCES_PER_PATIENT
    shown = _Progress(options.progress, total, label) if options.progress else None
    loaded = load(store, settings, plan, writers=options.writers, progress=shown)
    searches = options.searches
    return {
        "load": loaded,
        "searches": {kind.name: time_searches(store, kind, plan, searches) for kind in SEARCHES},
        "record": time_records(store, settings, plan, searches),
    }


def run_store_bench(patients: int, options: RunOptions) -> dict[str, Any]:
    settings = options.embedded_settings()
    load_before = os.getloadavg()
    store = open_store(settings)
    try:
        plan = LoadPlan(options.seed, patients, options.batch, first=_existing_patients(store))
        if plan.first + patients > NHS_NUMBER_CAPACITY:
            raise BenchFailed(
                f"{plan.first:,} patients already there: at most {NHS_NUMBER_CAPACITY:,} in all"
            )
        measured = measure(store, settings, plan, options, label="embedded")
    finally:
        store.close()
    load_after = os.getloadavg()
    loaded = measured["load"]
    slice_rss = [s["rss_mb"] for s in loaded["slices"]]
    slice_mapped = [s["mapped_mb"] for s in loaded["slices"]]
    results: dict[str, Any] = {
        "config": {
            "patients": patients,
            "related_per_patient": RESOURCES_PER_PATIENT - 1,
            "batch": options.batch,
            "searches": options.searches,
            "seed": options.seed,
            "data_dir": str(options.data_dir),
            "synchronous": settings.sqlite_synchronous,
            "writers": options.writers,
            "patients_already_in_store": plan.first,
        },
        "machine": {
            **_machine(),
            "load_average_start": list(load_before),
            "load_average_end": list(load_after),
        },
        **measured,
        "memory": {
            "peak_rss_mb": peak_rss_mb(),
            "rss_mb_at_each_tenth": slice_rss,
            "mapped_mb_at_each_tenth": slice_mapped,
            "after_searches": {"rss_mb": rss_mb(), "mapped_mb": mapped_mb()},
        },
        "store_disk_bytes": _disk_bytes(options.data_dir),
    }
    results["targets"] = _targets(results)
    return results


# --- the same load on the embedded store and on a FHIR server -------------------------------
def _resources_per_patient(seed: int) -> dict[str, int]:
    """Resources of each type the load writes for a patient, in the order of its entries."""
    return dict(Counter(e["resource"]["resourceType"] for e in patient_entries(seed, 0)))


def _measure_side(
    store: FhirStore,
    settings: HubSettings,
    plan: LoadPlan,
    scope: RunScope,
    options: RunOptions,
    *,
    label: str,
) -> dict[str, Any]:
    """One backend of the comparison; fails unless it holds every resource written, counted
    by the run's tag."""
    load_before = os.getloadavg()
    measured = measure(store, settings, plan, options, label=label)
    per_patient = _resources_per_patient(plan.seed)
    expected = {t: n * plan.patients_kept for t, n in per_patient.items()}
    stored = stored_counts(store, scope, per_patient)
    if stored != expected:
        raise BenchFailed(f"{label}: the store holds {stored}, not {expected}")
    return {"load_average_start": list(load_before), **measured, "stored": stored}


def run_comparison(fhir_url: str, patients: int, options: RunOptions) -> dict[str, Any]:
    """The same load, searches and `hub record` on a fresh embedded store and on the FHIR
    server at `fhir_url`, one after the other (so they never compete for the CPUs)."""
    seed = options.seed
    embedded_settings = options.embedded_settings()
    remote_settings = HubSettings(data_dir=options.data_dir, fhir_url=fhir_url)
    remote = open_store(remote_settings)
    try:
        ours = {nhs_number(seed, i) for i in range(patients)}
        scope = RunScope.new(ours & nhs_numbers_on(remote))
        plan = LoadPlan(seed, patients, options.batch, 0, scope)
        if not plan.patients_kept:
            raise BenchFailed(
                f"the NHS numbers of all {patients:,} patients are on the server already: "
                "try another --seed"
            )
        embedded = open_store(embedded_settings)
        try:
            sides = {
                "embedded": _measure_side(
                    embedded, embedded_settings, plan, scope, options, label="embedded"
                )
            }
        finally:
            embedded.close()
        try:
            sides["remote"] = _measure_side(
                remote, remote_settings, plan, scope, options, label="FHIR server"
            )
        finally:
            cleanup = remove_run(remote, scope, _resources_per_patient(seed))
    finally:
        remote.close()
    return {
        "config": {
            "fhir_url": fhir_url,
            "patients": patients,
            "patients_loaded": plan.patients_kept,
            "patients_skipped": patients - plan.patients_kept,
            "related_per_patient": RESOURCES_PER_PATIENT - 1,
            "batch": options.batch,
            "searches": options.searches,
            "seed": seed,
            "synchronous": embedded_settings.sqlite_synchronous,
            "writers": options.writers,
            "run_tag": scope.token,
        },
        "machine": {**_machine(), "load_average_end": list(os.getloadavg())},
        "backends": sides,
        "comparison": comparison_rows(sides["embedded"], sides["remote"]),
        "remote_cleanup": cleanup,
    }


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


COMPARISON_PATIENTS = 2_000
"""The default load of a comparison: HAPI FHIR writes some 20 times slower than the embedded
store, so 2,000 patients (12,000 resources) take it about a minute."""


@click.command("store")
@click.option(
    "--patients",
    type=click.IntRange(1, NHS_NUMBER_CAPACITY),
    default=None,
    help=f"Synthetic patients to load, each with {RESOURCES_PER_PATIENT - 1} related resources "
    "(2 Encounters, a CarePlan, a QuestionnaireResponse, a Provenance). Default: 100,000; "
    f"{COMPARISON_PATIENTS:,} with --fhir-url (the same number on both sides).",
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
    help="Searches of each kind, and `hub record`s, to time after the load.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--fhir-url",
    default=None,
    metavar="URL",
    help="Also run the same load, searches and `hub record`s against the FHIR R4 server at URL "
    "(HAPI FHIR: `bash scripts/hapi url`), after the embedded store, and print the two side by "
    "side with the ratio embedded/server. The server may hold others' data: every resource of "
    "the run carries a tag of its own, patients whose NHS numbers the server already has are "
    "left out on both sides, and the run's resources are deleted from the server afterwards.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the embedded store. Default: a new temporary directory, removed "
    "afterwards.",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="Allow a non-empty --data-dir: add to the store in it (numbering goes on after the "
    "patients already there). Not with --fhir-url: both sides start without the run's data.",
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
    "indexes its Bundles outside SQLite's write lock; on a FHIR server, each sends its own "
    "transactions). The same number on both sides with --fhir-url. Default: the usable CPUs.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures to this JSON file.",
)
def store_bench_command(
    patients: int | None,
    batch: int,
    searches: int,
    seed: int,
    fhir_url: str | None,
    data_dir: Path | None,
    reuse: bool,
    synchronous: str | None,
    writers: int | None,
    json_path: Path | None,
) -> None:
    """Benchmark the embedded store (write throughput, search latency, memory), alone or side
    by side with a FHIR server (--fhir-url).

    Loads synthetic patients through FhirStore.transaction, then times two searches through
    FhirStore.search and `hub record`, and compares the figures with the targets (>= 5,000
    resources/s written, p95 < 20 ms for each search, p95 < 100 ms for `hub record`). Exits
    non-zero only when the benchmark itself fails (a transaction error, a resource missing
    from a store, or a search that finds nothing), not when a target is missed.
    """
    if fhir_url and reuse:
        raise click.UsageError("--reuse cannot be combined with --fhir-url")
    directory, temporary = _prepare_data_dir(data_dir, reuse)
    options = RunOptions(
        batch=batch,
        searches=searches,
        seed=seed,
        data_dir=directory,
        synchronous=synchronous,
        writers=writers or _machine()["cpus_usable"] or 1,
        progress=sys.stderr,
    )
    try:
        if fhir_url:
            results = run_comparison(fhir_url, patients or COMPARISON_PATIENTS, options)
            report = format_comparison(results)
            sides = list(results["backends"].values())
        else:
            results = run_store_bench(patients or 100_000, options)
            note = " (temporary, removed)" if temporary else ""
            report = format_report(results, data_dir_note=note)
            sides = [results]
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    click.echo(report)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        click.echo(f"\nfigures written to {json_path}")
    empty = sum(s["empty"] for side in sides for s in side["searches"].values())
    if empty:
        raise BenchFailed(f"{empty} searches found nothing: the search figures are not valid")
