"""An invalid resource changes nothing and is refused with 400, naming the FHIRPath of the
problem in issue.expression."""

from __future__ import annotations

import pytest

from hub.fhir import FhirError
from tests.conformance._api import Api, Resource
from tests.conformance._examples import encounter, patient

INVALID = {
    "an unknown element": ("Patient", {"favouriteColour": "teal"}, "Patient.favouriteColour"),
    "a string where a boolean goes": ("Patient", {"active": "yes"}, "Patient.active"),
    "a string where an integer goes": (
        "Patient",
        {"multipleBirthInteger": "2"},
        "Patient.multipleBirthInteger",
    ),
    "a string where a list of objects goes": ("Patient", {"name": "Ortega"}, "Patient.name"),
    "a number where a string goes": (
        "Patient",
        {"name": [{"family": 5}]},
        "Patient.name[0].family",
    ),
    "a bad date": ("Patient", {"birthDate": "1987-13-45"}, "Patient.birthDate"),
    "a bad nested date": (
        "Encounter",
        {"period": {"start": "2024-02-30T09:00:00Z"}},
        "Encounter.period.start",
    ),
    "a list where one value goes": ("Patient", {"birthDate": ["1987-06-15"]}, "Patient.birthDate"),
    "a missing required element": ("Encounter", {"status": None}, "Encounter.status"),
}


def invalid(resource_type: str, system: str, problem: dict) -> Resource:
    resource = patient(system) if resource_type == "Patient" else encounter(system)
    resource.update(problem)
    return {k: v for k, v in resource.items() if v is not None}


def assert_names(error: FhirError, expression: str) -> None:
    assert error.status == 400
    found = [e for issue in error.issues for e in issue.expression]
    assert any(e == expression or e.startswith(expression + "[") for e in found), found


@pytest.fixture(params=list(INVALID), ids=lambda name: name.replace(" ", "-"))
def problem(request: pytest.FixtureRequest) -> tuple[str, dict, str]:
    return INVALID[request.param]


def test_an_invalid_create_is_400_with_the_path_and_stores_nothing(
    api: Api, system: str, problem: tuple[str, dict, str]
) -> None:
    resource_type, change, expression = problem

    with pytest.raises(FhirError) as raised:
        api.create(invalid(resource_type, system, change))

    assert_names(raised.value, expression)
    assert api.search(resource_type, [("identifier", f"{system}|")]).ids == []


def test_an_invalid_update_is_400_and_the_current_version_stays(api: Api, system: str) -> None:
    resource_type, change, expression = INVALID["a bad date"]
    created = api.create(invalid(resource_type, system, {}))

    with pytest.raises(FhirError) as raised:
        api.update({**invalid(resource_type, system, change), "id": created.id})

    assert_names(raised.value, expression)
    assert api.read(resource_type, created.id) == created.resource
    assert [v.version_id for v in api.history(resource_type, created.id)] == ["1"]


def test_an_invalid_conditional_update_is_400_and_creates_nothing(api: Api, system: str) -> None:
    resource_type, change, expression = INVALID["an unknown element"]

    with pytest.raises(FhirError) as raised:
        api.conditional_update(
            resource_type, f"identifier={system}|1", invalid(resource_type, system, change)
        )

    assert_names(raised.value, expression)
    assert api.search(resource_type, [("identifier", f"{system}|")]).ids == []


def test_an_invalid_resource_in_a_batch_is_an_error_entry_naming_the_path(
    api: Api, system: str
) -> None:
    resource_type, change, expression = INVALID["a bad nested date"]
    bad = invalid(resource_type, system, change)

    response = api.batch(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"resource": bad, "request": {"method": "POST", "url": resource_type}}],
        }
    )

    (entry,) = response["entry"]
    assert entry["response"]["status"].startswith("400")
    issues = entry["response"]["outcome"]["issue"]
    paths = [e for issue in issues for e in issue.get("expression", ())]
    assert any(expression.split(".", 1)[1] in p for p in paths), paths
    assert api.search(resource_type, [("identifier", f"{system}|")]).ids == []


def test_a_resource_of_a_type_the_hub_does_not_store_is_refused(api: Api) -> None:
    with pytest.raises(FhirError) as raised:
        api.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})

    assert raised.value.status in (400, 404, 422)
