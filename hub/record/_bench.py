"""How long `hub record` takes to read and summarise one record, for the store benchmark."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hub.settings import HubSettings
from hub.store import FhirStore

from ._command import record_summary
from ._text import render


@dataclass(frozen=True)
class RecordTimings:
    """Milliseconds per record, from the NHS number to the screen drawn."""

    count: int
    median_ms: float
    p95_ms: float
    max_ms: float

    def __str__(self) -> str:
        return (
            f"hub record: {self.count} records, median {self.median_ms:.1f} ms, "
            f"p95 {self.p95_ms:.1f} ms, max {self.max_ms:.1f} ms"
        )


def time_record(
    store: FhirStore, nhs_numbers: Iterable[str], profiles_dir: Path | None = None
) -> RecordTimings:
    """Read, summarise and draw the record of each NHS number (each must have one)."""
    profiles_dir = profiles_dir or HubSettings().profiles_dir
    times = []
    for number in nhs_numbers:
        started = time.perf_counter()
        render(record_summary(store, number, profiles_dir))
        times.append((time.perf_counter() - started) * 1000)
    if not times:
        raise ValueError("no NHS numbers to time")
    ordered = sorted(times)
    return RecordTimings(
        count=len(times),
        median_ms=statistics.median(ordered),
        p95_ms=ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        max_ms=ordered[-1],
    )
