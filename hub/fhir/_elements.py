"""The shape of every FHIR R4 element, read from the fhir.resources R4B models.

The mapping engine checks the element names of a mapping against this when the mapping is
loaded (a typo is an error naming the file and line, not a resource rejected later), and uses
`is_list` and `kind` to shape and convert values.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from ._json_types import _kind


@dataclass(frozen=True, slots=True)
class ElementSpec:
    name: str
    kind: str  # boolean | integer | decimal | string | object
    is_list: bool
    type_name: str | None  # the complex type of an object element (HumanName, EncounterParticipant)


def _complex_type_name(annotation: Any) -> str | None:
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType, list):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            break
    name = getattr(annotation, "__name__", "")
    # fhir.resources names its field types `<Type>Type` (abc.HumanNameType).
    return name.removesuffix("Type") if name.endswith("Type") else None


@cache
def elements_of(type_name: str) -> dict[str, ElementSpec]:
    """JSON element name -> spec for a resource or datatype; KeyError for an unknown type."""
    try:
        model = get_fhir_model_class(type_name)
    except (KeyError, ValueError) as exc:
        raise KeyError(type_name) from exc
    found: dict[str, ElementSpec] = {}
    for name, field in model.model_fields.items():
        if name.endswith("__ext") or name in ("fhir_comments", "resource_type"):
            continue
        kind, is_list = _kind(field.annotation)
        type_of = _complex_type_name(field.annotation) if kind == "object" else None
        json_name = field.alias or name
        found[json_name] = ElementSpec(json_name, kind, is_list, type_of)
    return found


def unknown_element_message(type_name: str, name: str) -> str:
    """'Patient has no element familly (did you mean family?)'."""
    known = elements_of(type_name)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"{type_name} has no element {name!r}{hint}"
