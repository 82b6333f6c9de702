"""Each kind of StructureDefinition rule catches a resource that breaks it, names the rule, and
passes once the resource is fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.validation import Profiles

from ._examples import HUB, NHS, errors, good_resources, write_json


@pytest.mark.parametrize(
    "resource",
    good_resources(),
    ids=lambda r: r["resourceType"] + r.get("questionnaire", "").replace(HUB, ""),
)
def test_resources_as_the_mappings_make_them_conform(profiles: Profiles, resource: dict) -> None:
    assert profiles.check(resource) == []


def test_patient_without_identifier_is_rejected_naming_the_rule(
    profiles: Profiles, patient: dict
) -> None:
    identifiers = patient.pop("identifier")
    (issue,) = profiles.check(patient)
    assert issue.rule == "hub-Patient: Patient.identifier min 1"
    assert issue.path == "Patient.identifier"
    assert issue.severity == "error"
    assert "required" in issue.message

    patient["identifier"] = identifiers
    assert profiles.check(patient) == []


def test_identifier_without_system_is_rejected_where_it_is(
    profiles: Profiles, encounter: dict
) -> None:
    del encounter["identifier"][0]["system"]
    (issue,) = profiles.check(encounter)
    assert issue.rule == "hub-Encounter: Encounter.identifier.system min 1"
    assert issue.path == "Encounter.identifier[0].system"


def test_identifier_system_that_is_not_a_uri_is_rejected(
    profiles: Profiles, careplan: dict
) -> None:
    careplan["identifier"][0]["system"] = "RV5 care plans"
    assert errors(profiles, careplan) == ["hub-CarePlan: hub-id-1"]


def test_nhs_number_written_with_spaces_is_rejected(profiles: Profiles, patient: dict) -> None:
    patient["identifier"][1]["value"] = "999 000 0018"
    (issue,) = profiles.check(patient)
    assert issue.rule == "hub-Patient: hub-nhs-1"
    assert issue.path == "Patient.identifier[1]"
    assert "10 digits" in issue.message

    patient["identifier"][1]["value"] = "9990000018"
    assert profiles.check(patient) == []


def test_second_nhs_number_is_rejected_by_the_slice_cardinality(
    profiles: Profiles, patient: dict
) -> None:
    patient["identifier"].append({"system": NHS, "value": "9990000026"})
    assert errors(profiles, patient) == ["hub-Patient: Patient.identifier:nhsNumber max 1"]


def test_patient_with_only_a_local_identifier_conforms(profiles: Profiles, patient: dict) -> None:
    # Marisol Ortega-Díaz at Lewisham Mind: no NHS number (to be linked by demographics).
    patient["meta"]["source"] = f"{HUB}/source/LEW-MIND#vcse/clients"
    patient["identifier"] = [{"system": f"{HUB}/Id/LEW-MIND/client-ref", "value": "C-000418"}]
    patient["name"] = [{"family": "Ortega-Díaz", "given": ["Marisol"]}]
    assert profiles.check(patient) == []


def test_resource_without_meta_source_is_rejected(profiles: Profiles, consent: dict) -> None:
    del consent["meta"]["source"]
    assert errors(profiles, consent) == ["hub-Consent: Consent.meta.source min 1"]


def test_meta_source_outside_the_hub_namespace_is_rejected(
    profiles: Profiles, encounter: dict
) -> None:
    encounter["meta"]["source"] = "RJ2 visits.csv"
    (issue,) = profiles.check(encounter)
    assert (issue.rule, issue.path) == ("hub-Encounter: hub-src-1", "Encounter.meta.source")


def test_careplan_intent_other_than_plan_is_rejected(profiles: Profiles, careplan: dict) -> None:
    careplan["intent"] = "order"
    (issue,) = profiles.check(careplan)
    assert issue.rule == "hub-CarePlan: CarePlan.intent fixed"
    assert "'plan'" in issue.message

    careplan["intent"] = "plan"
    assert profiles.check(careplan) == []


def test_consent_scope_must_contain_the_privacy_pattern(profiles: Profiles, consent: dict) -> None:
    consent["scope"]["coding"][0]["code"] = "treatment"
    assert errors(profiles, consent) == ["hub-Consent: Consent.scope pattern"]

    # A pattern is contained, not matched exactly: more codings and a text are fine.
    consent["scope"] = {
        "coding": [
            {"system": "http://example.org/local", "code": "share"},
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
                "display": "Privacy Consent",
            },
        ],
        "text": "Sharing with the neighbourhood team",
    }
    assert profiles.check(consent) == []


def test_consent_without_policy_or_policy_rule_is_rejected(
    profiles: Profiles, consent: dict
) -> None:
    del consent["policyRule"]
    (issue,) = profiles.check(consent)
    assert (issue.rule, issue.path) == ("hub-Consent: hub-consent-1", "Consent")

    consent["policy"] = [{"uri": "https://example.org/lewisham-mind/sharing-policy"}]
    assert profiles.check(consent) == []


def test_consent_without_permit_or_deny_is_rejected(profiles: Profiles, consent: dict) -> None:
    consent["provision"] = {"period": {"start": "2026-03-02"}}
    assert errors(profiles, consent) == ["hub-Consent: Consent.provision.type min 1"]
    consent["provision"]["type"] = "maybe"
    assert errors(profiles, consent) == ["hub-Consent: Consent.provision.type binding (required)"]


def test_encounter_class_with_the_stu3_system_is_rejected(
    profiles: Profiles, encounter: dict
) -> None:
    encounter["class"] = {"system": "http://hl7.org/fhir/v3/ActCode", "code": "HH"}
    (issue,) = profiles.check(encounter)
    assert issue.rule == "hub-Encounter: Encounter.class binding (required)"
    assert issue.path == "Encounter.class"
    assert f"{HUB}/ValueSet/encounter-class" in issue.message


def test_encounter_class_not_agreed_by_the_team_is_rejected(
    profiles: Profiles, encounter: dict
) -> None:
    encounter["class"]["code"] = "ACUTE"
    assert errors(profiles, encounter) == ["hub-Encounter: Encounter.class binding (required)"]


def test_status_code_from_another_version_is_rejected(
    profiles: Profiles, encounter: dict, careplan: dict
) -> None:
    encounter["status"] = "completed"
    careplan["status"] = "cancelled"  # STU3: R4 says revoked
    assert errors(profiles, encounter) == ["hub-Encounter: Encounter.status binding (required)"]
    assert errors(profiles, careplan) == ["hub-CarePlan: CarePlan.status binding (required)"]


def test_misspelt_partner_code_is_rejected_but_other_systems_are_welcome(
    profiles: Profiles, encounter: dict
) -> None:
    # VCSE session S-0092: Employment support (IPS), by telephone.
    encounter["class"]["code"] = "VR"
    encounter["type"] = [
        {"coding": [{"system": f"{HUB}/CodeSystem/vcse-session-type", "code": "employment-ips"}]}
    ]
    (issue,) = profiles.check(encounter)
    assert issue.rule == "hub-Encounter: Encounter.type binding (extensible)"
    assert issue.path == "Encounter.type[0]"

    encounter["type"][0]["coding"][0]["code"] = "employment-support-ips"
    encounter["type"].append(
        {"coding": [{"system": "http://snomed.info/sct", "code": "185317003"}]}
    )
    assert profiles.check(encounter) == []


def test_nested_elements_are_counted_in_each_parent(profiles: Profiles, careplan: dict) -> None:
    careplan["activity"] = [
        {"detail": {"status": "scheduled", "description": "Daily check-in call"}},
        {"reference": {"display": "An activity without detail has no detail.status to check"}},
        {"detail": {"description": "Status forgotten"}},
        {"detail": {"status": "finished"}},
    ]
    issues = profiles.check(careplan)
    assert [(i.rule, i.path) for i in issues] == [
        (
            "hub-CarePlan: CarePlan.activity.detail.status min 1",
            "CarePlan.activity[2].detail.status",
        ),
        (
            "hub-CarePlan: CarePlan.activity.detail.status binding (required)",
            "CarePlan.activity[3].detail.status",
        ),
    ]


@pytest.mark.parametrize(
    "reference",
    [
        f"Patient?identifier={NHS}|9990000018",
        f"Patient?identifier={HUB}/Id/LEW-MIND/client-ref|C-000418",
        "Patient/3b5e2d0c",
        "urn:uuid:6f1c9a3e-1b7e-4a44-9d55-0c1e8f7a2b10",
    ],
)
def test_subject_may_be_a_conditional_literal_or_transaction_reference(
    profiles: Profiles, careplan: dict, reference: str
) -> None:
    careplan["subject"] = {"reference": reference}
    assert profiles.check(careplan) == []


def test_subject_that_is_not_a_patient_is_rejected(profiles: Profiles, careplan: dict) -> None:
    careplan["subject"] = {"reference": "Group/lewisham-247"}
    assert errors(profiles, careplan) == ["hub-CarePlan: hub-subj-1"]
    careplan["subject"] = {"identifier": {"system": NHS, "value": "9990000018"}}
    assert errors(profiles, careplan) == ["hub-CarePlan: CarePlan.subject.reference min 1"]
    del careplan["subject"]
    assert errors(profiles, careplan) == ["hub-CarePlan: CarePlan.subject min 1"]


def test_questionnaire_response_with_a_stu3_reference_is_rejected(
    profiles: Profiles, phq9: dict
) -> None:
    phq9["questionnaire"] = "Questionnaire/phq-9"
    assert errors(profiles, phq9) == ["hub-QuestionnaireResponse: hub-qr-1"]


def test_questionnaire_response_takes_one_identifier(profiles: Profiles, phq9: dict) -> None:
    # R4 QuestionnaireResponse.identifier is 0..1: the hub makes it 1..1.
    del phq9["identifier"]
    assert errors(profiles, phq9) == [
        "hub-QuestionnaireResponse: QuestionnaireResponse.identifier min 1"
    ]


def test_types_without_a_hub_profile_are_not_checked(profiles: Profiles) -> None:
    provenance = {"resourceType": "Provenance", "recorded": "2026-04-12T09:30:00Z"}
    assert profiles.check(provenance) == []


def test_malformed_shapes_are_reported_not_crashed_on(profiles: Profiles, patient: dict) -> None:
    patient["identifier"] = "9990000018"
    patient["meta"] = ["not", "an", "object"]
    patient["gender"] = {"code": "female"}
    rules = errors(profiles, patient)
    assert "hub-Patient: Patient.meta.source min 1" not in rules  # meta is not an object
    assert "hub-Patient: Patient.gender binding (required)" in rules


# -- profiles named in meta.profile, and the rule kinds the hub profiles do not use yet ------


def _strict_patient(directory: Path) -> str:
    """A non-hub profile on Patient, applied only when a resource names it."""
    url = "https://example.org/StructureDefinition/strict-Patient"
    write_json(
        directory / "StructureDefinition" / "strict-Patient.json",
        {
            "resourceType": "StructureDefinition",
            "id": "strict-Patient",
            "url": url,
            "name": "StrictPatient",
            "status": "draft",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {"id": "Patient", "path": "Patient"},
                    {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
                    {
                        "id": "Patient.identifier",
                        "path": "Patient.identifier",
                        "slicing": {
                            "discriminator": [{"type": "value", "path": "system"}],
                            "rules": "closed",
                        },
                    },
                    {
                        "id": "Patient.identifier:nhs",
                        "path": "Patient.identifier",
                        "sliceName": "nhs",
                        "min": 1,
                    },
                    {
                        "id": "Patient.identifier:nhs.system",
                        "path": "Patient.identifier.system",
                        "fixedUri": NHS,
                    },
                    {
                        "id": "Patient.maritalStatus",
                        "path": "Patient.maritalStatus",
                        "binding": {
                            "strength": "required",
                            "valueSet": "http://hl7.org/fhir/ValueSet/marital-status",
                        },
                    },
                    {
                        "id": "Patient.deceased[x]",
                        "path": "Patient.deceased[x]",
                        "type": [{"code": "boolean"}],
                    },
                ]
            },
        },
    )
    return url


def test_profile_named_in_meta_profile_is_applied(profiles_copy: Path, patient: dict) -> None:
    url = _strict_patient(profiles_copy)
    profiles = Profiles.load(profiles_copy)
    del patient["birthDate"]
    assert profiles.check(patient) == []  # not named: only the hub profile applies

    patient["meta"]["profile"] = [url]
    assert errors(profiles, patient) == [
        "strict-Patient: Patient.birthDate min 1",
        "strict-Patient: Patient.identifier slicing closed",  # the MRN is not allowed there
    ]
    patient["birthDate"] = "1985-03-14"
    patient["identifier"] = [{"system": NHS, "value": "9990000018"}]
    assert profiles.check(patient) == []

    patient["identifier"] = [{"system": f"{HUB}/Id/RV5/mrn", "value": "RV5A000123"}]
    assert "strict-Patient: Patient.identifier:nhs min 1" in errors(profiles, patient)


def test_choice_element_limited_to_some_types(profiles_copy: Path, patient: dict) -> None:
    url = _strict_patient(profiles_copy)
    profiles = Profiles.load(profiles_copy)
    patient["meta"]["profile"] = [url]
    patient["identifier"] = [{"system": NHS, "value": "9990000018"}]
    patient["deceasedBoolean"] = False
    assert profiles.check(patient) == []
    del patient["deceasedBoolean"]
    patient["deceasedDateTime"] = "2026-04-01"
    (issue,) = profiles.check(patient)
    assert (issue.rule, issue.path) == (
        "strict-Patient: Patient.deceased[x] type",
        "Patient.deceasedDateTime",
    )


def test_required_binding_to_a_value_set_not_loaded_is_skipped(
    profiles_copy: Path, patient: dict
) -> None:
    patient["meta"]["profile"] = [_strict_patient(profiles_copy)]
    profiles = Profiles.load(profiles_copy)
    patient["identifier"] = [{"system": NHS, "value": "9990000018"}]
    patient["maritalStatus"] = {"coding": [{"system": "urn:example", "code": "anything"}]}
    assert profiles.check(patient) == []


def test_unknown_meta_profile_is_a_warning(profiles: Profiles, patient: dict) -> None:
    patient["meta"]["profile"] = ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]
    (issue,) = profiles.check(patient)
    assert (issue.rule, issue.severity) == ("meta.profile", "warning")


def test_meta_profile_for_another_type_is_rejected(profiles: Profiles, patient: dict) -> None:
    patient["meta"]["profile"] = [f"{HUB}/StructureDefinition/hub-Encounter"]
    assert errors(profiles, patient) == ["meta.profile"]


def test_hub_profile_named_again_is_applied_once(profiles: Profiles, patient: dict) -> None:
    patient["meta"]["profile"] = [f"{HUB}/StructureDefinition/hub-Patient|0.1.0"]
    del patient["identifier"]
    assert errors(profiles, patient) == ["hub-Patient: Patient.identifier min 1"]


def test_indexes_find_profiles_by_type_and_url(profiles: Profiles) -> None:
    (sd,) = profiles.structure_definitions_for("Encounter")
    assert sd["url"] == f"{HUB}/StructureDefinition/hub-Encounter"
    assert profiles.structure_definition(f"{HUB}/StructureDefinition/hub-Encounter") is sd
    assert profiles.structure_definition("https://example.org/none") is None


def test_checker_gives_the_errors_as_lines_for_the_mapping_engine(
    profiles: Profiles, careplan: dict
) -> None:
    check = profiles.checker()
    assert check(careplan) == []
    careplan["intent"] = "proposal"
    careplan["meta"]["profile"] = ["https://example.org/StructureDefinition/not-here"]  # warning
    assert check(careplan) == [
        "hub-CarePlan: CarePlan.intent fixed: is 'proposal' but must be 'plan' (at CarePlan.intent)"
    ]
