"""Fixtures: the loaded profiles, a copy of them to break, and fresh example resources."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hub.validation import Profiles, default_profiles_dir

from ._examples import (
    CAREPLAN,
    CONSENT,
    DIALOG,
    ENCOUNTER,
    GAD7,
    PATIENT,
    PHQ9,
    SWEMWBS,
    fresh,
)


@pytest.fixture(scope="session")
def profiles_dir() -> Path:
    return default_profiles_dir()


@pytest.fixture(scope="session")
def profiles(profiles_dir: Path) -> Profiles:
    return Profiles.load(profiles_dir)


@pytest.fixture
def patient() -> dict[str, Any]:
    return fresh(PATIENT)


@pytest.fixture
def encounter() -> dict[str, Any]:
    return fresh(ENCOUNTER)


@pytest.fixture
def careplan() -> dict[str, Any]:
    return fresh(CAREPLAN)


@pytest.fixture
def consent() -> dict[str, Any]:
    return fresh(CONSENT)


@pytest.fixture
def phq9() -> dict[str, Any]:
    return fresh(PHQ9)


@pytest.fixture
def gad7() -> dict[str, Any]:
    return fresh(GAD7)


@pytest.fixture
def dialog() -> dict[str, Any]:
    return fresh(DIALOG)


@pytest.fixture
def swemwbs() -> dict[str, Any]:
    return fresh(SWEMWBS)


@pytest.fixture
def profiles_copy(tmp_path: Path, profiles_dir: Path) -> Path:
    """A copy of profiles/ to break on purpose."""
    target = tmp_path / "profiles"
    shutil.copytree(profiles_dir, target)
    return target
