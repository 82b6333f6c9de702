"""Where the end-to-end hub keeps the shared record: the embedded store, or a HAPI FHIR server
of the test module's own. Tests written against `FedHub` run unchanged on either.

A module's `backend` fixture takes `params=BACKENDS` and enters `backend_named(request.param)`;
its hub is `fed_hub(backend, data_dir)`: `hub serve`'s parts (FHIR API, ingest API, MLLP
listener, a worker) with every example feed sent once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from hub.app import create_app
from hub.cli import main
from hub.settings import HubSettings
from tests._server import running_hub
from tests.e2e._example_hub import ExampleHub
from tests.e2e._on_hapi import OwnHapi

BACKENDS = ["embedded", "hapi"]


@dataclass(frozen=True)
class Backend:
    """Where the hub keeps the shared record: a FHIR server's base URL, or none for the
    embedded store in the data directory."""

    name: str
    fhir_url: str = ""

    def settings(self, data_dir: Path) -> HubSettings:
        return HubSettings(
            _env_file=None,
            data_dir=data_dir,
            fhir_url=self.fhir_url,
            database_url="",
            mllp_port=0,
            workers=1,
        )

    def cli_env(self, data_dir: Path) -> dict[str, str]:
        """The environment a `hub` command needs to read this hub's shared record."""
        return {
            "HUB_DATA_DIR": str(data_dir),
            "HUB_FHIR_URL": self.fhir_url,
            "HUB_DATABASE_URL": "",
        }


@contextmanager
def backend_named(name: str) -> Iterator[Backend]:
    """The backend `name` (one of BACKENDS), ready for a hub's first record."""
    if name == "embedded":
        yield Backend("embedded")
        return
    # A HAPI of the module's own: the examples' identifiers (and the hub's Provenance ids) are
    # fixed, so a server that holds them already would answer for two hubs at once.
    with OwnHapi() as hapi:
        backend = Backend("hapi", hapi.url)
        _publish_definitions(backend)
        yield backend


def _publish_definitions(backend: Backend) -> None:
    """`hub mappings publish`: the hub's SearchParameters (legal-status, referral-source) and
    other definitions, loaded into the FHIR server before any data, as a deployment does."""
    result = CliRunner().invoke(
        main, ["mappings", "publish"], env=backend.cli_env(Path(".")), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output


@dataclass
class FedHub:
    hub: ExampleHub
    settings: HubSettings
    backend: Backend


@contextmanager
def fed_hub(backend: Backend, data_dir: Path) -> Iterator[FedHub]:
    """A running hub on `backend` that has been sent every example feed."""
    settings = backend.settings(data_dir)
    app = create_app(settings)
    with running_hub(settings, app=app) as url:
        hub = ExampleHub(url, app)
        try:
            hub.send_every_feed()
            yield FedHub(hub, settings, backend)
        finally:
            hub.http.close()
