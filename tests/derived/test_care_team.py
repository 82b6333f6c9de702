"""The CareTeam around a person: who the sources name, and how the team follows them."""

from __future__ import annotations

from typing import Any

from hub.derived import CARE_TEAM_SOURCE, CARE_TEAM_SYSTEM, derive
from tests.derived.care_model import (
    FOLA,
    consent,
    district_nursing_plan,
    episode,
    patient,
    related_person,
    support_plan,
    trust_plan,
)

P = "p-okafor"
FIRST_SEEN = "2026-04-12T09:30:00+00:00"
LATER = "2026-05-10T16:00:00+00:00"


def okafor(**changes: Any) -> list[dict[str, Any]]:
    """Someone every source knows (as Adaeze Okafor in the shared examples, plus a carer and a
    district nursing plan): the sources by name, replaced by `changes`."""
    sources = {
        "caseload": episode(P, "EP-7001", "caseload", "active", "2026-03-01"),
        "crisis": trust_plan(P, "CP-55120", "CRISIS", "active", "2026-03-01T09:00:00+00:00"),
        "nursing": district_nursing_plan(P, "DNCP-3310", "active", "2026-02-01"),
        "vcse_plan": support_plan(P, "LEW-MIND", "P-0032", "active", "2026-03-02", "J. Williams"),
        "vcse_consent": consent(P, "LEW-MIND", "C-000417", "2026-03-02"),
        "carer": related_person(P, "RV5A000123/reilly-mairead", "Reilly", "Mairead", "carer"),
    }
    sources.update(changes)
    return [s for s in sources.values() if s is not None]


PERSON = patient(
    P, "9990000018", "Okafor", "Adaeze", practice=("G85901", "Ladywell Medical Centre")
)


def team(written: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [r for r in written if r["resourceType"] == "CareTeam"]
    return found


def stored(resource: dict[str, Any], id: str = "ct-1") -> dict[str, Any]:
    """What the store gives back: the resource with an id and meta."""
    return {**resource, "id": id, "meta": {"versionId": "1", "lastUpdated": FIRST_SEEN}}


def rows(care_team: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each participant as (role, member, organisation, start, end, sources)."""
    found = []
    for p in care_team["participant"]:
        member = p["member"]
        organisation = p.get("onBehalfOf", {}).get("identifier", {}).get("value")
        sources = sorted(
            e["valueReference"].get("identifier", {}).get("value")
            or e["valueReference"]["reference"]
            for e in p["extension"]
            if e["url"] == CARE_TEAM_SOURCE
        )
        found.append(
            (
                p["role"][0]["coding"][0]["code"],
                member.get("display"),
                organisation,
                p["period"]["start"],
                p["period"].get("end"),
                sources,
            )
        )
    return found


def first_record() -> list[dict[str, Any]]:
    """Everything the first computation wrote, as stored: the team and the crisis-plan flag."""
    return [stored(r, f"d-{i}") for i, r in enumerate(derive(PERSON, okafor(), FIRST_SEEN))]


def test_the_team_names_everyone_the_sources_put_around_the_person() -> None:
    care_team = team(derive(PERSON, okafor(), FIRST_SEEN))

    assert care_team["identifier"] == [{"system": CARE_TEAM_SYSTEM, "value": P}]
    assert care_team["subject"] == {"reference": f"Patient/{P}"}
    assert care_team["status"] == "active"
    assert care_team["name"] == "Team around the person"
    assert rows(care_team) == [
        # One participant for the care coordinator the episode and the crisis plan both name,
        # from the earlier of the two.
        ("care-coordinator", "Kwame Mensah", "RV5", "2026-03-01", None, ["CP-55120", "EP-7001"]),
        (
            "mental-health-team",
            "North Central Lewisham 24/7",
            None,
            "2026-03-01",
            None,
            ["EP-7001"],
        ),
        # The Patient says nothing of since when: from when the hub first saw it.
        ("gp-practice", "Ladywell Medical Centre", None, FIRST_SEEN, None, [f"Patient/{P}"]),
        ("lead-nurse", "A. Brown RN", "RJ2", "2026-02-01", None, ["DNCP-3310"]),
        ("vcse-worker", "J. Williams", "LEW-MIND", "2026-03-02", None, ["C-000417", "P-0032"]),
        ("carer", "Mairead Reilly", None, FIRST_SEEN, None, ["RV5A000123/reilly-mairead"]),
    ]
    by_role = {p["role"][0]["coding"][0]["code"]: p for p in care_team["participant"]}
    assert by_role["care-coordinator"]["member"] == {
        "type": "Practitioner",
        "identifier": {"system": "https://fhir.hub.example/Id/RV5/staff", "value": "C1234567"},
        "display": "Kwame Mensah",
    }
    assert by_role["carer"]["member"]["type"] == "RelatedPerson"
    # R4 (ctm-1): onBehalfOf only beside a Practitioner.
    assert "onBehalfOf" not in by_role["gp-practice"]
    assert "onBehalfOf" not in by_role["carer"]


def test_recomputing_from_the_same_sources_writes_nothing_even_later() -> None:
    written = first_record()

    assert sorted(r["resourceType"] for r in written) == ["CareTeam", "Flag"]
    assert derive(PERSON, [*okafor(), *written], FIRST_SEEN) == []
    assert derive(PERSON, [*okafor(), *written], LATER) == []


def test_start_dates_are_kept_from_the_stored_team_when_a_source_redates_itself() -> None:
    redated = episode(P, "EP-7001", "caseload", "active", "2026-03-20")

    assert derive(PERSON, [*okafor(caseload=redated), *first_record()], LATER) == []


def test_a_participant_whose_source_ends_is_ended_on_that_date_and_kept() -> None:
    finished = episode(P, "EP-7001", "caseload", "finished", "2026-03-01", "2026-04-20")
    crisis_over = trust_plan(P, "CP-55120", "CRISIS", "completed", "2026-03-01T09:00:00+00:00")
    nursing_done = district_nursing_plan(P, "DNCP-3310", "completed", "2026-02-01")
    sources = okafor(caseload=finished, crisis=crisis_over, nursing=nursing_done)

    written = derive(PERSON, [*sources, *first_record()], LATER)
    changed = team(written)

    assert changed["id"] == "d-0"
    assert [
        r for r in rows(changed) if r[0] in ("care-coordinator", "mental-health-team", "lead-nurse")
    ] == [
        # Ended on the episode's end, the one date its sources give.
        (
            "care-coordinator",
            "Kwame Mensah",
            "RV5",
            "2026-03-01",
            "2026-04-20",
            ["CP-55120", "EP-7001"],
        ),
        (
            "mental-health-team",
            "North Central Lewisham 24/7",
            None,
            "2026-03-01",
            "2026-04-20",
            ["EP-7001"],
        ),
        # A completed district nursing plan does not say when: from when the hub learnt it.
        ("lead-nurse", "A. Brown RN", "RJ2", "2026-02-01", LATER, ["DNCP-3310"]),
    ]
    assert len(changed["participant"]) == 6
    # The crisis-plan flag ended in the same write; stored, they are all the sources make.
    assert sorted(r["id"] for r in written) == ["d-0", "d-1"]
    now_stored = [stored(r, r["id"]) for r in written]
    assert derive(PERSON, [*sources, *now_stored], "2026-06-01T00:00:00+00:00") == []


def test_the_vcse_worker_leaves_the_team_when_consent_is_withdrawn() -> None:
    withdrawn = consent(P, "LEW-MIND", "C-000417", "2026-03-02", withdrawn="2026-05-08")
    written = first_record()
    before = team(written)

    (changed,) = derive(PERSON, [*okafor(vcse_consent=withdrawn), *written], LATER)

    vcse = [r for r in rows(changed) if r[0] == "vcse-worker"]
    assert vcse == [
        (
            "vcse-worker",
            "J. Williams",
            "LEW-MIND",
            "2026-03-02",
            "2026-05-08",
            ["C-000417", "P-0032"],
        )
    ]
    others = [
        p for p in changed["participant"] if p["role"][0]["coding"][0]["code"] != "vcse-worker"
    ]
    assert others == [
        p for p in before["participant"] if p["role"][0]["coding"][0]["code"] != "vcse-worker"
    ]


def test_a_vcse_plan_without_consent_to_share_never_puts_its_worker_in_the_team() -> None:
    # As Kwabena Asante: a housing worker's plan, and no consent (or one never active).
    asante = patient("p-asante", "9990000050", "Asante", "Kwabena", practice=None)
    housing = support_plan("p-asante", "CATFORD-HSG", "HP-1", "active", "2026-03-16", "R. Khan")
    refused = consent("p-asante", "CATFORD-HSG", "H-2201", "2026-03-15", withdrawn="2026-03-15")

    assert derive(asante, [housing], FIRST_SEEN) == []
    assert derive(asante, [housing, refused], FIRST_SEEN) == []

    with_gp = patient("p-asante", "9990000050", "Asante", "Kwabena")
    (care_team,) = derive(with_gp, [housing, refused], FIRST_SEEN)
    assert [r[0] for r in rows(care_team)] == ["gp-practice"]


def test_a_new_care_coordinator_on_the_same_episode_takes_over_from_then() -> None:
    only_episode = [episode(P, "EP-7001", "caseload", "active", "2026-03-01")]
    before = stored(team(derive(PERSON, only_episode, FIRST_SEEN)))
    handed_over = [episode(P, "EP-7001", "caseload", "active", "2026-03-01", care_manager=FOLA)]

    (changed,) = derive(PERSON, [*handed_over, before], LATER)

    coordinators = [r for r in rows(changed) if r[0] == "care-coordinator"]
    assert coordinators == [
        ("care-coordinator", "Kwame Mensah", "RV5", "2026-03-01", LATER, ["EP-7001"]),
        ("care-coordinator", "Fola Adebayo", "RV5", LATER, None, ["EP-7001"]),
    ]


def test_someone_who_comes_back_after_leaving_gets_a_new_period_and_the_old_one_stays() -> None:
    carer = related_person(P, "RV5A000123/reilly-mairead", "Reilly", "Mairead", "carer")
    no_longer = {**carer, "active": False}
    first = stored(team(derive(PERSON, [carer], FIRST_SEEN)))
    ended = stored(team(derive(PERSON, [no_longer, first], LATER)))

    (back,) = derive(PERSON, [carer, ended], "2026-06-01T00:00:00+00:00")

    carers = [r for r in rows(back) if r[0] == "carer"]
    assert carers == [
        ("carer", "Mairead Reilly", None, FIRST_SEEN, LATER, ["RV5A000123/reilly-mairead"]),
        (
            "carer",
            "Mairead Reilly",
            None,
            "2026-06-01T00:00:00+00:00",
            None,
            ["RV5A000123/reilly-mairead"],
        ),
    ]


def test_a_change_of_gp_practice_ends_the_old_practice_and_starts_the_new() -> None:
    before = stored(team(derive(PERSON, [], FIRST_SEEN)))
    moved = patient(
        P, "9990000018", "Okafor", "Adaeze", practice=("G85902", "Brockley Road Surgery")
    )

    (changed,) = derive(moved, [before], LATER)

    assert [r[:5] for r in rows(changed)] == [
        ("gp-practice", "Ladywell Medical Centre", None, FIRST_SEEN, LATER),
        ("gp-practice", "Brockley Road Surgery", None, LATER, None),
    ]


def test_a_membership_keeps_the_team_around_a_member_without_a_care_coordinator() -> None:
    # As Thomas Reilly: the caseload ended with discharge into membership.
    sources = [
        episode(P, "EP-6001", "caseload", "finished", "2025-10-01", "2026-04-06"),
        episode(P, "EP-6002", "membership", "active", "2026-04-06", care_manager=None),
    ]

    care_team = team(derive(PERSON, sources, FIRST_SEEN))

    assert [r[:5] for r in rows(care_team)] == [
        # Never put in the team while the caseload was open here: not written as history now.
        ("mental-health-team", "North Central Lewisham 24/7", None, "2026-04-06", None),
        ("gp-practice", "Ladywell Medical Centre", None, FIRST_SEEN, None),
    ]
