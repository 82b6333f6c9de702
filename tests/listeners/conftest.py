"""Listener fixtures: the repository's mappings and a real SQLite inbox in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.mapping import Mapping, MappingSet
from hub.pipeline import Inbox
from hub.state import Database
from tests.listeners._helpers import MAPPINGS


@pytest.fixture(scope="session")
def mappings() -> MappingSet:
    return MappingSet(MAPPINGS)


@pytest.fixture(scope="session")
def adt(mappings: MappingSet) -> Mapping:
    return mappings.get("slam-epr/adt")


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """SQLite only, as the listeners are tested (the inbox's own tests cover PostgreSQL):
    the file is where a separate connection can look while the listener writes."""
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def inbox(state_db: Database) -> Inbox:
    return Inbox(state_db)
