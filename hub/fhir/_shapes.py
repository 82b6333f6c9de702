"""Validation that remembers the shapes of the resources it has accepted.

A fhir.resources model checks two things: the structure (which elements, lists or single
values, which JSON types, choice elements, required elements, nulls inside lists: all
decided by the keys, the nesting and the JSON type of each value, and by `resourceType` where
a resource sits inside another) and each primitive value on its own (a `date` is a date, a
`code` has no stray spaces). A resource whose shape (its keys, nesting, JSON types and inner
`resourceType`s) is that of one the full validation accepted needs only the second: each of its
primitive values checked with the same pydantic type its model field declares. Sources send a
few shapes over and over, so the full model validation runs a handful of times per source
instead of for every resource; a shape not seen before, or a value that fails its check,
goes through the full validation (and its error messages) as before.
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Callable, Hashable
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, TypeAdapter, ValidationError

MAX_SHAPES = 4096
"""Shapes remembered at most; all are forgotten when full (a source sending ever new shapes
then costs what it cost without this)."""

_LEAF_TYPES = frozenset({str, int, float, bool})
_LIST = "[list]"  # a shape's marker for a JSON array (dicts are tuples of (key, shape) pairs)


class _Unshaped(Exception):
    """A value that is not plain JSON (a dict subclass, a date object): never remembered."""


Check = Callable[[Any], Any]


class ShapeMemory:
    """Shapes of accepted resources -> the check of each primitive value, in walk order."""

    def __init__(self, max_shapes: int = MAX_SHAPES) -> None:
        self._checks: dict[Hashable, tuple[Check, ...]] = {}
        self._max = max_shapes
        self._lock = threading.Lock()

    def accepts(self, resource: dict[str, Any]) -> bool:
        """Whether `resource` has a remembered shape and every primitive value passes its check.
        False says nothing about validity: validate it in full."""
        try:
            leaves: list[Any] = []
            checks = self._checks.get(_shape(resource, leaves))
        except _Unshaped:
            return False
        if checks is None:
            return False
        try:
            for check, value in zip(checks, leaves, strict=True):
                check(value)
        except ValidationError:
            return False
        return True

    def remember(self, model: type[BaseModel], resource: dict[str, Any]) -> None:
        """Remember the shape of `resource`, which `model` has just accepted in full."""
        checks: list[Check] = []
        try:
            shape = _shape(resource, [])
            _collect_checks(model, resource, checks)
        except _Unshaped:
            return
        with self._lock:
            if len(self._checks) >= self._max:
                self._checks.clear()
            self._checks[shape] = tuple(checks)


def _shape(node: Any, leaves: list[Any]) -> Hashable:
    """The shape of a JSON value; appends its non-null primitive values to `leaves`."""
    kind = type(node)
    if kind is dict:
        return tuple(
            [
                (key, value)
                if key == "resourceType" and type(value) is str
                else (key, _shape(value, leaves))
                for key, value in node.items()
            ]
        )
    if kind is list:
        return (_LIST, *[_shape(item, leaves) for item in node])
    if node is None:
        return None
    if kind not in _LEAF_TYPES:
        raise _Unshaped
    leaves.append(node)
    return kind


def _collect_checks(model: type[BaseModel], node: dict[str, Any], checks: list[Check]) -> None:
    """The check of each primitive value of `node` (valid for `model`), in `_shape`'s order."""
    fields = _fields(model)
    for key, value in node.items():
        if key == "resourceType" and type(value) is str:
            continue
        child_model, check = fields[key]
        for item in value if type(value) is list else (value,):
            if type(item) is dict:
                inner = item.get("resourceType")
                found = get_fhir_model_class(inner) if isinstance(inner, str) else child_model
                _collect_checks(found, item, checks)
            elif item is None:
                continue
            elif check is None:
                raise _Unshaped  # a value where an object belongs: leave it to the models
            else:
                checks.append(check)


@cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[Any, Check | None]]:
    """JSON key (alias or name: pydantic takes both) -> (the model of a complex element, or
    None; the check of one value of a primitive element, or None)."""
    found: dict[str, tuple[Any, Check | None]] = {}
    for name, field in model.model_fields.items():
        inner = _item_type(field.annotation)
        get_model = getattr(inner, "get_model_klass", None)
        spec = (get_model(), None) if get_model else (None, TypeAdapter(inner).validate_python)
        found[name] = spec
        if field.alias:
            found[field.alias] = spec
    return found


def _item_type(annotation: Any) -> Any:
    """The type of one value of a field: Optional and List taken off."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation
