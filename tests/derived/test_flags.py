"""The flags a record viewer shows first: raised by their sources, ended (never deleted) with
them, and saying where to look, never what is there."""

from __future__ import annotations

from typing import Any

from hub.derived import FLAG_CODE_SYSTEM, FLAG_SYSTEM, derive
from tests.derived.care_model import episode, patient, stay, trust_plan

P = "p-reilly"
PERSON = patient(P, "9990000026", "Reilly", "Thomas", practice=None)
FIRST_SEEN = "2026-04-12T09:30:00+00:00"
LATER = "2026-05-10T16:00:00+00:00"


def flags(resources: list[dict[str, Any]], at: str) -> list[dict[str, Any]]:
    """The Flags `derive` writes (the trust's plans and episodes also make a CareTeam, which
    tests/derived/test_care_team.py covers)."""
    return [r for r in derive(PERSON, resources, at) if r["resourceType"] == "Flag"]


def flag(written: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    found = [r for r in written if r["code"]["coding"][0]["code"] == code]
    assert len(found) <= 1
    return found[0] if found else None


def stored(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the store gives back after writing them: ids kept, a meta added."""
    return [
        {**r, "id": r.get("id", f"f-{i}"), "meta": {"versionId": "1"}}
        for i, r in enumerate(written)
    ]


def test_an_active_crisis_plan_raises_a_flag_that_says_where_to_look() -> None:
    plan = {
        **trust_plan(P, "CP-60009", "CRISIS", "active", "2026-03-01T09:00:00+00:00"),
        "title": "Early warning signs: stops sleeping, hears voices; call his sister",
    }

    (raised,) = flags([plan], FIRST_SEEN)

    assert raised["resourceType"] == "Flag"
    assert raised["identifier"] == [{"system": FLAG_SYSTEM, "value": f"{P}/crisis-plan"}]
    assert raised["status"] == "active"
    assert raised["subject"] == {"reference": f"Patient/{P}"}
    assert raised["period"] == {"start": "2026-03-01T09:00:00+00:00"}
    assert raised["code"]["coding"] == [
        {"system": FLAG_CODE_SYSTEM, "code": "crisis-plan", "display": "Crisis plan in place"}
    ]
    assert raised["code"]["text"] == "Crisis plan in place: see the trust's care plans (RV5)"
    assert "sleeping" not in raised["code"]["text"]


def test_a_crisis_plan_that_ends_ends_its_flag_and_a_new_one_raises_it_again() -> None:
    plan = trust_plan(P, "CP-60009", "CRISIS", "active", "2026-03-01T09:00:00+00:00")
    raised = stored(flags([plan], FIRST_SEEN))
    completed = {**plan, "status": "completed"}

    (ended,) = flags([completed, *raised], LATER)

    assert ended["id"] == raised[0]["id"]
    assert ended["status"] == "inactive"
    # The plan does not date its completion: ended when the hub learnt it.
    assert ended["period"] == {"start": "2026-03-01T09:00:00+00:00", "end": LATER}
    assert flags([completed, *stored([ended])], "2026-05-20T00:00:00+00:00") == []

    again = trust_plan(P, "CP-61000", "CRISIS", "active", "2026-06-02T08:00:00+00:00")
    (back,) = flags([completed, again, *stored([ended])], "2026-06-02T09:00:00+00:00")
    assert back["status"] == "active"
    assert back["period"] == {"start": "2026-06-02T08:00:00+00:00"}


def test_a_plan_that_is_not_a_crisis_plan_or_never_was_active_raises_nothing() -> None:
    support = trust_plan(P, "CP-60010", "SUPPORT", "active", "2026-03-01T09:00:00+00:00")
    old_crisis = trust_plan(P, "CP-50000", "CRISIS", "completed", "2025-01-01T09:00:00+00:00")

    assert flags([support, old_crisis], FIRST_SEEN) == []


def test_membership_lasts_through_caseload_episodes_and_ends_with_the_membership() -> None:
    # As Samira Haddad: a member who came back onto the caseload without a referral.
    membership = episode(P, "EP-5101", "membership", "active", "2025-11-01", care_manager=None)
    raised = stored(flags([membership], FIRST_SEEN))
    member = flag(raised, "member")
    assert member is not None
    assert member["period"] == {"start": "2025-11-01"}
    assert member["code"]["text"].startswith("Member of the 24/7 centre: ")

    back_on_caseload = episode(P, "EP-5102", "caseload", "active", "2026-04-10")
    written = flags([membership, back_on_caseload, *raised], LATER)
    assert written == []

    over = episode(
        P, "EP-5101", "membership", "finished", "2025-11-01", "2026-09-30", care_manager=None
    )
    ended = flag(flags([over, *raised], LATER), "member")
    assert ended is not None
    assert ended["status"] == "inactive"
    assert ended["period"] == {"start": "2025-11-01", "end": "2026-09-30"}


def test_detention_is_flagged_from_its_start_and_ended_when_the_status_becomes_informal() -> None:
    # As Marisol Ortega-Díaz: admitted under section 2, informal from the 16th, discharged.
    admitted = stay(
        P,
        "V0000505",
        "in-progress",
        "2026-04-09T04:30:00+01:00",
        legal_statuses=[("02", "2026-04-09T04:00:00+01:00", None)],
    )
    (raised,) = flags([admitted], "2026-04-09T04:30:00+01:00")
    assert raised["status"] == "active"
    assert raised["period"] == {"start": "2026-04-09T04:00:00+01:00"}
    assert raised["code"]["text"] == (
        "Detained under the Mental Health Act: see the legal status on the trust's current stay (RV5)"
    )
    assert "02" not in raised["code"]["text"] and "ection" not in raised["code"]["text"]

    informal = stay(
        P,
        "V0000505",
        "in-progress",
        "2026-04-09T04:30:00+01:00",
        legal_statuses=[
            ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
            ("01", "2026-04-16T10:00:00+01:00", None),
        ],
    )
    (ended,) = flags([informal, *stored([raised])], "2026-04-16T10:00:00+01:00")
    assert ended["status"] == "inactive"
    assert ended["period"] == {
        "start": "2026-04-09T04:00:00+01:00",
        "end": "2026-04-16T10:00:00+01:00",
    }

    discharged = stay(
        P,
        "V0000505",
        "finished",
        "2026-04-09T04:30:00+01:00",
        "2026-04-20T11:00:00+01:00",
        legal_statuses=[
            ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
            ("01", "2026-04-16T10:00:00+01:00", "2026-04-20T11:00:00+01:00"),
        ],
    )
    assert flags([discharged, *stored([ended])], "2026-04-20T11:00:00+01:00") == []


def test_one_detention_under_successive_sections_is_one_flag_from_the_first() -> None:
    sections = stay(
        P,
        "V0000600",
        "in-progress",
        "2026-04-01T22:00:00+01:00",
        legal_statuses=[
            ("20", "2026-04-01T21:00:00+01:00", "2026-04-02T15:00:00+01:00"),  # section 136
            ("02", "2026-04-02T15:00:00+01:00", "2026-04-29T12:00:00+01:00"),
            ("03", "2026-04-29T12:00:00+01:00", None),
        ],
    )

    (raised,) = flags([sections], LATER)

    assert raised["status"] == "active"
    assert raised["period"] == {"start": "2026-04-01T21:00:00+01:00"}


def test_a_status_left_open_on_a_stay_that_is_over_is_not_a_current_detention() -> None:
    # The current status is only ever on a stay in progress.
    old_stay = stay(
        P,
        "V0000400",
        "finished",
        "2025-01-01T10:00:00+00:00",
        "2025-02-01T10:00:00+00:00",
        legal_statuses=[("03", "2025-01-01T10:00:00+00:00", None)],
    )
    assert flags([old_stay], FIRST_SEEN) == []


def test_a_detention_ended_by_discharge_ends_on_the_discharge() -> None:
    detained = stay(
        P,
        "V0000505",
        "in-progress",
        "2026-04-09T04:30:00+01:00",
        legal_statuses=[("03", "2026-04-09T04:00:00+01:00", None)],
    )
    raised = stored(flags([detained], FIRST_SEEN))
    # A discharge that leaves the status without its own end: the stay's end is the end.
    discharged = {
        **detained,
        "status": "finished",
        "period": {"start": "2026-04-09T04:30:00+01:00", "end": "2026-05-01T12:00:00+01:00"},
    }

    (ended,) = flags([discharged, *raised], LATER)

    assert ended["period"]["end"] == "2026-05-01T12:00:00+01:00"
