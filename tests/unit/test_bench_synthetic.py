"""The benchmark's synthetic data: valid test NHS numbers, deterministic, well-formed Bundles."""

from __future__ import annotations

import pytest

from hub.bench import (
    RESOURCES_PER_PATIENT,
    is_valid_nhs_number,
    patient_entries,
    patient_facts,
    transaction_bundles,
)
from hub.fhir import validate_resource


@pytest.mark.parametrize("number", ["9990000018", "9990000050", "9990000069", "9434765919"])
def test_modulus_11_accepts_known_valid_numbers(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("number", ["9990000019", "9990000060", "9990000000", "999000001", "x"])
def test_modulus_11_rejects_wrong_check_digit_and_impossible_stems(number: str) -> None:
    assert not is_valid_nhs_number(number)


def test_generated_nhs_numbers_are_valid_unique_and_in_the_999_test_range() -> None:
    numbers = [patient_facts(7, i).nhs_number for i in range(5_000)]
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_generation_is_deterministic_for_a_seed() -> None:
    first = list(transaction_bundles(seed=3, patients=40, batch=60))
    again = list(transaction_bundles(seed=3, patients=40, batch=60))
    other = list(transaction_bundles(seed=4, patients=40, batch=60))
    assert first == again
    assert first != other


def test_patient_facts_match_the_generated_patient() -> None:
    facts = patient_facts(5, 12)
    patient = patient_entries(5, 12)[0]["resource"]
    assert patient["identifier"][0]["value"] == facts.nhs_number
    assert patient["name"][0]["family"] == facts.family
    assert patient["birthDate"] == facts.birth_date
    assert "1940-01-01" <= facts.birth_date <= "2008-12-31"


def test_each_bundle_has_the_requested_size_in_whole_patients() -> None:
    bundles = list(transaction_bundles(seed=1, patients=25, batch=60))
    assert [len(b["entry"]) for b in bundles] == [60, 60, 30]
    assert all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in bundles)


def test_batch_is_rounded_down_to_whole_patients() -> None:
    bundles = list(transaction_bundles(seed=1, patients=40, batch=100))
    assert [len(b["entry"]) for b in bundles] == [96, 96, 48]


def test_related_resources_reference_a_patient_urn_in_the_same_bundle() -> None:
    for bundle in transaction_bundles(seed=2, patients=30, batch=60):
        patients = {
            e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        }
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        assert all(u.startswith("urn:uuid:") for u in full_urls)
        assert len(full_urls) == len(bundle["entry"])
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
            if resource["resourceType"] == "Patient":
                continue
            subject = resource.get("subject") or resource["target"][0]
            assert subject["reference"] in patients
            if "encounter" in resource:
                assert resource["encounter"]["reference"] in full_urls


def test_each_patient_has_its_five_related_resources_and_all_are_valid_r4() -> None:
    entries = patient_entries(seed=9, index=3)
    kinds = sorted(e["resource"]["resourceType"] for e in entries)
    assert len(entries) == RESOURCES_PER_PATIENT
    assert kinds == [
        "CarePlan",
        "Encounter",
        "Encounter",
        "Patient",
        "Provenance",
        "QuestionnaireResponse",
    ]
    for entry in entries:
        validate_resource(entry["resource"])
