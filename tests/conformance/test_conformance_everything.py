"""`Patient/{id}/$everything`: the patient, everything in its compartment and what they
reference, and never another patient's record."""

from __future__ import annotations

import pytest

from hub.fhir import ResourceNotFound
from tests.conformance._api import Api, Resource, Written
from tests.conformance._examples import (
    audit_event,
    care_plan,
    consent,
    encounter,
    organization,
    patient,
    provenance,
    questionnaire_response,
    reference,
)


def keys(resources: list[Resource]) -> list[tuple[str, str]]:
    return [(r["resourceType"], r["id"]) for r in resources]


def key(written: Written) -> tuple[str, str]:
    return written.resource["resourceType"], written.id


def record(api: Api, system: str, value: str, practice: Written) -> dict[str, Written]:
    """A patient registered with `practice`, and its encounter, care plan, questionnaire
    response, consent and provenance."""
    person = api.create(
        patient(system, value=value, managingOrganization=reference(practice.resource))
    )
    subject = reference(person.resource)
    visit = api.create(encounter(system, value=value, subject=subject))
    plan = api.create(
        care_plan(system, value=value, subject=subject, encounter=reference(visit.resource))
    )
    answers = api.create(questionnaire_response(system, value=value, subject=subject))
    agreed = api.create(consent(system, value=value, patient=subject))
    origin = api.create(provenance(target=[subject, reference(plan.resource)]))
    return {
        "patient": person,
        "encounter": visit,
        "care plan": plan,
        "questionnaire response": answers,
        "consent": agreed,
        "provenance": origin,
    }


def test_everything_returns_the_patient_its_record_and_its_organization(
    api: Api, system: str
) -> None:
    practice = api.create(organization(system))
    mine = record(api, system, "mine", practice)

    found = keys(api.everything(mine["patient"].id))

    assert len(found) == len(set(found)), "a resource appears twice"
    expected = {key(w) for w in mine.values()} | {key(practice)}
    assert set(found) == expected


def test_everything_never_returns_another_patients_resources(api: Api, system: str) -> None:
    practice = api.create(organization(system))
    mine = record(api, system, "mine", practice)
    theirs = record(api, system, "theirs", practice)

    found = set(keys(api.everything(mine["patient"].id)))

    assert not found & {key(w) for w in theirs.values()}
    assert key(mine["patient"]) in found
    assert key(practice) in found


def test_everything_leaves_out_another_patients_resources_even_when_its_record_names_them(
    api: Api, system: str
) -> None:
    # An audit of a search that returned both records, and a provenance of a copy of their
    # care plan made for mine: both are in my compartment, and name their resources.
    practice = api.create(organization(system))
    mine = record(api, system, "mine", practice)
    theirs = record(api, system, "theirs", practice)
    me = reference(mine["patient"].resource)
    audit = api.create(
        audit_event(
            entity=[
                {"what": me},
                {"what": reference(theirs["encounter"].resource)},
                {"what": reference(theirs["questionnaire response"].resource)},
            ]
        )
    )
    copied = api.create(provenance(target=[me, reference(theirs["care plan"].resource)]))

    found = set(keys(api.everything(mine["patient"].id)))

    assert {key(audit), key(copied)} <= found
    assert not found & {key(w) for w in theirs.values()}


def test_everything_of_a_patient_without_a_record_is_the_patient(api: Api, system: str) -> None:
    person = api.create(patient(system))

    assert keys(api.everything(person.id)) == [key(person)]


def test_everything_leaves_out_what_was_deleted(api: Api, system: str) -> None:
    practice = api.create(organization(system))
    mine = record(api, system, "mine", practice)
    api.delete("Encounter", mine["encounter"].id)

    found = set(keys(api.everything(mine["patient"].id)))

    assert key(mine["encounter"]) not in found
    assert key(mine["care plan"]) in found


def test_everything_of_an_unknown_patient_is_404(api: Api, system: str) -> None:
    with pytest.raises(ResourceNotFound):
        api.everything(f"never-{system.rsplit('/', 1)[1]}")
