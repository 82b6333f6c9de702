"""The hub's own search parameters: SearchParameter resources in profiles/ (what a FHIR server
such as HAPI is given by `hub mappings publish`) and the rows of search-parameters.yaml (what the
embedded store indexes) must say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hub.store import SearchParameterRegistry

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((ROOT / "profiles" / "SearchParameter").glob("*.json"))
TABLE = yaml.safe_load((ROOT / "hub" / "store" / "search-parameters.yaml").read_text("utf-8"))


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_hub_defines_legal_status_and_referral_source():
    assert [path.stem for path in DEFINITIONS] == [
        "Encounter-legal-status",
        "EpisodeOfCare-referral-source",
    ]


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.stem)
def test_each_search_parameter_in_profiles_is_a_row_of_the_table(path: Path):
    definition = json.loads(path.read_text("utf-8"))
    (row,) = [r for r in TABLE["search_parameters"] if r["code"] == definition["code"]]
    assert (row["base"], row["type"]) == (definition["base"], definition["type"])
    assert _words(row["expression"]) == _words(definition["expression"])
    registry = SearchParameterRegistry.default()
    for base in definition["base"]:
        assert registry.get(base, definition["code"]) is not None
