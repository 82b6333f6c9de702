"""What a Patient offers as evidence of who they are: valid NHS numbers, normalised demographics."""

from __future__ import annotations

import pytest

from hub.fhir import NHS_NUMBER_SYSTEM
from hub.identity import Demographics, demographics, nhs_numbers, normalise_name

INVALID_SYSTEM = "https://fhir.hub.example/Id/invalid-nhs-number"


def _with_numbers(*identifiers: tuple[str, str]) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": s, "value": v} for s, v in identifiers],
    }


@pytest.mark.parametrize(
    "number", ["9990000018", "9990000026", "9990000050", "9990000077", "9434765919"]
)
def test_numbers_passing_modulus_11_are_evidence(number: str) -> None:
    assert nhs_numbers(_with_numbers((NHS_NUMBER_SYSTEM, number))) == [number]


@pytest.mark.parametrize(
    "number",
    [
        "9990000019",  # wrong check digit
        "9990000060",  # check digit would be 10: never issued
        "999000001",  # nine digits
        "999 000 0018",  # not normalised: the mapping's job, not a match here
        "99900000\uff118",  # a full-width digit is not an ASCII digit
    ],
)
def test_numbers_failing_modulus_11_are_never_evidence(number: str) -> None:
    assert nhs_numbers(_with_numbers((NHS_NUMBER_SYSTEM, number))) == []


def test_numbers_kept_under_the_invalid_system_are_never_evidence() -> None:
    patient = _with_numbers((INVALID_SYSTEM, "9990000018"), ("https://x/mrn", "9990000026"))
    assert nhs_numbers(patient) == []


def test_a_number_given_twice_counts_once() -> None:
    patient = _with_numbers((NHS_NUMBER_SYSTEM, "9990000018"), (NHS_NUMBER_SYSTEM, "9990000018"))
    assert nhs_numbers(patient) == ["9990000018"]


@pytest.mark.parametrize(
    "spelling", ["Ortega-Díaz", "ORTEGA-DÍAZ", "Ortega Diaz", "ortegadiaz", " Ortega\u2013Díaz "]
)
def test_names_compare_without_accents_case_hyphens_or_spaces(spelling: str) -> None:
    assert normalise_name(spelling) == "ortegadiaz"


def test_apostrophes_and_german_sharp_s_normalise() -> None:
    assert normalise_name("O'Brien") == normalise_name("OBRIEN") == "obrien"
    assert normalise_name("Strauß") == normalise_name("STRAUSS")


def test_demographics_of_an_epr_patient() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Okafor", "given": ["Adaeze", "Ngozi"], "prefix": ["Ms"]}],
        "birthDate": "1985-03-14",
        "address": [{"use": "home", "line": ["Flat 3"], "postalCode": "SE4 2AB"}],
    }
    assert demographics(patient) == Demographics("okafor", "adaeze", "1985-03-14", "SE4 2AB")


def test_a_lower_case_postcode_without_space_normalises() -> None:
    patient = {"resourceType": "Patient", "address": [{"postalCode": "se64ru"}]}
    assert demographics(patient).postcode == "SE6 4RU"


def test_old_names_and_ended_addresses_are_not_evidence() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"use": "maiden", "family": "Smith", "given": ["Ann"]}, {"family": "Jones"}],
        "address": [
            {"use": "home", "postalCode": "SE4 2AB", "period": {"end": "2020-01-01"}},
            {"use": "old", "postalCode": "SE13 7UW"},
            {"use": "work", "postalCode": "SE6 4RU"},
        ],
    }
    found = demographics(patient)
    assert (found.family, found.given, found.postcode) == ("jones", None, "SE6 4RU")


def test_an_official_name_is_preferred_to_a_nickname() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {"use": "nickname", "family": "Brooks", "given": ["Dan"]},
            {"use": "official", "family": "Brooks", "given": ["Daniel"]},
        ],
    }
    assert demographics(patient).given == "daniel"


def test_a_partial_birth_date_is_too_weak_to_match_on() -> None:
    assert demographics({"resourceType": "Patient", "birthDate": "1985"}).birth_date is None


def test_evidence_says_which_fields_agree_and_names_no_value() -> None:
    ours = Demographics("okafor", "adaeze", "1985-03-14", "SE4 2AB")
    theirs = Demographics("okafor", "adaeze", "1985-03-14", None)
    evidence = ours.compare(theirs)
    assert evidence == {
        "family": "same",
        "given": "same",
        "birth_date": "same",
        "postcode": "missing",
    }
    assert "okafor" not in str(evidence) and "1985" not in str(evidence)
