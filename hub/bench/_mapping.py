"""`hub bench mappings`: map N synthetic records of each source kind and report records/s.

The synthetic inputs are the worked examples of `mappings/` cloned, with their business
identifiers made unique, into files of N records each. What is timed is what the pipeline does
per record: read it from the file, map it, and check every produced resource against
`profiles/` (unless --no-profiles). Writing the file is not timed.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import click

from hub.mapping import Checker, MappingSet
from hub.settings import HubSettings

from ._cpus import usable_cpus

# The targets on the 2-core development machine; GP bundles (one per patient per
# extract, each ~6 resources) have none: their figure is reported only.
TARGETS: dict[str, int | None] = {"hl7v2": 2_000, "csv": 5_000, "jsonl": 5_000, "stu3-bundle": None}


@dataclass(frozen=True)
class Kind:
    mapping: str
    example: str  # the input under mappings/<source>/examples/ that is cloned
    unique: tuple[str, ...] = ()  # CSV columns / JSON keys made unique per copy


KINDS = (
    Kind("slam-epr/adt", "adt.hl7"),
    Kind("slam-epr/careplans", "careplans.jsonl", ("plan_id",)),
    Kind("slam-epr/dialog", "dialog.jsonl", ("assessment_id",)),
    Kind("gp/stu3-bundle", "G85901-okafor.json"),
    Kind("district-nursing/visits", "visits.csv", ("visit_id",)),
    Kind("district-nursing/careplans", "careplans.csv", ("care_plan_id",)),
    Kind("vcse/clients", "clients.csv", ("client_ref",)),
    Kind("vcse/sessions", "sessions.csv", ("session_id",)),
    Kind("vcse/support-plans", "support_plans.csv", ("plan_id",)),
    Kind("vcse/wellbeing", "wellbeing.csv", ("assessment_id",)),
)


def _csv_copies(text: str, unique: tuple[str, ...], count: int) -> Iterator[str]:
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    header = list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, header, lineterminator="\r\n")
    writer.writeheader()
    yield out.getvalue()
    for n, row in zip(range(count), cycle(rows), strict=False):
        out.seek(0)
        out.truncate()
        writer.writerow({k: f"{v}-{n}" if k in unique else v for k, v in row.items()})
        yield out.getvalue()


def _jsonl_copies(text: str, unique: tuple[str, ...], count: int) -> Iterator[str]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for n, row in zip(range(count), cycle(rows), strict=False):
        yield json.dumps({k: f"{v}-{n}" if k in unique else v for k, v in row.items()}) + "\n"


_HL7_MESSAGE = re.compile(r"(?=MSH\|)")


def _hl7_copies(text: str, unique: tuple[str, ...], count: int) -> Iterator[str]:
    messages = [m for m in _HL7_MESSAGE.split(text.replace("\r\n", "\r").replace("\n", "\r")) if m]
    for n, message in zip(range(count), cycle(messages), strict=False):
        # A new control id (MSH-10) and visit number per copy, as a real feed would send.
        yield re.sub(r"\|(RV5-\d+)\|", rf"|\1-{n}|", message, count=1).replace(
            "^^^RV5^VN", f"-{n}^^^RV5^VN"
        )


def _bundle_copies(text: str, unique: tuple[str, ...], count: int) -> Iterator[str]:
    line = json.dumps(json.loads(text)) + "\n"  # one bundle per line
    for _ in range(count):
        yield line


_CLONERS: dict[str, Callable[[str, tuple[str, ...], int], Iterator[str]]] = {
    "csv": _csv_copies,
    "jsonl": _jsonl_copies,
    "hl7v2": _hl7_copies,
    "stu3-bundle": _bundle_copies,
}


def write_input(mappings: MappingSet, kind: Kind, records: int, directory: Path) -> Path:
    """A file of `records` records cloned from the kind's worked example."""
    source = kind.mapping.split("/")[0]
    example = mappings.root / source / "examples" / kind.example
    fmt = mappings.get(kind.mapping).spec.format
    path = directory / f"{kind.mapping.replace('/', '-')}{example.suffix}"
    text = example.read_text(encoding="utf-8-sig")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.writelines(_CLONERS[fmt](text, kind.unique, records))
    return path


def _map_all(mapping: Any, path: Path, check: Checker | None) -> dict[str, Any]:
    counts: dict[str, Any] = {"records": 0, "resources": 0, "failed": 0, "withheld": 0}
    counts["first_error"] = None
    with path.open("rb") as stream:
        for record in mapping.read(stream, path.name, check=check):
            counts["records"] += 1
            counts["resources"] += len(record.resources)
            if record.errors:
                counts["failed"] += 1
                counts["first_error"] = (
                    counts["first_error"] or f"{record.name}: {record.errors[0]}"
                )
            elif record.withheld:
                counts["withheld"] += 1
    return counts


def _worker(
    root: Path, profiles_dir: Path | None, name: str, path: Path, barrier: Any, queue: Any
) -> None:
    """One mapping process, as a pipeline worker is: compile, wait for the others, map."""
    mapping = MappingSet(root).get(name)
    check = None
    if profiles_dir is not None:
        from hub.validation import Profiles

        check = Profiles.load(profiles_dir).checker()
    barrier.wait()
    started = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes
    counts = _map_all(mapping, path, check)
    queue.put({**counts, "started": started, "ended": time.monotonic()})


def time_mapping(
    root: Path, profiles_dir: Path | None, name: str, paths: list[Path]
) -> dict[str, Any]:
    """Map each file in its own process, all at once; records/s over the wall-clock time from
    the first start to the last end."""
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(len(paths)), context.Queue()
    processes = [
        context.Process(target=_worker, args=(root, profiles_dir, name, path, barrier, queue))
        for path in paths
    ]
    for process in processes:
        process.start()
    parts = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    seconds = max(p["ended"] for p in parts) - min(p["started"] for p in parts)
    total = {k: sum(p[k] for p in parts) for k in ("records", "resources", "failed", "withheld")}
    errors = [p["first_error"] for p in parts if p["first_error"]]
    return {
        **total,
        "seconds": seconds,
        "per_second": total["records"] / seconds,
        "first_error": errors[0] if errors else None,
    }


def run_mapping_bench(
    mappings: MappingSet,
    kinds: list[Kind],
    records: int,
    repeat: int,
    profiles_dir: Path | None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-mappings-") as tmp:
        for kind in kinds:
            share = [
                records // workers + (1 if i < records % workers else 0) for i in range(workers)
            ]
            paths = []
            for i, count in enumerate(share):
                folder = Path(tmp) / str(i)
                folder.mkdir(exist_ok=True)
                paths.append(write_input(mappings, kind, count, folder))
            runs = []
            for run in range(1, repeat + 1):
                runs.append(time_mapping(mappings.root, profiles_dir, kind.mapping, paths))
                click.echo(
                    f"  {kind.mapping}: run {run} of {repeat}, "
                    f"{runs[-1]['per_second']:,.0f} records/s",
                    err=True,
                )
            fmt = mappings.get(kind.mapping).spec.format
            rates = [run["per_second"] for run in runs]
            median = statistics.median(rates)
            results.append(
                {
                    "mapping": kind.mapping,
                    "format": fmt,
                    **{
                        k: runs[0][k]
                        for k in ("records", "resources", "failed", "withheld", "first_error")
                    },
                    "per_second_runs": [round(r) for r in rates],
                    "per_second_median": round(median),
                    "target": TARGETS[fmt],
                    "meets_target": TARGETS[fmt] is None or median >= TARGETS[fmt],
                }
            )
            for path in paths:
                path.unlink()
    return results


def format_report(
    results: list[dict[str, Any]], profiles: bool, load: tuple[float, ...], workers: int
) -> str:
    averages = " ".join(f"{x:.2f}" for x in load)
    lines = [
        f"hub bench mappings: {results[0]['records']:,} records per kind, {workers} worker "
        f"process(es), profile checks {'on' if profiles else 'off'}, load average at start "
        f"{averages}",
        f"{'mapping':28} {'format':12} {'records/s (median)':>18} {'runs':>24} {'target':>7}"
        "        resources  failed",
    ]
    for r in results:
        verdict = "-" if r["target"] is None else "ok" if r["meets_target"] else "BELOW"
        target = "-" if r["target"] is None else f"{r['target']:,}"
        runs = "/".join(f"{x:,}" for x in r["per_second_runs"])
        lines.append(
            f"{r['mapping']:28} {r['format']:12} {r['per_second_median']:>18,} {runs:>24} "
            f"{target:>7} {verdict:5} {r['resources']:>9,} {r['failed']:>7,}"
        )
        if r["first_error"]:
            lines.append(f"    first failure: {r['first_error']}")
    return "\n".join(lines)


@click.command("mappings")
@click.option(
    "--records",
    type=click.IntRange(1, None),
    default=100_000,
    show_default=True,
    help="Records per kind.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, None),
    default=3,
    show_default=True,
    help="Timed runs per kind (the median is reported).",
)
@click.option(
    "--only", multiple=True, help="Only these mappings (e.g. --only slam-epr/adt); repeatable."
)
@click.option(
    "--no-profiles", is_flag=True, help="Do not check produced resources against profiles/."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Mapping processes at once, each with its share of the records, as pipeline workers "
    "(as `hub bench store` has writers). Default: the usable CPUs; 1 for one process's figure.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def mapping_bench_command(
    records: int,
    repeat: int,
    only: tuple[str, ...],
    no_profiles: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Map synthetic records of every source kind and report records/s against the targets."""
    settings = HubSettings()
    mappings = MappingSet(settings.mappings_dir)
    kinds = [k for k in KINDS if not only or k.mapping in only]
    if not kinds:
        raise click.UsageError(
            f"--only matches no kind (kinds: {', '.join(k.mapping for k in KINDS)})"
        )
    profiles_dir = None if no_profiles else settings.profiles_dir
    workers = workers or usable_cpus()
    load = os.getloadavg()
    results = run_mapping_bench(mappings, kinds, records, repeat, profiles_dir, workers)
    if as_json:
        shown = {"load_average": load, "profiles": not no_profiles, "workers": workers}
        click.echo(json.dumps({**shown, "results": results}, indent=2))
    else:
        click.echo(format_report(results, not no_profiles, load, workers))
    if not all(r["meets_target"] for r in results):
        sys.exit(1)
