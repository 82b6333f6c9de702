"""The HAPI FHIR server the hub runs on in the tests: HUB_TEST_FHIR_URL when set, else the
native one `scripts/hapi start` builds and starts (never skipped: the hub's HAPI settings must
hold wherever HAPI runs)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 1200  # a fresh machine downloads HAPI from Maven Central first
FHIR_JSON = "application/fhir+json"


def run_script(*args: str, timeout: float = START_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "hapi"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def hapi_url() -> str:
    url = os.environ.get("HUB_TEST_FHIR_URL")
    if url:
        return url
    result = run_script("start")
    if result.returncode != 0:
        pytest.fail(f"scripts/hapi start failed:\n{result.stderr}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def hapi(hapi_url: str) -> Iterator[httpx.Client]:
    """A client of HAPI itself, not of the hub."""
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    with httpx.Client(base_url=hapi_url, headers=headers, timeout=60) as client:
        yield client
