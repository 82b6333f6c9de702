"""One real hub (uvicorn, embedded SQLite store) for the HTTP tests, and a client for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hub.settings import HubSettings
from tests._server import running_hub

MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def hub_settings(tmp_path_factory: pytest.TempPathFactory) -> HubSettings:
    return HubSettings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("hub-data"),
        fhir_url="",
        public_base_url="",
        max_body_bytes=MAX_BODY_BYTES,
        sqlite_synchronous="NORMAL",
    )


@pytest.fixture(scope="session")
def hub_url(hub_settings: HubSettings) -> Iterator[str]:
    with running_hub(hub_settings) as url:
        yield url


@pytest.fixture(scope="session")
def fhir_base(hub_url: str) -> str:
    return f"{hub_url}/fhir"


@pytest.fixture
def client(fhir_base: str) -> Iterator[httpx.Client]:
    headers = {"Accept": "application/fhir+json"}
    with httpx.Client(base_url=fhir_base, headers=headers, timeout=30) as http:
        yield http
