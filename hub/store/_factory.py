"""Choose the store from settings: a FHIR server when HUB_FHIR_URL is set, else embedded."""

from __future__ import annotations

from hub.settings import HubSettings

from ._protocol import FhirStore
from ._remote import RemoteStore
from ._sqlite import SQLiteStore

EMBEDDED_STORE_FILE = "fhir.sqlite"


def open_store(settings: HubSettings) -> FhirStore:
    if settings.fhir_url:
        return RemoteStore(
            settings.fhir_url,
            timeout=settings.fhir_timeout_seconds,
            retries=settings.fhir_retries,
            max_connections=settings.fhir_max_connections,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(
        settings.data_dir / EMBEDDED_STORE_FILE, synchronous=settings.sqlite_synchronous
    )
