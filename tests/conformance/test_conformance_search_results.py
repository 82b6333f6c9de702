"""What a search answers with: included resources, pages, order, counts, subsets, and what it
does with parameters it does not know (lenient: a warning; strict: 400)."""

from __future__ import annotations

import time

import pytest

from hub.fhir import InvalidRequest
from tests.conformance._api import Api, Written
from tests.conformance._examples import (
    care_plan,
    encounter,
    patient,
    provenance,
    questionnaire,
    questionnaire_response,
    reference,
)

SUBSETTED = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"


def ids(*written: Written) -> list[str]:
    return [w.id for w in written]


# --- _include and _revinclude -------------------------------------------------------------------


def test_include_brings_the_patient_of_each_care_plan(api: Api, system: str) -> None:
    person = api.create(patient(system))
    plan = api.create(care_plan(system, subject=reference(person.resource)))

    result = api.search(
        "CarePlan", [("identifier", f"{system}|"), ("_include", "CarePlan:patient")]
    )

    assert result.ids == ids(plan)
    assert [(r["resourceType"], r["id"]) for r in result.includes] == [("Patient", person.id)]
    assert result.total in (None, 1)  # included resources are not counted


def test_include_of_a_canonical_brings_the_questionnaire(api: Api, system: str) -> None:
    form = api.create(questionnaire(system))
    answers = api.create(questionnaire_response(system, questionnaire=form.resource["url"]))

    result = api.search(
        "QuestionnaireResponse",
        [("_id", answers.id), ("_include", "QuestionnaireResponse:questionnaire")],
    )

    assert result.ids == ids(answers)
    assert [(r["resourceType"], r["id"]) for r in result.includes] == [("Questionnaire", form.id)]


def test_revinclude_brings_the_provenance_that_targets_each_match(api: Api, system: str) -> None:
    person = api.create(patient(system))
    other = api.create(patient(system, value="2"))
    about_person = api.create(provenance(target=[reference(person.resource)]))
    api.create(provenance(target=[reference(other.resource)]))

    result = api.search("Patient", [("_id", person.id), ("_revinclude", "Provenance:target")])

    assert result.ids == ids(person)
    assert [(r["resourceType"], r["id"]) for r in result.includes] == [
        ("Provenance", about_person.id)
    ]


def test_include_and_revinclude_do_not_repeat_a_resource(api: Api, system: str) -> None:
    person = api.create(patient(system))
    plans = [api.create(care_plan(system, subject=reference(person.resource))) for _ in range(3)]

    result = api.search(
        "CarePlan", [("identifier", f"{system}|"), ("_include", "CarePlan:patient")]
    )

    assert sorted(result.ids) == sorted(ids(*plans))
    assert [r["id"] for r in result.includes] == [person.id]


# --- paging -------------------------------------------------------------------------------------


@pytest.fixture
def seven_patients(api: Api, system: str) -> list[Written]:
    return [api.create(patient(system, value=str(n))) for n in range(7)]


def test_count_pages_visit_every_match_exactly_once(
    api: Api, system: str, seven_patients: list[Written]
) -> None:
    # The store pages with _offset, HTTP with the next links.
    pages = api.search_pages("Patient", [("identifier", f"{system}|"), ("_count", "3")])

    assert [len(p.matches) for p in pages] == [3, 3, 1]
    seen = [r["id"] for p in pages for r in p.matches]
    assert sorted(seen) == sorted(ids(*seven_patients))
    assert all(p.total in (None, 7) for p in pages)


def test_pages_of_a_sorted_search_keep_the_order(
    api: Api, system: str, seven_patients: list[Written]
) -> None:
    pages = api.search_pages(
        "Patient", [("identifier", f"{system}|"), ("_count", "2"), ("_sort", "-_lastUpdated")]
    )

    seen = [r["id"] for p in pages for r in p.matches]
    assert seen == ids(*reversed(seven_patients))


def test_a_page_as_large_as_the_matches_has_no_next_page(
    api: Api, system: str, seven_patients: list[Written]
) -> None:
    result = api.search("Patient", [("identifier", f"{system}|"), ("_count", "7")])

    assert len(result.matches) == 7
    assert not result.has_next


# --- _sort --------------------------------------------------------------------------------------


def test_sort_by_date_and_by_last_updated(api: Api, system: str) -> None:
    starts = ["2024-05-01T09:00:00Z", "2023-01-15T09:00:00Z", "2024-11-30T09:00:00Z"]
    made = []
    for n, start in enumerate(starts):
        made.append(api.create(encounter(system, value=str(n), period={"start": start})))
        time.sleep(0.005)
    mine = ("identifier", f"{system}|")

    by_date = api.search("Encounter", [mine, ("_sort", "date")]).ids
    by_date_desc = api.search("Encounter", [mine, ("_sort", "-date")]).ids
    by_update = api.search("Encounter", [mine, ("_sort", "_lastUpdated")]).ids
    by_update_desc = api.search("Encounter", [mine, ("_sort", "-_lastUpdated")]).ids

    assert by_date == ids(made[1], made[0], made[2])
    assert by_date_desc == ids(made[2], made[0], made[1])
    assert by_update == ids(*made)
    assert by_update_desc == ids(*reversed(made))


# --- _summary=count and _elements --------------------------------------------------------------


def test_summary_count_answers_with_the_total_and_no_resources(
    api: Api, system: str, seven_patients: list[Written]
) -> None:
    result = api.search("Patient", [("identifier", f"{system}|"), ("_summary", "count")])

    assert result.total == 7
    assert result.matches == []


def test_elements_keeps_the_listed_elements_and_marks_the_resource_subsetted(
    fhir, system: str
) -> None:
    # _elements shapes the response: an HTTP matter (the store answers with whole resources).
    created = fhir.post(
        "Patient",
        json=patient(system, gender="female", birthDate="1987-06-15"),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert created.status_code == 201

    response = fhir.get("Patient", params={"identifier": f"{system}|", "_elements": "gender"})

    assert response.status_code == 200
    (entry,) = response.json()["entry"]
    shown = entry["resource"]
    assert shown["id"] == created.json()["id"]
    assert shown["gender"] == "female"
    assert "birthDate" not in shown
    assert "name" not in shown
    assert any(t.get("code") == "SUBSETTED" for t in shown["meta"].get("tag", ()))


# --- parameters the server does not know --------------------------------------------------------


def test_an_unknown_parameter_is_ignored_with_a_warning(api: Api, system: str) -> None:
    person = api.create(patient(system))

    result = api.search("Patient", [("identifier", f"{system}|"), ("shoe-size", "42")])

    assert result.ids == ids(person)
    assert result.warnings
    assert any("shoe-size" in str(w) for w in result.warnings)


def test_an_unknown_parameter_is_rejected_under_strict_handling(api: Api, system: str) -> None:
    api.create(patient(system))

    with pytest.raises(InvalidRequest) as raised:
        api.search("Patient", [("identifier", f"{system}|"), ("shoe-size", "42")], strict=True)

    assert raised.value.status == 400


def test_known_parameters_alone_are_accepted_under_strict_handling(api: Api, system: str) -> None:
    person = api.create(patient(system, gender="female"))

    result = api.search(
        "Patient", [("identifier", f"{system}|"), ("gender", "female")], strict=True
    )

    assert result.ids == ids(person)
    assert result.warnings == []


@pytest.mark.parametrize(
    "param", ["family:sounds-like", "gender:exact", "birthdate:contains", "identifier:foo"]
)
def test_an_unknown_modifier_is_400_even_when_lenient(api: Api, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        api.search("Patient", [(param, "x")])

    assert raised.value.status == 400


def test_a_date_that_cannot_be_read_is_400(api: Api) -> None:
    with pytest.raises(InvalidRequest):
        api.search("Patient", [("birthdate", "yesterday")])


def test_a_chain_through_a_reference_to_an_unknown_parameter_is_ignored_with_a_warning(
    api: Api, system: str
) -> None:
    plan = api.create(care_plan(system))

    result = api.search("CarePlan", [("identifier", f"{system}|"), ("patient.shoe-size", "42")])

    assert result.ids == ids(plan)
    assert result.warnings


@pytest.mark.parametrize("param", ["_id:missing", "_lastUpdated:missing"])
def test_missing_on_id_or_last_updated_is_answered_never_a_server_error(
    api: Api, system: str, param: str
) -> None:
    # Every resource has an id and a lastUpdated; a server may also refuse the question.
    person = api.create(patient(system))
    mine = ("identifier", f"{system}|")

    try:
        missing = api.search("Patient", [mine, (param, "true")]).ids
        present = api.search("Patient", [mine, (param, "false")]).ids
    except InvalidRequest:
        return
    assert missing == []
    assert present == ids(person)
