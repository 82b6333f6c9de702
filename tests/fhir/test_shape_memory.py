"""The store's validation remembers the shapes of accepted resources and then checks only
their primitive values (hub/fhir/_shapes.py). It must say exactly what the fhir.resources
models say: checked here against them, for every resource the mappings' worked examples
produce and for each of those with one primitive value replaced by something else of the same
JSON type (a bad date, an empty string, a code with a space...), which keeps the shape."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from hub.fhir import InvalidResource, validate_resource
from hub.fhir._json_types import json_type_errors
from hub.fhir._shapes import ShapeMemory

ROOT = Path(__file__).resolve().parents[2]

STRINGS = ["", " ", "two words", " padded ", "2026-13-45", "2026-02-03", "not a date", "\x01"]
NUMBERS: list[Any] = [0, -1, 2**31, 2**40, 1.5, -0.0]


def example_resources() -> list[dict[str, Any]]:
    """One resource of each shape the worked examples produce."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(ROOT.glob("mappings/*/examples/*.expected.json")):
        for record in json.loads(path.read_text())["records"]:
            for resource in record.get("resources", []):
                found.setdefault(json.dumps(skeleton(resource)), resource)
    return list(found.values())


def skeleton(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: v if k == "resourceType" else skeleton(v) for k, v in node.items()}
    if isinstance(node, list):
        return [skeleton(item) for item in node]
    return type(node).__name__


def models_accept(resource: dict[str, Any]) -> bool:
    """The verdict of the fhir.resources models (and the JSON type check beside them)."""
    model = get_fhir_model_class(resource["resourceType"])
    try:
        instance = model.model_validate(resource)
    except (ValidationError, KeyError):
        return False
    return not json_type_errors(resource, instance, resource["resourceType"])


def leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "resourceType":
                yield from leaf_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from leaf_paths(item, (*path, index))
    elif node is not None:
        yield path


def replaced(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    node = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def same_type_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return [n for n in NUMBERS if type(n) is type(value)]
    return STRINGS


EXAMPLES = example_resources()


def test_the_examples_cover_every_resource_type_the_mappings_write() -> None:
    types = {r["resourceType"] for r in EXAMPLES}
    assert {"Patient", "Encounter", "CarePlan", "QuestionnaireResponse", "Consent"} <= types


@pytest.mark.parametrize(
    "resource", EXAMPLES, ids=[f"{r['resourceType']}-{i}" for i, r in enumerate(EXAMPLES)]
)
def test_a_remembered_shape_gives_the_models_verdict_for_every_value(
    resource: dict[str, Any],
) -> None:
    memory = ShapeMemory()
    assert not memory.accepts(resource), "nothing is known before a full validation"
    assert models_accept(resource)
    memory.remember(get_fhir_model_class(resource["resourceType"]), resource)
    assert memory.accepts(resource)
    disagreements, verdicts = [], set()
    for path in leaf_paths(resource):
        node: Any = resource
        for step in path:
            node = node[step]
        for value in same_type_values(node):
            mutant = replaced(resource, path, value)
            verdict = models_accept(mutant)
            verdicts.add(verdict)
            if memory.accepts(mutant) != verdict:
                disagreements.append((path, value, verdict))
    assert disagreements == []
    assert verdicts == {True, False}, "the changes tried include good and bad values"


def test_another_shape_is_not_accepted_on_the_strength_of_a_remembered_one() -> None:
    memory = ShapeMemory()
    patient = {"resourceType": "Patient", "active": True, "birthDate": "2001-02-03"}
    memory.remember(get_fhir_model_class("Patient"), patient)
    assert not memory.accepts({**patient, "active": "true"})  # another JSON type
    assert not memory.accepts({**patient, "gender": "female"})  # another key
    assert not memory.accepts({**patient, "birthDate": ["2001-02-03"]})  # a list
    assert not memory.accepts({**patient, "resourceType": "Person"})


def test_a_contained_resource_is_checked_as_its_own_type() -> None:
    memory = ShapeMemory()
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "#p"},
        "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "2001-02-03"}],
    }
    memory.remember(get_fhir_model_class("CarePlan"), plan)
    bad_date = copy.deepcopy(plan)
    bad_date["contained"][0]["birthDate"] = "2001-02-30"
    assert not memory.accepts(bad_date)
    assert not models_accept(bad_date)


def test_validate_resource_still_names_what_is_wrong_once_the_shape_is_known() -> None:
    good = {"resourceType": "Patient", "birthDate": "2001-02-03"}
    validate_resource(good)
    validate_resource(good)  # remembered now
    with pytest.raises(InvalidResource) as caught:
        validate_resource({"resourceType": "Patient", "birthDate": "2001-02-30"})
    assert "Patient.birthDate" in str(caught.value.outcome())


def test_a_string_where_an_object_belongs_is_refused() -> None:
    """The models read a string as the JSON of an object; FHIR JSON has the object."""
    with pytest.raises(InvalidResource) as caught:
        validate_resource({"resourceType": "Patient", "maritalStatus": '{"text": "single"}'})
    assert "Patient.maritalStatus: expected an object" in str(caught.value.outcome())


def test_memory_is_bounded() -> None:
    memory = ShapeMemory(max_shapes=2)
    model = get_fhir_model_class("Patient")
    shapes = [{"resourceType": "Patient", key: True} for key in ("active", "deceasedBoolean")]
    shapes.append({"resourceType": "Patient", "gender": "female"})
    for shape in shapes:
        memory.remember(model, shape)
    assert memory.accepts(shapes[2])
    assert not memory.accepts(shapes[0])  # forgotten when the memory filled up


def test_a_value_where_an_object_belongs_is_never_remembered() -> None:
    memory = ShapeMemory()
    odd = {"resourceType": "Patient", "maritalStatus": '{"text": "single"}'}
    memory.remember(get_fhir_model_class("Patient"), odd)
    assert not memory.accepts(odd)
