"""What each search parameter matches: tokens, references, dates, strings, chains, OR and AND.

Every test searches within data of its own (an identifier system with a uuid, or ids it made),
so it holds on a shared server too.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.conformance._api import Api, Written
from tests.conformance._examples import (
    ACT_CODE,
    NHS_NUMBER,
    SNOMED,
    care_plan,
    consent,
    encounter,
    identifier,
    nhs_number,
    organization,
    patient,
    provenance,
    questionnaire,
    questionnaire_response,
    reference,
    unique_system,
)


def ids(*written: Written) -> set[str]:
    return {w.id for w in written}


def found(api: Api, resource_type: str, *params: tuple[str, str]) -> set[str]:
    """The ids matching `params`, over every page."""
    return {r["id"] for page in api.search_pages(resource_type, params) for r in page.matches}


# --- _id and _lastUpdated ------------------------------------------------------------------------


def test_id_finds_that_resource_and_commas_find_either(api: Api, system: str) -> None:
    a, b, _ = (api.create(patient(system, value=v)) for v in "abc")

    assert found(api, "Patient", ("_id", a.id)) == ids(a)
    assert found(api, "Patient", ("_id", f"{a.id},{b.id}")) == ids(a, b)


def test_last_updated_compares_with_every_prefix(api: Api, system: str) -> None:
    first = api.create(patient(system, value="first"))
    time.sleep(0.005)
    second = api.create(patient(system, value="second"))
    assert first.last_updated < second.last_updated
    mine = ("identifier", f"{system}|")

    def search(value: str) -> set[str]:
        return found(api, "Patient", mine, ("_lastUpdated", value))

    assert search(first.last_updated) == ids(first)
    assert search(f"eq{second.last_updated}") == ids(second)
    assert search(f"ne{first.last_updated}") == ids(second)
    assert search(f"gt{first.last_updated}") == ids(second)
    assert search(f"ge{first.last_updated}") == ids(first, second)
    assert search(f"lt{second.last_updated}") == ids(first)
    assert search(f"le{second.last_updated}") == ids(first, second)
    assert search(f"lt{first.last_updated}") == set()
    day = first.last_updated[:10]
    assert search(f"ge{day}") == ids(first, second)
    assert search(f"lt{day}") == set()
    assert search(f"gt{int(day[:4]) + 1}") == set()


# --- tokens -------------------------------------------------------------------------------------


def test_identifier_matches_system_and_value_value_alone_no_system_or_system_alone(
    api: Api,
) -> None:
    system_a, system_b = unique_system(), unique_system()
    value = system_a.rsplit("/", 1)[1]  # unique too
    in_a = api.create(patient(system_a, value=value))
    in_b = api.create(patient(system_b, value=value))
    no_system = api.create(patient(system_a, value="x", identifier=[{"value": value}]))
    other_in_a = api.create(patient(system_a, value="other"))

    assert found(api, "Patient", ("identifier", f"{system_a}|{value}")) == ids(in_a)
    assert found(api, "Patient", ("identifier", value)) == ids(in_a, in_b, no_system)
    assert found(api, "Patient", ("identifier", f"|{value}")) == ids(no_system)
    assert found(api, "Patient", ("identifier", f"{system_a}|")) == ids(in_a, other_in_a)


def test_status_matches_the_code(api: Api, system: str) -> None:
    person = api.create(patient(system))
    finished = api.create(encounter(system, subject=reference(person.resource)))
    ongoing = api.create(
        encounter(system, status="in-progress", subject=reference(person.resource))
    )
    mine = ("patient", person.id)

    assert found(api, "Encounter", mine, ("status", "finished")) == ids(finished)
    assert found(api, "Encounter", mine, ("status", "in-progress")) == ids(ongoing)
    assert found(api, "Encounter", mine, ("status", "finished,in-progress")) == ids(
        finished, ongoing
    )


def test_class_matches_the_encounter_class_coding(api: Api, system: str) -> None:
    outpatient = api.create(encounter(system))
    inpatient = api.create(encounter(system, **{"class": {"system": ACT_CODE, "code": "IMP"}}))
    mine = ("identifier", f"{system}|")

    assert found(api, "Encounter", mine, ("class", f"{ACT_CODE}|AMB")) == ids(outpatient)
    assert found(api, "Encounter", mine, ("class", "IMP")) == ids(inpatient)


def test_category_matches_a_coding_of_the_care_plan_and_consent_category(
    api: Api, system: str
) -> None:
    crisis = {"coding": [{"system": SNOMED, "code": "736373009"}]}
    wellbeing = {"coding": [{"system": SNOMED, "code": "734163000"}], "text": "Wellbeing"}
    crisis_plan = api.create(care_plan(system, category=[crisis]))
    wellbeing_plan = api.create(care_plan(system, category=[wellbeing, crisis]))
    mine = ("identifier", f"{system}|")

    assert found(api, "CarePlan", mine, ("category", f"{SNOMED}|736373009")) == ids(
        crisis_plan, wellbeing_plan
    )
    assert found(api, "CarePlan", mine, ("category", "734163000")) == ids(wellbeing_plan)
    assert found(api, "CarePlan", mine, ("category", "http://loinc.org|734163000")) == set()

    agreed = api.create(consent(system))
    assert found(api, "Consent", mine, ("category", "http://loinc.org|59284-0")) == ids(agreed)


def test_gender_matches_the_administrative_gender(api: Api, system: str) -> None:
    female = api.create(patient(system, gender="female"))
    api.create(patient(system, gender="male"))

    assert found(api, "Patient", ("identifier", f"{system}|"), ("gender", "female")) == ids(female)


# --- references ---------------------------------------------------------------------------------


def test_patient_and_subject_match_a_typed_reference_or_a_bare_id(api: Api, system: str) -> None:
    person = api.create(patient(system))
    other = api.create(patient(system, value="2"))
    theirs = api.create(encounter(system, subject=reference(person.resource)))
    api.create(encounter(system, subject=reference(other.resource)))

    assert found(api, "Encounter", ("patient", f"Patient/{person.id}")) == ids(theirs)
    assert found(api, "Encounter", ("patient", person.id)) == ids(theirs)
    assert found(api, "Encounter", ("subject", f"Patient/{person.id}")) == ids(theirs)
    assert found(api, "Encounter", ("subject", person.id)) == ids(theirs)


def test_patient_of_a_care_plan_and_a_questionnaire_response(api: Api, system: str) -> None:
    person = api.create(patient(system))
    plan = api.create(care_plan(system, subject=reference(person.resource)))
    answers = api.create(questionnaire_response(system, subject=reference(person.resource)))

    assert found(api, "CarePlan", ("patient", person.id)) == ids(plan)
    assert found(api, "QuestionnaireResponse", ("patient", person.id)) == ids(answers)
    assert found(api, "QuestionnaireResponse", ("subject", f"Patient/{person.id}")) == ids(answers)


def test_general_practitioner_matches_the_referenced_practice(api: Api, system: str) -> None:
    practice = api.create(organization(system))
    registered = api.create(patient(system, generalPractitioner=[reference(practice.resource)]))
    api.create(patient(system, value="2"))

    assert found(api, "Patient", ("general-practitioner", f"Organization/{practice.id}")) == ids(
        registered
    )
    assert found(api, "Patient", ("general-practitioner", practice.id)) == ids(registered)


def test_questionnaire_matches_the_canonical_url(api: Api, system: str) -> None:
    form = api.create(questionnaire(system))
    url = form.resource["url"]
    answers = api.create(questionnaire_response(system, questionnaire=url))
    api.create(questionnaire_response(system, value="2", questionnaire=f"{url}-other"))

    assert found(api, "QuestionnaireResponse", ("questionnaire", url)) == ids(answers)


def test_questionnaire_matches_a_canonical_url_that_looks_like_a_rest_url(
    api: Api, system: str
) -> None:
    # Canonical URLs are often of the form [base]/Questionnaire/[id] (e.g. those in the FHIR
    # specification): they are still matched as the whole URL.
    url = f"https://hub.test/fhir/Questionnaire/{system.rsplit('/', 1)[1]}"
    form = api.create(questionnaire(system, url=url))
    answers = api.create(questionnaire_response(system, questionnaire=url))

    assert found(api, "Questionnaire", ("url", url)) == ids(form)
    assert found(api, "QuestionnaireResponse", ("questionnaire", url)) == ids(answers)


def test_url_matches_the_questionnaire_url_exactly(api: Api, system: str) -> None:
    form = api.create(questionnaire(system))
    url = form.resource["url"]

    assert found(api, "Questionnaire", ("url", url)) == ids(form)
    assert found(api, "Questionnaire", ("url", url[:-1])) == set()


def test_target_matches_what_a_provenance_is_about(api: Api, system: str) -> None:
    person = api.create(patient(system))
    plan = api.create(care_plan(system, subject=reference(person.resource)))
    about_person = api.create(provenance(target=[reference(person.resource)]))
    about_plan = api.create(provenance(target=[reference(plan.resource)]))

    assert found(api, "Provenance", ("target", f"Patient/{person.id}")) == ids(about_person)
    assert found(api, "Provenance", ("target", f"CarePlan/{plan.id}")) == ids(about_plan)
    assert found(api, "Provenance", ("patient", person.id)) == ids(about_person)


# --- chains -------------------------------------------------------------------------------------


def test_chained_patient_identifier_finds_the_resources_of_the_patient_with_that_nhs_number(
    api: Api, system: str
) -> None:
    number = nhs_number()
    person = api.create(patient(system, identifier=[identifier(NHS_NUMBER, number)]))
    other = api.create(patient(system, value="2"))
    plan = api.create(care_plan(system, subject=reference(person.resource)))
    api.create(care_plan(system, subject=reference(other.resource)))
    visit = api.create(encounter(system, subject=reference(person.resource)))

    chained = f"{NHS_NUMBER}|{number}"
    assert found(api, "CarePlan", ("patient.identifier", chained)) == ids(plan)
    assert found(api, "Encounter", ("subject.identifier", chained)) == ids(visit)
    assert found(api, "Encounter", ("subject:Patient.identifier", chained)) == ids(visit)


def test_chained_search_combines_with_other_parameters(api: Api, system: str) -> None:
    number = nhs_number()
    person = api.create(patient(system, identifier=[identifier(NHS_NUMBER, number)]))
    active = api.create(care_plan(system, subject=reference(person.resource)))
    api.create(care_plan(system, status="completed", subject=reference(person.resource)))

    params = [("patient.identifier", f"{NHS_NUMBER}|{number}"), ("status", "active")]
    assert found(api, "CarePlan", *params) == ids(active)


# --- dates --------------------------------------------------------------------------------------


@pytest.fixture
def three_encounters(api: Api, system: str) -> dict[str, Written]:
    """An hour's appointment, a two-day stay and an admission still open."""
    periods = {
        "appointment": {"start": "2024-03-10T09:00:00Z", "end": "2024-03-10T10:00:00Z"},
        "stay": {"start": "2024-05-20T14:00:00Z", "end": "2024-05-22T11:00:00Z"},
        "open": {"start": "2024-07-01T08:00:00Z"},
    }
    return {
        name: api.create(encounter(system, value=name, period=period))
        for name, period in periods.items()
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # a day, a month, a year: the period must lie within it (eq, the default)
        ("2024-03-10", {"appointment"}),
        ("eq2024-03", {"appointment"}),
        ("2024", {"appointment", "stay"}),
        ("2024-05-21", set()),
        ("ne2024-03", {"stay", "open"}),
        ("lt2024-04", {"appointment"}),
        ("lt2024-03-10", set()),
        ("le2024-05-19", {"appointment"}),
        ("gt2024-06", {"open"}),
        ("gt2024-05-21", {"stay", "open"}),
        ("ge2024-05-23", {"open"}),
        ("ge2025", {"open"}),
        ("ge2024-05", {"stay", "open"}),  # within May, or after it
        ("le2024-05", {"appointment", "stay"}),  # before May, or within it
        ("lt2024-05-20", {"appointment"}),
        # ap: the period overlaps the value
        ("ap2024-05-21", {"stay"}),
        ("ap2024", {"appointment", "stay", "open"}),
        ("ap2023", set()),
        # datetimes, to the second
        ("lt2024-03-10T09:30:00Z", {"appointment"}),
        ("lt2024-03-10T09:00:00Z", set()),
        ("gt2024-03-10T09:59:59Z", {"appointment", "stay", "open"}),
        ("gt2024-05-22T11:00:00Z", {"open"}),
        ("ge2024-05-21T12:00:00Z", {"stay", "open"}),
        ("le2024-07-01T07:59:59Z", {"appointment", "stay"}),
        ("gt2099-12-31T23:59:59Z", {"open"}),
        ("eq2024-03-10T09:00:00Z", set()),
    ],
)
def test_date_compares_the_encounter_period(
    api: Api, system: str, three_encounters: dict[str, Written], value: str, expected: set[str]
) -> None:
    matches = found(api, "Encounter", ("identifier", f"{system}|"), ("date", value))

    assert matches == {three_encounters[name].id for name in expected}


def test_date_prefixes_and_repeats_make_a_range(
    api: Api, system: str, three_encounters: dict[str, Written]
) -> None:
    params = [("identifier", f"{system}|"), ("date", "ge2024-05"), ("date", "lt2024-07")]

    assert found(api, "Encounter", *params) == {three_encounters["stay"].id}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1987", {"june-1987"}),
        ("1987-06", {"june-1987"}),
        ("1987-06-15", {"june-1987"}),
        ("1987-06-16", set()),
        ("lt1988", {"june-1987"}),
        ("ge1990", {"1990"}),
        ("1990", {"1990"}),
        ("1990-03", set()),  # born some time in 1990: not known to be in March
        ("ge1987-06-15", {"june-1987", "1990"}),
        ("ne1987-06-15", {"1990"}),
    ],
)
def test_birthdate_compares_whole_and_partial_dates(
    api: Api, system: str, value: str, expected: set[str]
) -> None:
    made = {
        "june-1987": api.create(patient(system, value="a", birthDate="1987-06-15")),
        "1990": api.create(patient(system, value="b", birthDate="1990")),
    }

    matches = found(api, "Patient", ("identifier", f"{system}|"), ("birthdate", value))

    assert matches == {made[name].id for name in expected}


# --- strings ------------------------------------------------------------------------------------


@pytest.fixture
def marisol(api: Api, system: str) -> Written:
    return api.create(
        patient(
            system,
            name=[{"family": "Ortega-Díaz", "given": ["Marisol", "Inés"]}],
            address=[{"line": ["1 Riverside Walk"], "city": "Leeds", "postalCode": "LS1 4AP"}],
        )
    )


@pytest.mark.parametrize(
    ("param", "value", "matches"),
    [
        ("family", "ortega", True),
        ("family", "ORTEGA", True),
        ("family", "Ortega-Diaz", True),
        ("family", "ortega-díaz", True),
        ("family", "dia", False),  # not the start of the name
        ("family", "Ortega-Díaz-Smith", False),
        ("given", "marisol", True),
        ("given", "ines", True),
        ("given", "MARI", True),
        ("given", "sol", False),
        ("name", "marisol", True),
        ("name", "ortega", True),
        ("name", "díaz", False),
        ("family:exact", "Ortega-Díaz", True),
        ("family:exact", "ortega-díaz", False),
        ("family:exact", "Ortega", False),
        ("family:contains", "dia", True),
        ("family:contains", "DÍAZ", True),
        ("given:contains", "arisol", True),
        ("family:contains", "marisol", False),
        ("address-postalcode", "LS1", True),
        ("address-postalcode", "ls1 4ap", True),
        ("address-postalcode", "LS2", False),
    ],
)
def test_strings_match_the_start_ignoring_case_and_accents(
    api: Api, system: str, marisol: Written, param: str, value: str, matches: bool
) -> None:
    result = found(api, "Patient", ("identifier", f"{system}|"), (param, value))

    assert result == (ids(marisol) if matches else set())


def test_name_searches_practitioners_and_organizations(api: Api, system: str) -> None:
    clinician = api.create(
        {
            "resourceType": "Practitioner",
            "identifier": [identifier(system, "1")],
            "name": [{"family": "Ñúñez", "given": ["Aoife"]}],
        }
    )
    service = api.create(organization(system, name="Hillside Talking Therapies"))
    mine = ("identifier", f"{system}|")

    assert found(api, "Practitioner", mine, ("family", "nunez")) == ids(clinician)
    assert found(api, "Practitioner", mine, ("given", "aoife")) == ids(clinician)
    assert found(api, "Organization", mine, ("name", "hillside talking")) == ids(service)


# --- OR and AND ---------------------------------------------------------------------------------


def test_commas_are_or_and_repeated_parameters_are_and(api: Api, system: str) -> None:
    alice = api.create(patient(system, value="a", gender="female", birthDate="1980-01-01"))
    bola = api.create(patient(system, value="b", gender="male", birthDate="1990-01-01"))
    chen = api.create(patient(system, value="c", gender="other", birthDate="2000-01-01"))
    mine = ("identifier", f"{system}|")

    assert found(api, "Patient", mine, ("gender", "female,male")) == ids(alice, bola)
    assert found(api, "Patient", mine, ("gender", "female,male"), ("birthdate", "ge1985")) == ids(
        bola
    )
    assert found(api, "Patient", mine, ("birthdate", "ge1985"), ("birthdate", "lt1995")) == ids(
        bola
    )
    assert found(
        api, "Patient", ("identifier", f"{system}|a,{system}|c"), ("gender", "other")
    ) == ids(chen)


# --- the search does not find what is not there ---------------------------------------------------


def test_a_search_matches_only_the_resource_type_searched(api: Api, system: str) -> None:
    api.create(patient(system))
    api.create(organization(system))
    practitioner_matches = found(api, "Practitioner", ("identifier", f"{system}|"))

    assert practitioner_matches == set()


def test_a_search_sees_the_current_version_only(api: Api, system: str) -> None:
    created = api.create(patient(system, gender="female"))
    api.update({**created.resource, "gender": "male"})
    mine = ("identifier", f"{system}|")

    assert found(api, "Patient", mine, ("gender", "female")) == set()
    assert found(api, "Patient", mine, ("gender", "male")) == ids(created)


def test_last_updated_of_a_new_version_is_searchable(api: Api, system: str) -> None:
    created = api.create(patient(system))
    time.sleep(0.005)
    updated = api.update({**created.resource, "gender": "female"})
    mine = ("identifier", f"{system}|")

    assert datetime.fromisoformat(updated.last_updated) > datetime.fromisoformat(
        created.last_updated
    )
    assert found(api, "Patient", mine, ("_lastUpdated", f"gt{created.last_updated}")) == ids(
        updated
    )
