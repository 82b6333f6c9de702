"""The pipeline of a test on real parts (tests/pipeline/_workers.py): the embedded store in
tmp_path, the hub state on SQLite and on PostgreSQL (`state_url`), the repository's mappings.
Modules that need other parts (a failing store, mappings of their own) define their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline._workers import Pipeline, hub_settings, open_parts


@pytest.fixture
def pipeline(tmp_path: Path, state_url: str) -> Iterator[Pipeline]:
    running = Pipeline(open_parts(hub_settings(tmp_path / "data", state_url)))
    try:
        yield running
    finally:
        running.close()
