"""A long-running hub sees a mapping fixed on disk (MappingSet with recheck_seconds)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from hub.mapping import MappingSet
from hub.settings import REPOSITORY

PLAN_TYPES = Path("slam-epr/maps/plan-type.yaml")


def copy_of_mappings(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(REPOSITORY / "mappings", root)
    return root


def touch_a_value_map(root: Path) -> None:
    """A new plan type in the map, as an integrator would add one."""
    path = root / PLAN_TYPES
    path.write_text(path.read_text() + "  RESPITE: {code: RESPITE, display: Respite plan}\n")
    later = time.time() + 5  # a file system with coarse times still sees a change
    os.utime(path, (later, later))


def test_without_recheck_a_mapping_is_compiled_once(tmp_path: Path) -> None:
    root = copy_of_mappings(tmp_path)
    mappings = MappingSet(root)
    first = mappings.get("slam-epr/careplans")
    touch_a_value_map(root)
    assert mappings.get("slam-epr/careplans") is first
    assert mappings.refresh() is True  # asked outright, it looks
    assert mappings.get("slam-epr/careplans") is not first


def test_with_recheck_a_changed_file_is_compiled_again(tmp_path: Path) -> None:
    root = copy_of_mappings(tmp_path)
    mappings = MappingSet(root, recheck_seconds=0)
    first = mappings.get("slam-epr/careplans")
    assert mappings.get("slam-epr/careplans") is first  # nothing changed: kept
    touch_a_value_map(root)
    again = mappings.get("slam-epr/careplans")
    assert again is not first
    assert again.version != first.version  # the value map it uses is part of its version
    assert mappings.refresh() is False
