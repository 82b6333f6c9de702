"""A record that refers to a resource another source owns, whichever arrives first.

A district nursing pathway is based on the trust's care plan (found by its business
identifier). When the pathway comes first, a placeholder stands in for the trust's plan, and
the trust's own record replaces it when it arrives: one CarePlan with that identifier, the same
id throughout, so the pathway's `basedOn` never needs rewriting. Real parts: the embedded store,
the hub state on SQLite and PostgreSQL, the repository's mappings plus one of the test's own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline._workers import (
    HUB_ID,
    MAPPINGS,
    Pipeline,
    example,
    hl7_messages,
    hub_settings,
    open_parts,
)

PATHWAYS = """\
description: test pathways based on the trust's care plans
format: csv
organisation: RJ2
record_id: =care_plan_id
timestamp: =updated | datetime
order_by: =nhs_number
let:
  patient: =reference('Patient', 'https://fhir.nhs.uk/Id/nhs-number', nhs_number | required)
resources:
  - id: trust-plan
    type: CarePlan
    when: =epr_plan_id
    placeholder: true
    key:
      system: =concat($hub_id, '/RV5/careplan')
      value: =epr_plan_id
    set:
      status: unknown
      intent: plan
      subject: =$patient
  - id: pathway
    type: CarePlan
    key:
      system: =concat($hub_id, '/RJ2/careplan')
      value: =care_plan_id
    set:
      status: active
      intent: plan
      title: =title
      subject: =$patient
      basedOn: [=ref('trust-plan')]
"""
HEADER = "care_plan_id,nhs_number,epr_plan_id,title,updated\r\n"
ADT = hl7_messages(example("slam-epr/examples/adt.hl7"))
THOMAS_A01 = ADT[2]
CAREPLANS = example("slam-epr/examples/careplans.jsonl").splitlines(keepends=True)
S117_LINE = next(line for line in CAREPLANS if b'"CP-60001"' in line)
TRUST = f"{HUB_ID}/RV5/careplan"
RJ2 = f"{HUB_ID}/RJ2/careplan"


def pathway(title: str = "Depot pathway", updated: str = "2026-03-02T09:00:00Z") -> bytes:
    return f"{HEADER}DN-9001,9990000026,CP-60001,{title},{updated}\r\n".encode()


@pytest.fixture
def pipeline(tmp_path: Path, state_url: str) -> Iterator[Pipeline]:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    (mappings / "test").mkdir()
    (mappings / "test" / "pathways.yaml").write_text(PATHWAYS, encoding="utf-8")
    settings = hub_settings(tmp_path / "data", state_url, mappings_dir=mappings)
    running = Pipeline(open_parts(settings))
    running.add("slam-epr/adt", THOMAS_A01, "adt.hl7")
    assert [status for _, status in running.run()] == ["applied"]
    try:
        yield running
    finally:
        running.close()


def test_a_pathway_before_the_trust_plan_stands_one_in_that_the_trust_plan_replaces(
    pipeline: Pipeline,
) -> None:
    pipeline.add("test/pathways", pathway(), "pathways.csv")
    assert [status for _, status in pipeline.run()] == ["applied"]
    stand_in = pipeline.one("CarePlan", TRUST, "CP-60001")
    assert stand_in["status"] == "unknown"
    based_on = pipeline.one("CarePlan", RJ2, "DN-9001")["basedOn"]
    assert based_on == [{"reference": f"CarePlan/{stand_in['id']}"}]

    pipeline.add("slam-epr/careplans", S117_LINE, "careplans.jsonl")
    assert [status for _, status in pipeline.run()] == ["applied"]
    trust_plan = pipeline.one("CarePlan", TRUST, "CP-60001")
    assert trust_plan["id"] == stand_in["id"]
    assert trust_plan["status"] == "active" and trust_plan["meta"]["versionId"] == "2"
    # A later change to the pathway leaves the trust's plan as the trust sent it.
    pipeline.add("test/pathways", pathway("Depot pathway (fortnightly)", "2026-03-09T09:00:00Z"))
    assert [status for _, status in pipeline.run()] == ["applied"]
    assert pipeline.one("CarePlan", TRUST, "CP-60001") == trust_plan
    changed = pipeline.one("CarePlan", RJ2, "DN-9001")
    assert changed["title"] == "Depot pathway (fortnightly)"
    assert changed["basedOn"] == [{"reference": f"CarePlan/{trust_plan['id']}"}]


def test_a_pathway_after_the_trust_plan_is_based_on_it_and_changes_nothing_of_it(
    pipeline: Pipeline,
) -> None:
    pipeline.add("slam-epr/careplans", S117_LINE, "careplans.jsonl")
    pipeline.run()
    trust_plan = pipeline.one("CarePlan", TRUST, "CP-60001")

    [team] = pipeline.search("CareTeam")
    pipeline.add("test/pathways", pathway(), "pathways.csv")
    assert [status for _, status in pipeline.run()] == ["applied"]
    assert pipeline.one("CarePlan", TRUST, "CP-60001") == trust_plan
    based_on = pipeline.one("CarePlan", RJ2, "DN-9001")["basedOn"]
    assert based_on == [{"reference": f"CarePlan/{trust_plan['id']}"}]
    # The placeholder the pathway carried changed nothing, not even what the team around the
    # person is worked out from: the trust plan's care coordinator is still there.
    assert pipeline.search("CareTeam") == [team]
    roles = {p["role"][0]["coding"][0]["code"]: p for p in team["participant"]}
    assert "end" not in roles["care-coordinator"]["period"]

    # Sent again in a later export, unchanged: applied (its own Provenance says so), and
    # nothing else is written.
    before = pipeline.versions()
    [resent] = pipeline.add("test/pathways", pathway(updated="2026-03-03T09:00:00Z"))
    assert pipeline.run() == [(resent, "applied")]
    assert pipeline.versions() == {**before, ("Provenance", pipeline.provenance_id(resent)): 1}
