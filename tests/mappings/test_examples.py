"""`hub mappings test` as part of the suite: every worked example in mappings/**/examples/."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.mapping import example_files, run_example
from tests.mappings._mapped import CHECK, MAPPINGS

_check = CHECK


def test_every_mapping_is_well_formed():
    assert [str(problem) for problem in MAPPINGS.check()] == []


def test_every_mapping_has_a_worked_example():
    covered = {run_example(MAPPINGS, f, _check).mapping for f in example_files(MAPPINGS.root)}
    assert set(MAPPINGS.names()) - covered == set()


@pytest.mark.parametrize(
    "expected", example_files(MAPPINGS.root), ids=lambda p: str(p.relative_to(MAPPINGS.root))
)
def test_worked_example_gives_exactly_its_expected_fhir(expected: Path):
    outcome = run_example(MAPPINGS, expected, _check)
    assert outcome.passed, outcome.diff
