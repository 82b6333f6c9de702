"""Worked examples: an input file beside the FHIR it must produce, run by `hub mappings test`."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._mapping import Checker, MappingSet
from ._yaml import MappingConfigError

EXPECTED_SUFFIX = ".expected.json"


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    expected_file: Path
    mapping: str
    passed: bool
    diff: str = ""  # a unified diff, expected -> actual, when it did not pass


def example_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{EXPECTED_SUFFIX}") if p.parent.name == "examples")


def produce(
    mappings: MappingSet, name: str, input_file: Path, check: Checker | None
) -> dict[str, Any]:
    """What a mapping makes of an input file, in the shape of an expected file."""
    mapping = mappings.get(name)
    with input_file.open("rb") as stream:
        records = [r.summary() for r in mapping.read(stream, input_file.name, check=check)]
    return {"mapping": name, "records": records}


def run_example(
    mappings: MappingSet, expected_file: Path, check: Checker | None, *, accept: bool = False
) -> ExampleOutcome:
    input_file = expected_file.with_name(expected_file.name.removesuffix(EXPECTED_SUFFIX))
    display = mappings.display(expected_file)
    try:
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        name = expected["mapping"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MappingConfigError(display, None, "", f"not an expected-output file: {exc}") from None
    if not input_file.is_file():
        raise MappingConfigError(display, None, "", f"its input {input_file.name} is missing")
    actual = produce(mappings, name, input_file, check)
    if actual == expected:
        return ExampleOutcome(expected_file, name, True)
    if accept:
        expected_file.write_text(dumps(actual), encoding="utf-8")
        return ExampleOutcome(expected_file, name, True)
    diff = difflib.unified_diff(
        dumps(expected).splitlines(),
        dumps(actual).splitlines(),
        f"{display} (expected)",
        f"{mappings.display(input_file)} mapped by {name} (actual)",
        lineterm="",
    )
    return ExampleOutcome(expected_file, name, False, "\n".join(diff))


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
