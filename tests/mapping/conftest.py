"""A throwaway mappings folder per test, written from the test's own YAML."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.mapping import MappingSet

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write('vcse/clients.yaml', yaml_text) under a fresh mappings folder."""

    def write_file(relative: str, text: str) -> Path:
        path = tmp_path / "mappings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write_file


@pytest.fixture
def mappings(tmp_path: Path, write: Callable[[str, str], Path]) -> MappingSet:
    write("globals.yaml", "hub_id: https://fhir.hub.example/Id\n")
    return MappingSet(tmp_path / "mappings")
