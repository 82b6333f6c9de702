"""HAPI FHIR for the end-to-end tests: a server of a test's own, and HAPI's `$validate` as the
independent judge of what the hub writes.

`OwnHapi` is `scripts/hapi` on a free port over a PostgreSQL cluster of its own
(`scripts/postgres` with HUB_TEST_PG_DIR in a temporary folder): it starts empty (about 20 s,
HAPI creating its tables included), can be stopped and started like any HAPI, and leaves
nothing behind. The shared test HAPI keeps serving the other tests meanwhile, with whatever
earlier runs left in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hub.settings import REPOSITORY
from tests._server import free_port

FHIR_JSON = "application/fhir+json"
START_TIMEOUT_SECONDS = 1200  # a fresh machine builds the launcher (Maven Central) first
SERIOUS = ("error", "fatal")


class OwnHapi:
    """A HAPI FHIR server and its database, both this object's alone; `with OwnHapi() as
    hapi:` starts it and removes it afterwards."""

    def __init__(self) -> None:
        # Not pytest's tmp_path: as root, PostgreSQL runs as `postgres`, which must reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="hub-own-hapi-"))
        self.folder.chmod(0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/fhir"
        database_port = free_port()
        while database_port == self.port:
            database_port = free_port()
        self._env = {
            **os.environ,
            "HUB_TEST_HAPI_PORT": str(self.port),
            "HUB_TEST_PG_PORT": str(database_port),
            "HUB_TEST_PG_DIR": str(self.folder / "postgres"),
        }

    def __enter__(self) -> OwnHapi:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> float:
        """Start it (and its database) and wait until it answers; the seconds that took."""
        started = time.monotonic()
        self._script("hapi", "start")
        return time.monotonic() - started

    def stop(self) -> None:
        self._script("hapi", "stop")

    def close(self) -> None:
        """Stop HAPI and its database and remove them, with HAPI's log and the working folders
        its Tomcat leaves in the temporary folder (one per start, named by the port)."""
        try:
            self.stop()
        finally:
            try:
                self._script("postgres", "stop")
            finally:
                self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        left = [
            *(REPOSITORY / ".hub-data" / "hapi").glob(f"hapi-{self.port}.log*"),
            *Path(tempfile.gettempdir()).glob(f"tomcat*.{self.port}.*"),
        ]
        for path in left:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()

    def _script(self, name: str, command: str) -> None:
        result = subprocess.run(
            ["bash", str(REPOSITORY / "scripts" / name), command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise RuntimeError(f"scripts/{name} {command} failed:\n{result.stderr}")


def hapi_client(url: str) -> httpx.Client:
    """A client of HAPI itself (not of the hub)."""
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def identifier_values(hapi: httpx.Client, resource_type: str, system: str) -> list[str]:
    """The `system` identifier of every `resource_type` on the server that has one, in no
    particular order, once per resource (a value found twice is two resources)."""
    values: list[str] = []
    params = {"identifier": f"{system}|", "_elements": "identifier", "_count": "1000"}
    page = hapi.get(f"/{resource_type}", params=params).raise_for_status().json()
    while True:
        for entry in page.get("entry", []):
            found = entry["resource"].get("identifier", [])
            values += [i["value"] for i in found if i.get("system") == system]
        following = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
        if not following:
            return values
        page = hapi.get(following[0]).raise_for_status().json()


UNKNOWN_CODE_SYSTEM = "CodeSystem is unknown and can't be validated"
"""HAPI's words for a code of a CodeSystem it does not hold. The hub publishes its own code
systems; UK Core's (the Mental Health Act legal status classification, which the hub's
extension binds to) come with the UK Core package, which this HAPI does not load."""


def validation_errors(hapi: httpx.Client, resource: dict[str, Any]) -> list[str]:
    """What HAPI's `$validate` finds wrong with `resource` against base FHIR R4 and what the
    server holds (the hub's published definitions, no profile asked for): its error and fatal
    issues, each `where: what`. Warnings (no narrative) are not errors, nor is a code of a
    code system HAPI does not hold (UNKNOWN_CODE_SYSTEM)."""
    response = hapi.post(f"/{resource['resourceType']}/$validate", json=resource)
    outcome = response.json()
    assert outcome.get("resourceType") == "OperationOutcome", response.text
    return [
        f"{(issue.get('expression') or issue.get('location') or ['?'])[0]}: "
        f"{issue.get('diagnostics', issue.get('code'))}"
        for issue in outcome.get("issue", [])
        if issue["severity"] in SERIOUS and UNKNOWN_CODE_SYSTEM not in issue.get("diagnostics", "")
    ]
