"""The mapping engine, driven by small mappings written in each test (CSV and JSON Lines in)."""

from __future__ import annotations

import io

import pytest

from hub.fhir import validate_resource
from hub.mapping import MappingConfigError, MappingSet

CLIENTS_CSV = (
    "\ufefforg_id,client_ref,first_name,last_name,dob,score,notes\r\n"
    "LEW-MIND,C-1,ADA,OKAFOR,14/03/1985,3,private words\r\n"
    "\r\n"
    "LEW-MIND,C-2,  Marisol ,ortega-díaz,31/02/1990,x,\r\n"
)

PATIENT_MAPPING = """
description: test clients
format: csv
organisation: =org_id
record_id: =client_ref
private: [notes]
resources:
  - id: patient
    type: Patient
    key:
      system: =concat($hub_id, '/', org_id, '/client-ref')
      value: =client_ref
    set:
      name:
        family: =last_name | title
        given: =first_name | title
      birthDate: =dob | date('%d/%m/%Y')
"""


def _run(mappings: MappingSet, name: str, text: str, file: str = "in.csv"):
    return list(mappings.get(name).read(io.BytesIO(text.encode()), file))


def test_a_csv_row_becomes_a_patient_with_key_source_and_shaped_elements(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING)
    first, _second = _run(mappings, "vcse/clients", CLIENTS_CSV)
    assert first.ok and first.name == "in.csv line 2 (C-1)"
    (made,) = first.resources
    assert made.resource == {
        "resourceType": "Patient",
        "meta": {"source": "https://fhir.hub.example/source/LEW-MIND#vcse/clients"},
        "identifier": [
            {"system": "https://fhir.hub.example/Id/LEW-MIND/client-ref", "value": "C-1"}
        ],
        "name": [{"family": "Okafor", "given": ["Ada"]}],
        "birthDate": "1985-03-14",
    }
    validate_resource(made.resource)
    assert made.conditional_url == (
        "Patient?identifier=https://fhir.hub.example/Id/LEW-MIND/client-ref|C-1"
    )


def test_a_bad_value_fails_only_its_record_naming_line_element_and_path(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING)
    first, second = _run(mappings, "vcse/clients", CLIENTS_CSV)
    assert first.ok
    assert not second.ok and second.resources == []
    assert second.name == "in.csv line 4 (C-2)"
    assert second.errors == [
        "Patient.birthDate from dob | date('%d/%m/%Y'): '31/02/1990' does not fit the format %d/%m/%Y"
    ]


def test_mapping_the_same_record_twice_gives_the_same_resources(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING)
    once = [r.resources for r in _run(mappings, "vcse/clients", CLIENTS_CSV)]
    again = [r.resources for r in _run(mappings, "vcse/clients", CLIENTS_CSV)]
    assert once == again


def test_a_private_column_can_never_be_mapped(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING.replace("=last_name | title", "=notes"))
    with pytest.raises(MappingConfigError) as caught:
        mappings.get("vcse/clients")
    assert "notes is private" in str(caught.value)
    assert "vcse/clients.yaml line 14" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (
            "family: =last_name | title",
            14,
            "HumanName has no element 'familly' (did you mean family?)",
        ),
        ("birthDate: =dob | date('%d/%m/%Y')", 16, "unknown function 'dait' (did you mean date?)"),
        ("organisation: =org_id", 3, "unknown key 'organization'"),
    ],
)
def test_a_typo_in_a_mapping_names_file_line_and_key(mappings, write, change, line, says):
    typo = {
        "family:": "familly:",
        "date(": "dait(",
        "organisation:": "organization:",
    }
    broken = change
    for good, bad in typo.items():
        broken = broken.replace(good, bad)
    write("vcse/clients.yaml", PATIENT_MAPPING.replace(change, broken))
    with pytest.raises(MappingConfigError) as caught:
        mappings.get("vcse/clients")
    assert str(caught.value).startswith(f"mappings/vcse/clients.yaml line {line}")
    assert says in str(caught.value)


def test_check_reports_every_broken_file(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING.replace("title", "titel"))
    write("vcse/maps/kinds.yaml", "description: x\nmap:\n  01: one\n")
    problems = [str(p) for p in mappings.check()]
    assert len(problems) == 2
    assert "unknown function 'titel'" in problems[0]
    assert "mappings/vcse/maps/kinds.yaml line 3" in problems[1]
    assert "code 1 must be quoted text ('1')" in problems[1]


PLANS = (
    '{"plan_id": "P1", "mrn": "M1", "type": "crisis", "score": "7", "goals": ['
    '{"id": "G1", "description": "Sleep", "status": "in-progress"},'
    '{"id": "G2", "description": " ", "status": "accepted"}], "lead": null}\n'
    "not json\n"
    '{"plan_id": "P2", "mrn": "M2", "type": "unknown-kind", "score": "seven", "goals": []}\n'
)

PLAN_MAPPING = """
description: test plans
format: jsonl
organisation: RV5
record_id: =plan_id
let:
  mrn_system: =concat($hub_id, '/RV5/mrn')
resources:
  - id: plan
    type: CarePlan
    key: {system: "=concat($hub_id, '/RV5/careplan')", value: =plan_id}
    set:
      status: active
      intent: plan
      subject: =reference('Patient', $mrn_system, mrn)
      category:
        coding: =type | map('plan-type')
      note:
        - $each: =goals
          $when: =@.description
          text: =@.description
      extension:
        - url: https://fhir.hub.example/StructureDefinition/score
          valueInteger: =score
      author: =lead
"""

PLAN_TYPES = """
description: plan types
source: https://fhir.hub.example/CodeSystem/plan-type
target: http://snomed.info/sct
match: ignore-case
map:
  CRISIS:
    - {system: https://fhir.hub.example/CodeSystem/plan-type, code: CRISIS}
    - {code: '736253002', display: Mental health crisis plan}
"""


def test_lists_each_when_maps_references_and_conversions(mappings, write):
    write("slam-epr/plans.yaml", PLAN_MAPPING)
    write("slam-epr/maps/plan-type.yaml", PLAN_TYPES)
    good, unreadable, bad = _run(mappings, "slam-epr/plans", PLANS, "plans.jsonl")
    plan = good.resources[0].resource
    assert plan["subject"] == {
        "reference": "Patient?identifier=https://fhir.hub.example/Id/RV5/mrn|M1"
    }
    assert plan["category"] == [
        {
            "coding": [
                {"system": "https://fhir.hub.example/CodeSystem/plan-type", "code": "CRISIS"},
                {
                    "system": "http://snomed.info/sct",
                    "code": "736253002",
                    "display": "Mental health crisis plan",
                },
            ]
        }
    ]
    assert plan["note"] == [{"text": "Sleep"}]  # the blank goal is left out, not emptied
    assert plan["extension"][0]["valueInteger"] == 7
    assert "author" not in plan  # null in the source: missing, not an empty element
    validate_resource(plan)
    assert unreadable.locator == "plans.jsonl line 2" and unreadable.errors
    assert sorted(bad.errors) == [
        "CarePlan.category.coding from type | map('plan-type'): 'unknown-kind' is not in value map 'slam-epr/plan-type'",
        "CarePlan.extension.valueInteger from score: 'seven' is not a whole number",
    ]


def test_value_maps_are_published_as_concept_maps(mappings, write):
    write("slam-epr/maps/plan-type.yaml", PLAN_TYPES)
    (value_map,) = mappings.value_maps()
    concept_map = value_map.to_concept_map()
    validate_resource(concept_map)
    assert concept_map["url"] == "https://fhir.hub.example/ConceptMap/slam-epr/plan-type"
    targets = {g["target"]: g["element"][0]["target"][0]["code"] for g in concept_map["group"]}
    assert targets == {
        "https://fhir.hub.example/CodeSystem/plan-type": "CRISIS",
        "http://snomed.info/sct": "736253002",
    }


def test_parts_are_written_once_and_used_with_each(mappings, write):
    write(
        "parts/json/goal-note.yaml",
        """
        description: a goal as a note
        template:
          text: "=concat(@.id, ': ', @.description)"
        """,
    )
    write(
        "slam-epr/plans.yaml",
        PLAN_MAPPING.replace(
            "        - $each: =goals\n          $when: =@.description\n          text: =@.description\n",
            "        - $each: =goals\n          $use: json/goal-note\n",
        ).replace("coding: =type | map('plan-type')", "text: =type"),
    )
    good = _run(mappings, "slam-epr/plans", PLANS, "plans.jsonl")[0]
    assert good.resources[0].resource["note"] == [{"text": "G1: Sleep"}]


def test_a_resource_without_its_business_identifier_is_an_error(mappings, write):
    write("vcse/clients.yaml", PATIENT_MAPPING.replace("value: =client_ref", "value: =first_name"))
    text = "org_id,client_ref,first_name,last_name,dob,score,notes\nLEW-MIND,C-9,,Okafor,01/01/1990,1,\n"
    (record,) = _run(mappings, "vcse/clients", text)
    assert record.errors == [
        "Patient key: first_name is empty (every resource needs its business identifier; use `when:` to skip it)"
    ]


def test_withheld_records_produce_nothing(mappings, write):
    write(
        "vcse/clients.yaml",
        PATIENT_MAPPING.replace(
            "private: [notes]\n",
            "private: [notes]\nwithhold:\n  when: =score | ne('3')\n  reason: no consent to share\n",
        ),
    )
    first, second = _run(mappings, "vcse/clients", CLIENTS_CSV)
    assert first.ok and first.resources
    assert second.withheld == "no consent to share" and not second.resources and not second.ok


def test_contained_resources_are_typed_by_their_resource_type(mappings, write):
    write(
        "slam-epr/plans.yaml",
        PLAN_MAPPING.replace("coding: =type | map('plan-type')", "text: =type").replace(
            "      note:\n",
            "      contained:\n"
            "        - $each: =goals\n"
            "          $when: =@.description\n"
            "          resourceType: Goal\n"
            "          id: =concat('g', position())\n"
            "          lifecycleStatus: active\n"
            "          description: {text: =@.description}\n"
            "          subject: =reference('Patient', $mrn_system, mrn)\n"
            "      goal:\n"
            "        - $each: =goals\n"
            "          $when: =@.description\n"
            "          reference: =concat('#g', position())\n"
            "      note:\n",
        ),
    )
    plan = _run(mappings, "slam-epr/plans", PLANS, "plans.jsonl")[0].resources[0].resource
    assert [g["resourceType"] for g in plan["contained"]] == ["Goal"]
    assert plan["contained"][0]["description"] == {"text": "Sleep"}
    assert plan["goal"] == [{"reference": "#g1"}]
    assert plan["contained"][0]["id"] == "g1"
    validate_resource(plan)
    write("slam-epr/maps/plan-type.yaml", PLAN_TYPES)
    write(
        "slam-epr/plans.yaml",
        PLAN_MAPPING.replace(
            "      note:\n", "      contained:\n        - lifecycleStatus: active\n      note:\n"
        ),
    )
    with pytest.raises(MappingConfigError, match="a contained resource needs `resourceType: Type`"):
        MappingSet(mappings.root).get("slam-epr/plans")


def test_list_gathers_several_paths_keeping_duplicates(mappings, write):
    write(
        "slam-epr/scores.yaml",
        """
        description: scores
        format: jsonl
        organisation: RV5
        resources:
          - id: response
            type: QuestionnaireResponse
            key: {system: https://fhir.hub.example/Id/RV5/x, value: =id}
            set:
              status: completed
              item:
                - linkId: mean
                  answer: {valueDecimal: "=list(s.a, s.b, s.c) | mean | round(2)"}
                - linkId: total
                  answer: {valueInteger: "=list(s.a, s.b, s.c) | sum"}
        """,
    )
    (record,) = _run(mappings, "slam-epr/scores", '{"id": "1", "s": {"a": 3, "c": 3}}\n')
    items = record.resources[0].resource["item"]
    assert items == [
        {"linkId": "mean", "answer": [{"valueDecimal": 3}]},
        {"linkId": "total", "answer": [{"valueInteger": 6}]},
    ]


def test_an_error_inside_an_each_item_names_the_item(mappings, write):
    write("slam-epr/scores.yaml", SCORES)
    good = '{"id": "1", "s": [{"k": "a", "v": 3}, {"k": "b", "v": 4}, {"k": "c", "v": "3.875"}]}\n'
    (record,) = _run(mappings, "slam-epr/scores", good)
    assert record.errors == [
        "QuestionnaireResponse.item[s #3].answer.valueInteger from @.v: '3.875' is not a whole number"
    ]


def test_means_are_rounded_half_up_and_left_out_when_nothing_was_answered(mappings, write):
    write("slam-epr/scores.yaml", SCORES.replace("valueInteger: =@.v", "valueDecimal: =@.v"))
    half = '{"id": "1", "s": [{"k": "a", "v": 3.625}]}\n'
    (record,) = _run(mappings, "slam-epr/scores", half)
    assert record.resources[0].resource["extension"][0]["valueDecimal"] == 3.63
    (record,) = _run(mappings, "slam-epr/scores", '{"id": "1", "s": []}\n')
    assert "extension" not in record.resources[0].resource


SCORES = """
description: scores
format: jsonl
organisation: RV5
resources:
  - id: response
    type: QuestionnaireResponse
    key: {system: https://fhir.hub.example/Id/RV5/x, value: =id}
    set:
      status: completed
      item:
        - $each: =s
          linkId: =@.k
          answer: {valueInteger: =@.v}
      extension:
        - url: https://fhir.hub.example/StructureDefinition/mean
          valueDecimal: =list(s.v) | mean | round(2)
"""


def test_half_made_objects_are_left_out_but_a_resources_constants_stay(mappings, write):
    write(
        "slam-epr/scores.yaml",
        SCORES.replace(
            "      item:\n",
            "      subject: {identifier: {system: https://x, value: =who}}\n      item:\n",
        ),
    )
    (record,) = _run(mappings, "slam-epr/scores", '{"id": "1"}\n')
    resource = record.resources[0].resource
    assert resource["status"] == "completed"
    assert "subject" not in resource and "extension" not in resource


def test_a_resource_that_breaks_a_profile_rejects_its_record_naming_the_rule(mappings, write):
    from pathlib import Path

    from hub.validation import Profiles

    profiles = Profiles.load(Path(__file__).resolve().parents[2] / "profiles")
    write("slam-epr/plans.yaml", PLAN_MAPPING.replace("intent: plan", "intent: proposal"))
    write("slam-epr/maps/plan-type.yaml", PLAN_TYPES)
    data = io.BytesIO(PLANS.splitlines()[0].encode() + b"\n")
    (record,) = mappings.get("slam-epr/plans").read(data, "plans.jsonl", check=profiles.checker())
    assert not record.ok and record.resources == []
    assert len(record.errors) == 1
    assert record.errors[0].startswith("CarePlan: hub-CarePlan: CarePlan.intent")


def test_an_expression_of_literals_and_globals_is_checked_when_the_mapping_loads(mappings, write):
    write(
        "slam-epr/scores.yaml",
        SCORES.replace(
            "valueDecimal: =list(s.v) | mean | round(2)", "valueDecimal: =concat($hub_id, 'x')"
        ),
    )
    with pytest.raises(MappingConfigError) as caught:
        mappings.get("slam-epr/scores")
    assert (
        "QuestionnaireResponse.extension.valueDecimal: 'https://fhir.hub.example/Idx' is not a number"
        in str(caught.value)
    )
