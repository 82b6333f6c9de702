"""Structural validation of R4 resources with the fhir.resources R4B models."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ._errors import InvalidResource, Issue
from ._json_types import json_type_errors
from ._shapes import ShapeMemory

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_SHAPES = ShapeMemory()
"""Shapes of the resources accepted so far in this process (see `_shapes`)."""


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def is_resource_type(name: str) -> bool:
    try:
        _model(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return name[:1].isupper()


def is_valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def _fhirpath(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    return path


def validate_resource(resource: Any, *, expected_type: str | None = None) -> str:
    """Check `resource` is a valid R4 resource; return its type or raise InvalidResource.

    The resource is not changed: what the client sent is what is stored.
    """
    if not isinstance(resource, dict):
        raise InvalidResource([Issue("error", "structure", "A resource must be a JSON object")])
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise InvalidResource(
            [
                Issue(
                    "error",
                    "structure",
                    f"Unknown or missing resourceType: {resource_type!r}",
                    ("resourceType",),
                )
            ]
        )
    if expected_type is not None and resource_type != expected_type:
        raise InvalidResource(
            [
                Issue(
                    "error",
                    "invalid",
                    f"resourceType is {resource_type} but the request is for {expected_type}",
                    ("resourceType",),
                )
            ]
        )
    rid = resource.get("id")
    if rid is not None and not (isinstance(rid, str) and is_valid_id(rid)):
        raise InvalidResource(
            [Issue("error", "value", f"Invalid resource id {rid!r}", (f"{resource_type}.id",))]
        )
    if _SHAPES.accepts(resource):
        return resource_type
    model = _model(resource_type)
    try:
        instance = model.model_validate(resource)
    except KeyError as exc:  # fhir.resources' lookup of a contained resource's unknown type
        raise InvalidResource(
            [Issue("error", "structure", f"Unknown resource type inside {resource_type}: {exc}")]
        ) from None
    except ValidationError as exc:
        raise InvalidResource(
            [
                Issue(
                    "error",
                    "structure" if err["type"] in {"extra_forbidden", "missing"} else "value",
                    f"{_fhirpath(resource_type, err['loc'])}: {err['msg']}",
                    (_fhirpath(resource_type, err["loc"]),),
                )
                for err in exc.errors(include_url=False)
            ]
        ) from None
    wrong = json_type_errors(resource, instance, resource_type)
    if wrong:
        raise InvalidResource(
            [Issue("error", "value", text, (text.partition(":")[0],)) for text in wrong]
        )
    _SHAPES.remember(model, resource)
    return resource_type
