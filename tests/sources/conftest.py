"""Where the source examples live: the copies in mappings/<source>/examples/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture(scope="session")
def example() -> Callable[[str], Path]:
    """example("slam-epr/adt.hl7") -> mappings/slam-epr/examples/adt.hl7"""

    def find(name: str) -> Path:
        source, file = name.split("/", 1)
        return MAPPINGS / source / "examples" / file

    return find
