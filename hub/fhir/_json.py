"""FHIR JSON in and out, with orjson: about twice as fast as the standard library, on the
paths every stored and every returned resource takes."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson


def json_bytes(value: Any, *, pretty: bool = False) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
    except TypeError:
        # orjson stops at 64-bit integers; a FHIR decimal written as a huge integer is valid.
        text = json.dumps(value, ensure_ascii=False, indent=2 if pretty else None)
        return text.encode("utf-8")


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, text, numbers), several times faster than
    copy.deepcopy, which must allow for any Python object."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)  # beyond orjson: an integer over 64 bits


def json_text(value: Any) -> str:
    return json_bytes(value).decode("utf-8")


def parse_json_bytes(data: bytes | str) -> Any:
    """Parse JSON the hub wrote itself (stored resources). Numbers become int or float, as
    with the standard library, except that an integer beyond 64 bits becomes a float."""
    return orjson.loads(data)
