"""Fixtures for every test: the hub's own state database, on SQLite and on PostgreSQL.

`postgres_url`: a PostgreSQL server for the whole session: HUB_TEST_DATABASE_URL when set,
else the local test server that `scripts/postgres start` installs and starts (never skipped:
the hub's state must work on both). `state_url`: an empty database for one test, once on
each dialect; `state_db`: the same, opened (and closed after the test).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from hub.state import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 900  # a fresh machine installs PostgreSQL first


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL whose user may create schemas in its database."""
    url = os.environ.get("HUB_TEST_DATABASE_URL")
    if url:
        return url
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres"), "start"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/postgres start failed:\n{result.stderr}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def postgres_admin(postgres_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection for setting up and dropping each test's schema."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        # A test that leaks a connection mid-transaction must not hang the run at teardown.
        conn.execute("SET lock_timeout = '30s'")
        yield conn


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty state database of its own: a SQLite file in tmp_path, or a fresh
    PostgreSQL schema (much faster than a database) dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'hub.db'}"
        return
    admin: psycopg.Connection = request.getfixturevalue("postgres_admin")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(request.getfixturevalue("postgres_url"), schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def state_db(state_url: str) -> Iterator[Database]:
    db = open_database(state_url)
    try:
        yield db
    finally:
        db.close()


def with_search_path(url: str, schema: str) -> str:
    """`url` with its sessions' search_path set to `schema` (libpq's `options` parameter)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params["options"] = f"{params.get('options', '')} -csearch_path={schema}".strip()
    return urlunsplit(parts._replace(query=urlencode(params, quote_via=quote)))


# --- HAPI FHIR: HUB_TEST_FHIR_URL when set, else the native one `scripts/hapi start` builds and
# starts (never skipped: the hub's HAPI settings must hold wherever HAPI runs) ---------------

HAPI_START_TIMEOUT_SECONDS = 1200  # a fresh machine downloads HAPI from Maven Central first


def _run_hapi_script(
    *args: str, timeout: float = HAPI_START_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(Path(__file__).resolve().parents[1] / "scripts" / "hapi"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def hapi_url() -> str:
    url = os.environ.get("HUB_TEST_FHIR_URL")
    if url:
        return url
    result = _run_hapi_script("start")
    if result.returncode != 0:
        pytest.fail(f"scripts/hapi start failed:\n{result.stderr}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def hapi(hapi_url: str) -> Iterator[httpx.Client]:
    """A client of HAPI itself, not of the hub."""
    headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    with httpx.Client(base_url=hapi_url, headers=headers, timeout=60) as client:
        yield client
