"""`placeholder: true`: a resource another source owns, written only while nobody has its key.

A district nursing pathway names the trust's care plan it serves; the trust's plan may not have
arrived yet. The mapping writes a placeholder with the plan's key (a conditional create), which
the trust's own record replaces whenever it comes.
"""

from __future__ import annotations

import io

import pytest

from hub.mapping import MappedRecord, MappingConfigError, MappingSet

PATHWAY = """
description: a pathway based on another organisation's plan
format: csv
organisation: RJ2
record_id: =care_plan_id
resources:
  - id: patient
    type: Patient
    key: {system: https://fhir.nhs.uk/Id/nhs-number, value: =nhs_number}
  - id: trust-plan
    type: CarePlan
    when: =epr_plan_id
    placeholder: true
    key:
      system: =concat($hub_id, '/RV5/careplan')
      value: =epr_plan_id
    set: {status: unknown, intent: plan, subject: =ref('patient')}
  - id: pathway
    type: CarePlan
    key:
      system: =concat($hub_id, '/RJ2/careplan')
      value: =care_plan_id
    set:
      status: active
      intent: plan
      subject: =ref('patient')
      basedOn: [=ref('trust-plan')]
"""
ROWS = "care_plan_id,nhs_number,epr_plan_id\nDN-1,9990000026,CP-60001\nDN-2,9990000026,\n"
TRUST_PLAN = "https://fhir.hub.example/Id/RV5/careplan"


def _records(mappings: MappingSet) -> list[MappedRecord]:
    return list(mappings.get("district-nursing/careplans").read(io.BytesIO(ROWS.encode()), "x.csv"))


def test_a_placeholder_is_a_conditional_create_and_the_rest_conditional_updates(mappings, write):
    write("district-nursing/careplans.yaml", PATHWAY)
    first, without = _records(mappings)
    entries = first.transaction()["entry"]
    assert [e["request"] for e in entries] == [
        {"method": "PUT", "url": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000026"},
        {
            "method": "POST",
            "url": "CarePlan",
            "ifNoneExist": f"identifier={TRUST_PLAN}|CP-60001",
        },
        {
            "method": "PUT",
            "url": "CarePlan?identifier=https://fhir.hub.example/Id/RJ2/careplan|DN-1",
        },
    ]
    assert entries[2]["resource"]["basedOn"] == [
        {"reference": f"CarePlan?identifier={TRUST_PLAN}|CP-60001"}
    ]
    assert [m.placeholder for m in first.resources] == [False, True, False]
    # No plan named: no placeholder, and nothing to be based on.
    assert [m.type for m in without.resources] == ["Patient", "CarePlan"]
    assert "basedOn" not in without.resources[1].resource


def test_a_kept_outcome_remembers_which_resources_are_placeholders(mappings, write):
    write("district-nursing/careplans.yaml", PATHWAY)
    first, _ = _records(mappings)
    kept = MappedRecord.from_bytes(first.to_bytes("v1"), "v1", first.locator, first.raw)
    assert kept is not None
    assert [m.placeholder for m in kept.resources] == [False, True, False]
    assert kept.transaction() == first.transaction()


def test_a_patient_cannot_be_a_placeholder(mappings, write):
    broken = PATHWAY.replace(
        "  - id: patient\n    type: Patient\n",
        "  - id: patient\n    type: Patient\n    placeholder: true\n",
    )
    write("district-nursing/careplans.yaml", broken)
    with pytest.raises(MappingConfigError, match="a Patient cannot be a placeholder"):
        mappings.get("district-nursing/careplans")
