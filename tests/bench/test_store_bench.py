"""`hub bench store` on a tiny load: alone on the embedded store, and side by side with the
project's HAPI FHIR server (`--fhir-url`), where it must write only data of its own.

The comparison runs once for the module, against the real HAPI (HUB_TEST_FHIR_URL, else the
native one `scripts/hapi start` starts, as tests/hapi does). Before it, a Patient of this test's
own takes the NHS number of one of the benchmark's patients: the run must leave that patient
out on both sides.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from hub.bench import RESOURCES_PER_PATIENT, patient_facts, transaction_bundles
from hub.bench._backends import BENCH_TAG_SYSTEM, RunScope
from hub.bench._store import store_bench_command
from hub.bench._synthetic import NHS_NUMBER_SYSTEM

# tests/hapi's fixtures: HUB_TEST_FHIR_URL, else the native HAPI that `scripts/hapi start` starts.

SEED, PATIENTS, SEARCHES = 7, 30, 5
TAKEN_PATIENT = 3
"""The benchmark patient whose NHS number a Patient of this test's own has on the server."""
PER_PATIENT = {
    "Patient": 1,
    "Encounter": 2,
    "CarePlan": 1,
    "QuestionnaireResponse": 1,
    "Provenance": 1,
}


def _run(*args: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    figures = tmp_path / "figures.json"
    result = CliRunner().invoke(store_bench_command, [*args, "--json", str(figures)])
    assert result.exit_code == 0, result.output
    return json.loads(figures.read_text(encoding="utf-8")), result.stdout


# --- the embedded store alone -----------------------------------------------------------------
def test_the_embedded_store_alone_reports_its_load_searches_record_and_targets(
    tmp_path: Path,
) -> None:
    args = ["--patients", "20", "--searches", str(SEARCHES), "--batch", "30", "--writers", "1"]
    figures, output = _run(*args, tmp_path=tmp_path)

    assert figures["load"]["resources"] == 20 * RESOURCES_PER_PATIENT
    assert figures["load"]["bundles"] == 4  # 5 patients (30 resources) per Bundle
    for search in figures["searches"].values():
        assert (search["searches"], search["empty"]) == (SEARCHES, 0)
        assert search["mean_matches"] >= 1
    assert figures["record"]["records"] == SEARCHES
    assert [t["name"] for t in figures["targets"]] == [
        "write throughput (resources/s)",
        "hub record p95 (ms)",
        "careplan_by_patient_nhs_number p95 (ms)",
        "patient_by_family_birthdate p95 (ms)",
    ]
    assert "hub bench store: the embedded SQLite store" in output


# --- the run's own data on a shared server ----------------------------------------------------
def test_a_run_scope_tags_every_resource_and_leaves_out_the_patients_whose_numbers_are_taken() -> (
    None
):
    taken = patient_facts(SEED, 1).nhs_number
    scope = RunScope.new([taken])
    (bundle,) = transaction_bundles(SEED, 3, 3 * RESOURCES_PER_PATIENT)

    scoped = scope.scoped(bundle)

    resources = [e["resource"] for e in scoped["entry"]]
    assert len(resources) == 2 * RESOURCES_PER_PATIENT
    assert all(r["meta"]["tag"] == [scope.tag] and scope.owns(r) for r in resources)
    numbers = [
        i["value"] for r in resources if r["resourceType"] == "Patient" for i in r["identifier"]
    ]
    assert taken not in numbers
    # The related resources left are the kept patients' (referring to their fullUrls).
    kept_urls = {
        e["fullUrl"] for e in scoped["entry"] if e["resource"]["resourceType"] == "Patient"
    }
    subjects = {r["subject"]["reference"] for r in resources if "subject" in r}
    assert subjects == kept_urls
    assert not RunScope.new().owns(resources[0])


# --- side by side with HAPI FHIR --------------------------------------------------------------
@pytest.fixture(scope="module")
def taken_number(hapi: httpx.Client) -> Iterator[str]:
    """A Patient of this test's own with the NHS number of benchmark patient TAKEN_PATIENT."""
    number = patient_facts(SEED, TAKEN_PATIENT).nhs_number
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": NHS_NUMBER_SYSTEM, "value": number},
            {"system": f"https://hub.test/bench/{uuid.uuid4().hex}", "value": "1"},
        ],
    }
    created = hapi.post("/Patient", json=patient)
    assert created.status_code == 201, created.text
    yield number
    hapi.delete(f"/Patient/{created.json()['id']}").raise_for_status()


@pytest.fixture(scope="module")
def comparison(
    hapi_url: str,
    taken_number: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], str]:
    args = ["--fhir-url", hapi_url, "--patients", str(PATIENTS), "--seed", str(SEED)]
    args += ["--searches", str(SEARCHES), "--batch", "30", "--writers", "2"]
    return _run(*args, tmp_path=tmp_path_factory.mktemp("bench-store-comparison"))


def test_both_sides_store_every_resource_of_the_same_patients(
    comparison: tuple[dict[str, Any], str],
) -> None:
    figures, _ = comparison
    config = figures["config"]
    # At least the patient whose number this test took; others' data may take more.
    assert config["patients_skipped"] >= 1
    loaded = config["patients_loaded"]
    assert loaded == PATIENTS - config["patients_skipped"]
    expected = {t: n * loaded for t, n in PER_PATIENT.items()}
    for side in figures["backends"].values():
        assert side["load"]["resources"] == loaded * RESOURCES_PER_PATIENT
        assert side["load"]["writers"] == 2
        assert side["stored"] == expected  # counted in the store by the run's tag
        for search in side["searches"].values():
            assert (search["searches"], search["empty"]) == (SEARCHES, 0)
        assert side["record"]["records"] == SEARCHES
        assert len(side["load_average_start"]) == 3
    embedded, remote = figures["backends"]["embedded"], figures["backends"]["remote"]
    assert embedded["load"]["bundles"] == remote["load"]["bundles"]


def test_the_figures_stand_side_by_side_with_their_ratio(
    comparison: tuple[dict[str, Any], str],
) -> None:
    figures, output = comparison
    embedded, remote = figures["backends"]["embedded"], figures["backends"]["remote"]
    rows = {r["name"]: r for r in figures["comparison"]}
    assert list(rows) == [
        "writes (resources/s)",
        "CarePlan?patient.identifier=... p50 ms",
        "CarePlan?patient.identifier=... p95 ms",
        "Patient?family=...&birthdate=... p50 ms",
        "Patient?family=...&birthdate=... p95 ms",
        "hub record p95 ms",
    ]
    writes = rows["writes (resources/s)"]
    assert (writes["embedded"], writes["remote"]) == (
        embedded["load"]["per_second"],
        remote["load"]["per_second"],
    )
    careplan_p95 = rows["CarePlan?patient.identifier=... p95 ms"]
    search = "careplan_by_patient_nhs_number"
    assert careplan_p95["remote"] == remote["searches"][search]["p95_ms"]
    assert rows["hub record p95 ms"]["embedded"] == embedded["record"]["p95_ms"]
    for row in rows.values():
        assert row["ratio"] == pytest.approx(row["embedded"] / row["remote"])
        assert f"{row['ratio']:.3f}" in output
    assert figures["config"]["fhir_url"] in output
    assert "embedded/server" in output


def test_the_run_removes_its_data_from_the_server_and_leaves_others(
    comparison: tuple[dict[str, Any], str], hapi: httpx.Client, taken_number: str
) -> None:
    figures, _ = comparison
    tag = figures["config"]["run_tag"]
    assert tag.startswith(f"{BENCH_TAG_SYSTEM}|store-")
    stored = figures["backends"]["remote"]["stored"]
    assert figures["remote_cleanup"]["resources"] == sum(stored.values())
    for resource_type in PER_PATIENT:
        left = hapi.get(f"/{resource_type}", params={"_tag": tag, "_summary": "count"})
        assert left.json()["total"] == 0
    token = f"{NHS_NUMBER_SYSTEM}|{taken_number}"
    others = hapi.get("/Patient", params={"identifier": token, "_summary": "count"})
    assert others.json()["total"] >= 1  # this test's own Patient is still there
