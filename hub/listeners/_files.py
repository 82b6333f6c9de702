"""Files into the inbox: `ingest_files` (streaming, in batches) and the `hub ingest` command."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import click

from hub.mapping import Mapping, MappingConfigError, MappingSet
from hub.pipeline import Inbox, run_pipeline_until_idle
from hub.settings import HubSettings
from hub.state import open_database

from ._split import IngestCounts, add_in_batches, read_items

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Told how many more bytes (or items) are done since it was last called."""

_READ_SIZE = 1 << 16


@dataclass(slots=True)
class IngestSummary(IngestCounts):
    """Totals over every file, and each file's own counts (by the path it was given as)."""

    files: dict[str, IngestCounts] = field(default_factory=dict)


def ingest_files(
    inbox: Inbox,
    mapping: Mapping,
    paths: Iterable[Path],
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> IngestSummary:
    """Store every record of every file in the inbox, one transaction per `batch_size` records;
    a file is read as it is stored, so its size does not matter. `progress` is told the bytes
    read as reading goes."""
    summary = IngestSummary()
    for path in paths:
        counts = IngestCounts()
        with _open(path, progress) as stream:
            items = read_items(mapping, stream, path.name, "file")
            for _item, receipt in add_in_batches(inbox, items, batch_size):
                counts.count(receipt)
        log.info(
            "%s: %d accepted, %d duplicate, %d failed",
            path.name,
            counts.accepted,
            counts.duplicates,
            counts.failed,
        )
        summary.files[str(path)] = counts
        summary += counts
    return summary


class _CountingReader(io.RawIOBase):
    """A file that tells `progress` how many bytes each read took."""

    def __init__(self, raw: BinaryIO, progress: Progress) -> None:
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._progress(count)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def _open(path: Path, progress: Progress | None) -> Iterator[BinaryIO]:
    if progress is None:
        with path.open("rb") as stream:
            yield stream
        return
    with io.BufferedReader(_CountingReader(path.open("rb", buffering=0), progress)) as stream:
        yield stream  # type: ignore[misc]


# -- hub ingest ------------------------------------------------------------------------------


@click.command("ingest")
@click.argument("mapping")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--queue-only",
    is_flag=True,
    help="Only store the records in the inbox; the workers of a running hub process them.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr. Default: only when stderr is a terminal.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Processes applying the records, each on different people. Default: usable CPUs.",
)
@click.option(
    "--retry-for",
    type=click.FloatRange(0),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to go on retrying records the FHIR server could not take (it is being "
    "restarted, say) after the last record written; the rest stay in the inbox.",
)
def ingest_command(
    mapping: str,
    files: tuple[Path, ...],
    queue_only: bool,
    progress: bool | None,
    workers: int | None,
    retry_for: float,
) -> None:
    """Store the records of FILE... (in MAPPING's source format) in the inbox, then process
    them: map, match the person, write to the store.

    MAPPING is a mapping's name, e.g. slam-epr/adt or vcse/clients (`hub mappings list`).
    Records sent before are recognised and not stored twice. Exits with status 1 when any
    record failed (`hub deadletters` lists them) or is still to be written because the FHIR
    server did not take it in time (`hub work`, or a running `hub serve`, writes it later).
    """
    settings = HubSettings()
    try:
        found = MappingSet(settings.mappings_dir).get(mapping)
    except MappingConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="MAPPING") from None
    show = progress if progress is not None else sys.stderr.isatty()
    summary = _store_files(settings, found, files, show)
    for path, counts in summary.files.items():
        click.echo(f"{path}: {_stored(counts)}")
    processes = workers or len(os.sched_getaffinity(0))
    outcome = None
    if not queue_only:
        outcome = _process(settings, summary.accepted, show, processes, retry_for)
        outcome["unwritten"] = _still_to_write(settings)
    failed = summary.failed + (outcome or {}).get("failed", 0)
    click.echo(_final_line(summary, outcome, failed))
    if failed or (outcome or {}).get("unwritten"):
        sys.exit(1)


def _store_files(
    settings: HubSettings, mapping: Mapping, files: tuple[Path, ...], show: bool
) -> IngestSummary:
    database = open_database(settings.state_url)
    try:
        total = sum(path.stat().st_size for path in files)
        with _progress(show, total, "reading") as progress:
            return ingest_files(Inbox(database), mapping, files, progress=progress)
    finally:
        database.close()


def _process(
    settings: HubSettings, expected: int, show: bool, processes: int, retry_for: float
) -> dict[str, int]:
    """Run the pipeline until nothing is left to do: what became of the items, by status."""
    with _progress(show, expected, "processing") as progress:
        return run_pipeline_until_idle(
            settings, progress=progress, processes=processes, retry_for=retry_for
        )


def _still_to_write(settings: HubSettings) -> int:
    database = open_database(settings.state_url)
    try:
        return Inbox(database).pending_count()
    finally:
        database.close()


def _stored(counts: IngestCounts) -> str:
    return f"{counts.accepted} accepted, {counts.duplicates} duplicate, {counts.failed} failed"


def _final_line(summary: IngestSummary, outcome: dict[str, int] | None, failed: int) -> str:
    line = f"{summary.accepted} accepted, {summary.duplicates} duplicate"
    if outcome is None:
        line += ", left in the inbox for the workers"
    else:
        line += (
            f"; {outcome.get('applied', 0)} applied, {outcome.get('withheld', 0)} withheld, "
            f"{outcome.get('waiting', 0)} waiting"
        )
    line += f"; {failed} failed"
    if failed:
        line += " (see `hub deadletters`)"
    unwritten = (outcome or {}).get("unwritten", 0)
    if unwritten:
        line += (
            f"; {unwritten} still to be written: the FHIR server did not take them "
            "(`hub work` or a running `hub serve` goes on retrying; `hub inbox` counts them)"
        )
    return line


@contextmanager
def _progress(show: bool, length: int, label: str) -> Iterator[Progress | None]:
    """A bar redrawn in place on a terminal; with --progress elsewhere (a CI log), a plain
    line at every tenth, as a redrawn bar would fill a log with carriage returns."""
    if not show:
        yield None
    elif sys.stderr.isatty():
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield _PlainProgress(length, label).update


class _PlainProgress:
    def __init__(self, length: int, label: str) -> None:
        self.length = max(length, 1)
        self.label = label
        self.done = 0
        self.shown = 0

    def update(self, count: int) -> None:
        self.done += count
        tenth = min(10, self.done * 10 // self.length)
        if tenth > self.shown:
            self.shown = tenth
            click.echo(f"{self.label}: {tenth * 10}%", err=True)
