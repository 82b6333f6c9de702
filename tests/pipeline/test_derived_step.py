"""The derived step in the pipeline: the CareTeam around a person is written in the transaction
of the record that changes it, once per person, and never for a record that changes none of
its sources; a merge ends what summarised the retired Patient.

Real parts: the embedded store, the hub state on SQLite and PostgreSQL, the repository's
mappings and the contract's example ADT feed.
"""

from __future__ import annotations

from tests.pipeline._workers import (
    MRN,
    Pipeline,
    example,
    hl7_messages,
)

ADT = hl7_messages(example("slam-epr/examples/adt.hl7"))
ADAEZE_A04, ADAEZE_AGAIN = ADT[0], ADT[1]
DANIEL = [m for m in ADT if b"RV5A000777" in m or b"RV5A000456" in m]  # A28, A28, A40


def _teams(pipeline: Pipeline) -> dict[str, dict]:
    return {team["subject"]["reference"]: team for team in pipeline.search("CareTeam")}


def test_a_contact_that_changes_no_source_of_the_team_leaves_it_as_it_was(
    pipeline: Pipeline,
) -> None:
    pipeline.add("slam-epr/adt", ADAEZE_A04, "adt.hl7")
    pipeline.run()
    [team] = _teams(pipeline).values()
    assert [p["role"][0]["coding"][0]["code"] for p in team["participant"]] == ["gp-practice"]

    pipeline.add("slam-epr/adt", ADAEZE_AGAIN, "adt.hl7")  # her second contact, same PID
    assert [status for _, status in pipeline.run()] == ["applied"]
    assert _teams(pipeline) == {team["subject"]["reference"]: team}  # not even a new version


def test_a_merge_ends_the_team_of_the_retired_patient_and_keeps_the_survivors(
    pipeline: Pipeline,
) -> None:
    pipeline.add("slam-epr/adt", b"".join(DANIEL), "adt.hl7")
    assert [status for _, status in pipeline.run()] == ["applied"] * 3
    survivor = pipeline.one("Patient", MRN, "RV5A000456")
    retired = next(p for p in pipeline.search("Patient") if p["id"] != survivor["id"])
    teams = _teams(pipeline)
    assert set(teams) == {f"Patient/{survivor['id']}", f"Patient/{retired['id']}"}
    [practice] = teams[f"Patient/{survivor['id']}"]["participant"]
    assert "end" not in practice["period"]
    # Not re-pointed to the survivor (who would then have two teams), but ended.
    [ended] = teams[f"Patient/{retired['id']}"]["participant"]
    assert ended["period"]["end"]
