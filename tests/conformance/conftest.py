"""The backends every conformance test runs on, through the store API and through HTTP.

`embedded`: the SQLite store, always. `remote`: the FHIR server at `HUB_TEST_FHIR_URL`, only
when that variable is set (the parameter is not generated otherwise, so nothing is skipped).

- `store`: a `FhirStore` on the backend (a fresh SQLite file per test for `embedded`).
- `fhir`: an `httpx.Client` on a running hub over the backend, its base URL ending in `/fhir`.
- `api`: both of them behind one face (`tests/conformance/_api.py`), so a test written once
  proves a promise of the protocol and of the REST API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from hub.settings import HubSettings
from hub.store import FhirStore, RemoteStore, SQLiteStore
from tests._server import running_hub
from tests.conformance._api import FHIR_JSON, REGISTRY, Api, HttpApi, StoreApi
from tests.conformance._examples import unique_system

REMOTE_FHIR_URL = os.environ.get("HUB_TEST_FHIR_URL", "")
BACKENDS = ["embedded", *(["remote"] if REMOTE_FHIR_URL else [])]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path) -> Iterator[FhirStore]:
    opened: FhirStore
    if backend == "embedded":
        opened = SQLiteStore(tmp_path / "fhir.sqlite", registry=REGISTRY)
    else:
        opened = RemoteStore(REMOTE_FHIR_URL, registry=REGISTRY)
    try:
        yield opened
    finally:
        opened.close()


def _settings(data_dir, fhir_url: str) -> HubSettings:
    return HubSettings(
        _env_file=None,
        data_dir=data_dir,
        fhir_url=fhir_url,
        public_base_url="",
        sqlite_synchronous="FULL",
    )


@pytest.fixture(scope="session")
def embedded_hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(_settings(tmp_path_factory.mktemp("conformance-hub"), "")) as url:
        yield url


@pytest.fixture(scope="session")
def remote_hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("conformance-remote-hub")
    with running_hub(_settings(data_dir, REMOTE_FHIR_URL)) as url:
        yield url


def _client(hub_url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{hub_url}/fhir", headers={"Accept": FHIR_JSON}, timeout=60)


@pytest.fixture(scope="session")
def embedded_hub_client(embedded_hub_url: str) -> Iterator[httpx.Client]:
    with _client(embedded_hub_url) as client:
        yield client


@pytest.fixture(scope="session")
def remote_hub_client(remote_hub_url: str) -> Iterator[httpx.Client]:
    with _client(remote_hub_url) as client:
        yield client


@pytest.fixture
def fhir(backend: str, request: pytest.FixtureRequest) -> httpx.Client:
    """A client of a running hub on the backend (one per backend, shared by the tests)."""
    return request.getfixturevalue(f"{backend}_hub_client")


@pytest.fixture(params=["store", "http"])
def api(request: pytest.FixtureRequest, backend: str) -> Api:
    if request.param == "store":
        return StoreApi(request.getfixturevalue("store"))
    return HttpApi(request.getfixturevalue("fhir"))


@pytest.fixture
def system() -> str:
    """An identifier system of this test's own."""
    return unique_system()
