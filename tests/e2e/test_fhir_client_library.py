"""A FHIR client library nobody here wrote (fhirpy) creates, reads, searches and pages through a
running hub: the hub speaks FHIR R4 REST as clients expect it, not just as our own tests do."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from hub.settings import HubSettings
from tests._server import running_hub

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncFHIRClient]:
    settings = HubSettings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("fhirpy-hub"),
        fhir_url="",
        public_base_url="",
    )
    with running_hub(settings) as url:
        yield SyncFHIRClient(
            f"{url}/fhir",
            extra_headers={"Accept": "application/fhir+json"},
            requests_config={"timeout": 30},
        )


@pytest.fixture
def system() -> str:
    return f"https://hub.test/fhirpy/{uuid.uuid4().hex}"


def nhs_number() -> str:
    """An NHS number from the test range (999...) with a valid modulus 11 check digit."""
    while True:
        digits = [9, 9, 9, *(random.randrange(10) for _ in range(6))]
        check = (11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def test_a_created_patient_reads_back_and_updates_as_a_new_version(
    client: SyncFHIRClient, system: str
) -> None:
    patient = client.resource(
        "Patient",
        identifier=[{"system": system, "value": "1"}],
        name=[{"family": "Ortega-Díaz", "given": ["Marisol"]}],
        birthDate="1987-06-15",
    )
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"] == [{"family": "Ortega-Díaz", "given": ["Marisol"]}]
    assert read["birthDate"] == "1987-06-15"

    read["gender"] = "female"
    read.save()
    assert read["meta"]["versionId"] == "2"
    assert client.get("Patient", patient.id)["gender"] == "female"


def test_search_with_parameters_finds_only_the_matches(client: SyncFHIRClient, system: str) -> None:
    marisol = client.resource(
        "Patient",
        identifier=[{"system": system, "value": "1"}],
        name=[{"family": "Ortega-Díaz", "given": ["Marisol"]}],
        gender="female",
        birthDate="1987-06-15",
    ).save()
    client.resource(
        "Patient",
        identifier=[{"system": system, "value": "2"}],
        name=[{"family": "Okafor", "given": ["Bola"]}],
        gender="male",
        birthDate="1990-01-01",
    ).save()
    mine = client.resources("Patient").search(identifier=f"{system}|")

    assert mine.count() == 2
    assert [p.id for p in mine.search(family="ortega").fetch()] == [marisol.id]
    assert [p.id for p in mine.search(birthdate__lt="1988").fetch()] == [marisol.id]
    assert [p.id for p in mine.search(gender="female", given="mari").fetch()] == [marisol.id]
    assert mine.search(family="dia").fetch() == []
    assert mine.search(identifier=f"{system}|1").get().id == marisol.id


def test_chained_search_finds_care_plans_by_the_patients_nhs_number(
    client: SyncFHIRClient, system: str
) -> None:
    number = nhs_number()
    patient = client.resource(
        "Patient",
        identifier=[{"system": NHS_NUMBER, "value": number}, {"system": system, "value": "1"}],
    ).save()
    plan = client.resource(
        "CarePlan",
        status="active",
        intent="plan",
        subject=patient.to_reference(),
        identifier=[{"system": system, "value": "plan"}],
    ).save()
    client.resource(
        "CarePlan", status="active", intent="plan", subject={"display": "someone else"}
    ).save()

    found = client.resources("CarePlan").search(patient__identifier=f"{NHS_NUMBER}|{number}")

    assert [p.id for p in found.fetch_all()] == [plan.id]
    bundle = found.include("CarePlan", "patient").fetch_raw()
    modes = {(e.resource.resourceType, e.search.mode) for e in bundle.entry}
    assert modes == {("CarePlan", "match"), ("Patient", "include")}


def test_paging_with_the_librarys_iteration_sees_every_resource_exactly_once(
    client: SyncFHIRClient, system: str
) -> None:
    made = {
        client.resource("Patient", identifier=[{"system": system, "value": str(n)}]).save().id
        for n in range(23)
    }
    search = client.resources("Patient").search(identifier=f"{system}|").limit(5)

    first_page = search.fetch()
    seen = [p.id for p in search]  # follows the next links
    everything = [p.id for p in search.fetch_all()]

    assert len(first_page) == 5
    assert len(seen) == 23
    assert set(seen) == made
    assert sorted(everything) == sorted(seen)


def test_paging_a_sorted_search_keeps_the_order_across_pages(
    client: SyncFHIRClient, system: str
) -> None:
    for n, born in enumerate(["1991-03-01", "1975-12-24", "2001-07-09", "1983-05-30"] * 3):
        client.resource(
            "Patient", identifier=[{"system": system, "value": str(n)}], birthDate=born
        ).save()

    search = client.resources("Patient").search(identifier=f"{system}|").sort("-birthdate")
    dates = [p["birthDate"] for p in search.limit(5)]

    assert dates == sorted(dates, reverse=True)
    assert len(dates) == 12


def test_conditional_update_creates_then_updates_the_one_match(
    client: SyncFHIRClient, system: str
) -> None:
    mine = client.resources("Patient").search(identifier=f"{system}|1")
    identifier = [{"system": system, "value": "1"}]

    first, created = mine.update(client.resource("Patient", identifier=identifier))
    again, created_again = mine.update(
        client.resource("Patient", identifier=identifier, gender="female")
    )

    assert created
    assert not created_again
    assert again.id == first.id
    assert again["meta"]["versionId"] == "2"
    assert [p["gender"] for p in mine.fetch_all()] == ["female"]


def test_a_deleted_resource_is_gone_and_an_invalid_one_refused(
    client: SyncFHIRClient, system: str
) -> None:
    patient = client.resource("Patient", identifier=[{"system": system, "value": "1"}]).save()

    patient.delete()

    with pytest.raises(ResourceNotFound):  # fhirpy's name for 404 and 410
        client.get("Patient", patient.id)
    with pytest.raises(OperationOutcome) as raised:
        client.resource("Patient", birthDate="1987-13-45").save()
    assert "Patient.birthDate" in str(raised.value)
