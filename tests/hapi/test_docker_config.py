"""docker/: the compose file parses and is wired as docker/README.md says, and the Docker image
and the native launcher read the same HAPI settings file, every key of which the launcher knows
and every key of which says why it is set. (There is no Docker engine here to run it.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SETTINGS = DOCKER / "hapi" / "application.yaml"
LAUNCHER_PROPERTIES = (
    DOCKER / "hapi-native" / "src" / "main" / "java" / "hub" / "hapi" / "HapiFhirProperties.java"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def hapi_fhir_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Leaf keys under hapi.fhir, dotted: `validation.requests_enabled`."""
    keys: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            keys += hapi_fhir_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def test_compose_runs_postgres_hapi_and_the_hub(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "hapi", "hub"}
    hub = services["hub"]
    assert hub["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert (DOCKER / "Dockerfile").is_file()
    assert hub["environment"]["HUB_FHIR_URL"].endswith("http://hapi:8080/fhir}")
    assert "@postgres:5432/hub" in hub["environment"]["HUB_DATABASE_URL"]
    assert services["hapi"]["environment"]["SPRING_DATASOURCE_URL"] == (
        "jdbc:postgresql://postgres:5432/hapi"
    )
    assert services["hapi"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert hub["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_images_are_pinned_to_versions(compose: dict[str, Any]) -> None:
    for name in ("postgres", "hapi"):
        image = compose["services"][name]["image"]
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+(\.\d+)?[-.\w]*", image), image
    assert compose["services"]["hapi"]["image"].startswith("hapiproject/hapi:v8.8.0")


def test_only_the_hub_publishes_ports_and_on_localhost_by_default(
    compose: dict[str, Any],
) -> None:
    published = {name: s.get("ports", []) for name, s in compose["services"].items()}
    assert published["postgres"] == published["hapi"] == []
    assert all(port.startswith("${HUB_BIND:-127.0.0.1}:") for port in published["hub"])
    assert [port.rsplit(":", 1)[1] for port in published["hub"]] == ["8080", "2575"]


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name in ("postgres", "hub"):
        mounts = [v.split(":")[0] for v in compose["services"][name]["volumes"]]
        assert named & set(mounts), name


def test_postgres_and_the_hub_have_health_checks(compose: dict[str, Any]) -> None:
    assert "pg_isready" in compose["services"]["postgres"]["healthcheck"]["test"]
    hub_check = "\n".join(compose["services"]["hub"]["healthcheck"]["test"])
    assert "/healthz" in hub_check and "/metadata" in hub_check


def test_the_image_and_the_native_launcher_read_the_same_settings_file(
    compose: dict[str, Any],
) -> None:
    mounts = compose["services"]["hapi"]["volumes"]
    assert "./hapi/application.yaml:/app/config/application.yaml:ro" in mounts
    script = (ROOT / "scripts" / "hapi").read_text()
    assert "config=$root/docker/hapi/application.yaml" in script
    assert '--spring.config.additional-location="file:$config"' in script


def test_the_native_launcher_knows_every_hapi_setting() -> None:
    # It refuses to start on an unknown one; this says so before a build and a start.
    known = set(
        re.findall(r"private [\w<>, ]+ (\w+)(?: = [^;]+)?;", LAUNCHER_PROPERTIES.read_text())
    )
    settings = yaml.safe_load(SETTINGS.read_text())["hapi"]["fhir"]

    unknown = [k for k in hapi_fhir_keys(settings) if not set(map(camel, k.split("."))) <= known]

    assert unknown == []


def test_every_hapi_setting_says_why_it_is_set() -> None:
    lines = SETTINGS.read_text().splitlines()
    start = lines.index("hapi:")
    without_reason = []
    for before, line in zip(lines[start:], lines[start + 1 :], strict=False):
        is_leaf_key = re.match(r"\s+\w+: \S", line)
        if is_leaf_key and not before.lstrip().startswith("#"):
            without_reason.append(line.strip())
    assert without_reason == []
