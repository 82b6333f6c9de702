"""FHIR JSON types of primitive values, checked against the fhir.resources models.

The models coerce: `"active": "yes"` becomes True, `"multipleBirthInteger": "2"` becomes 2. FHIR
JSON is strict (boolean as true/false, integer and decimal as numbers, everything else as
strings), and the store keeps the JSON as sent, so each primitive's JSON type is checked here,
walking the JSON beside the model instance that validated it.
"""

from __future__ import annotations

import datetime
import decimal
import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel

_KIND_OF = {
    bool: "boolean",
    int: "integer",
    float: "decimal",
    decimal.Decimal: "decimal",
    str: "string",
    bytes: "string",
    datetime.date: "string",
    datetime.datetime: "string",
    datetime.time: "string",
}
_ACCEPTS = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "decimal": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
}
_JSON_NAME = {"boolean": "true or false", "integer": "a whole number", "decimal": "a number"}


def _kind(annotation: Any) -> tuple[str, bool]:
    """(`boolean` | `integer` | `decimal` | `string` | `object`, is a list) of a field type."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is list:
            is_list, annotation = True, typing.get_args(annotation)[0]
        else:
            break
    if isinstance(annotation, type):
        for base, kind in _KIND_OF.items():
            if issubclass(annotation, base):
                return kind, is_list
    # Complex types can make their model; the other primitives (url, uuid) are JSON strings.
    return ("object" if hasattr(annotation, "get_model_klass") else "string"), is_list


@cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[str, str, bool]]:
    """JSON name -> (attribute name, kind, is a list) for every element of a model."""
    found = {}
    for name, field in model.model_fields.items():
        if name.endswith("__ext") or name == "fhir_comments":
            continue
        kind, is_list = _kind(field.annotation)
        found[field.alias or name] = (name, kind, is_list)
    return found


def json_type_errors(data: dict[str, Any], instance: BaseModel, path: str) -> list[str]:
    """FHIRPaths (with what was expected) of primitives whose JSON type is wrong."""
    errors: list[str] = []
    _check(data, instance, path, errors)
    return errors


def _check(data: dict[str, Any], instance: BaseModel, path: str, errors: list[str]) -> None:
    fields = _fields(type(instance))
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None or value is None:
            continue  # resourceType, `_x` extension siblings: not elements of this model
        name, kind, is_list = spec
        if kind == "object":
            child = getattr(instance, name)
            if not is_list:
                _check_object(value, child, f"{path}.{key}", errors)
                continue
            for index, (item, element) in enumerate(zip(value, child or (), strict=False)):
                if item is not None:
                    _check_object(item, element, f"{path}.{key}[{index}]", errors)
            continue
        accepts = _ACCEPTS[kind]
        if not is_list:
            if not accepts(value):
                errors.append(_wrong(f"{path}.{key}", kind, value))
            continue
        for index, item in enumerate(value):
            if item is not None and not accepts(item):
                errors.append(_wrong(f"{path}.{key}[{index}]", kind, item))


def _check_object(value: Any, element: Any, path: str, errors: list[str]) -> None:
    # The models read a string as the JSON of an object: FHIR JSON has the object itself.
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object, got {value!r}")
    elif isinstance(element, BaseModel):
        _check(value, element, path, errors)


def _wrong(where: str, kind: str, value: Any) -> str:
    return f"{where}: expected {_JSON_NAME.get(kind, 'a string')}, got {value!r}"
