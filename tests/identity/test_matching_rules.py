"""Finding the person: NHS number, source key, then demographics; never on weaker evidence."""

from __future__ import annotations

import pytest

from hub.identity import IdentityConflict, IdentityResolver, MatchQueue
from hub.identity._matching import MatchLevel, compare, decide
from hub.store import SQLiteStore
from tests.identity.conftest import (
    ADAEZE,
    CLIENT_REF,
    DAN,
    DANIEL,
    INVALID_NHS,
    MARISOL,
    MRN,
    NHS,
    THOMAS,
    Hub,
    patient,
)

VCSE_KEY = (CLIENT_REF, "C-000418")


def test_a_valid_nhs_number_finds_the_patient_whatever_else_differs(hub: Hub) -> None:
    epr = hub.record("slam-epr", (MRN, "RV5A000123"), ADAEZE, (NHS, "9990000018"))
    gp = hub.record("gp", (NHS, "9990000018"), ("Okafor", "Ada", "1985-03-14", None))
    assert (gp.patient_id, gp.matched_by, gp.created) == (epr.patient_id, "nhs-number", False)
    assert epr.matched_by == "new" and epr.created
    assert [p["id"] for p in hub.patients(MRN, "RV5A000123")] == [epr.patient_id]


def test_the_source_key_finds_the_patient_when_there_is_no_nhs_number(hub: Hub) -> None:
    first = hub.record("slam-epr", (MRN, "RV5A000777"), DAN)
    again = hub.record("slam-epr", (MRN, "RV5A000777"), DAN)
    assert (again.patient_id, again.matched_by) == (first.patient_id, "source-key")
    assert again.if_match == "1"


def test_certain_demographics_link_a_record_without_nhs_number(hub: Hub) -> None:
    epr = hub.record("slam-epr", (MRN, "RV5A000345"), MARISOL, (NHS, "9990000034"))
    spelt = ("Ortega Diaz", "MARISOL", "1990-07-21", "se64ru")
    vcse = hub.record("vcse", VCSE_KEY, spelt)
    assert (vcse.patient_id, vcse.matched_by, vcse.reviews) == (epr.patient_id, "demographics", [])
    assert [p["id"] for p in hub.patients(*VCSE_KEY)] == [epr.patient_id]
    assert [p["id"] for p in hub.patients(NHS, "9990000034")] == [epr.patient_id]


@pytest.mark.parametrize("postcode", ["SE13 7UW", None], ids=["different", "missing"])
def test_same_name_and_birth_date_without_the_same_postcode_goes_to_review(
    hub: Hub, queue: MatchQueue, postcode: str | None
) -> None:
    epr = hub.record("slam-epr", (NHS, "9990000034"), MARISOL)
    vcse = hub.record("vcse", VCSE_KEY, (*MARISOL[:3], postcode))
    assert vcse.created and vcse.patient_id != epr.patient_id
    (entry,) = queue.list()
    assert (entry.patient_id, entry.candidate_id) == (vcse.patient_id, epr.patient_id)
    assert (entry.status, entry.source) == ("open", "vcse")
    assert entry.evidence == {
        "family": "same",
        "given": "same",
        "birth_date": "same",
        "postcode": "different" if postcode else "missing",
    }


@pytest.mark.parametrize(
    "other",
    [
        DAN,
        ("Brookes", *DANIEL[1:]),
        (*DANIEL[:2], "1979-09-19", DANIEL[3]),
        (*DANIEL[:2], None, DANIEL[3]),
    ],
    ids=["given", "family", "birth-date", "no-birth-date"],
)
def test_anything_weaker_is_a_new_patient_and_no_review(
    hub: Hub, queue: MatchQueue, other: tuple
) -> None:
    first = hub.record("slam-epr", (NHS, "9990000077"), DANIEL)
    second = hub.record("slam-epr", (MRN, "RV5A000777"), other)
    assert second.created and second.patient_id != first.patient_id
    assert second.matched_by == "new" and queue.list() == []


def test_a_candidate_with_a_different_valid_nhs_number_is_never_a_match(
    hub: Hub, queue: MatchQueue
) -> None:
    first = hub.record("gp", (NHS, "9990000018"), ADAEZE)
    twin = hub.record("gp", (NHS, "9990000026"), ADAEZE)
    assert twin.created and twin.patient_id != first.patient_id
    assert queue.list() == []


def test_several_certain_candidates_go_to_review_not_to_either(hub: Hub, queue: MatchQueue) -> None:
    ids = [hub.record("slam-epr", (MRN, mrn), ADAEZE).patient_id for mrn in ("RV5A1", "RV5A2")]
    vcse = hub.record("vcse", (CLIENT_REF, "C-1"), ADAEZE)
    assert vcse.created and vcse.patient_id not in ids
    # (The second MRN was itself queued against the first: the EPR keeps them apart.)
    entries = [e for e in queue.list() if e.patient_id == vcse.patient_id]
    assert sorted(e.candidate_id for e in entries) == sorted(ids)
    assert all(e.reason == "2 candidates agree on everything" for e in entries)


def test_a_second_record_of_the_same_source_system_is_reviewed_not_linked(
    hub: Hub, queue: MatchQueue
) -> None:
    # The EPR keeps two MRNs apart: until it sends a merge (A40), a person decides.
    first = hub.record("slam-epr", (MRN, "RV5A000001"), ADAEZE)
    second = hub.record("slam-epr", (MRN, "RV5A000002"), ADAEZE)
    assert second.created and second.patient_id != first.patient_id
    (entry,) = queue.list()
    assert entry.candidate_id == first.patient_id
    assert entry.reason == "the candidate has another identifier from the same source system"


def test_an_invalid_nhs_number_is_kept_but_never_matched_on(hub: Hub) -> None:
    first = hub.record("slam-epr", (MRN, "RV5A000902"), THOMAS, (INVALID_NHS, "9990000019"))
    # Someone else with the same invalid number, also under the NHS system as a careless
    # sender might put it: no match on either.
    also = [(INVALID_NHS, "9990000019"), (NHS, "9990000019")]
    other = hub.record("slam-epr", (MRN, "RV5A000903"), DANIEL, *also)
    assert other.created and other.patient_id != first.patient_id
    kept = hub.store.read("Patient", first.patient_id)["identifier"]
    assert {"system": INVALID_NHS, "value": "9990000019"} in kept


def test_nhs_number_and_source_key_on_two_patients_are_merged(hub: Hub) -> None:
    # Dan was registered before he was traced; the GP knew him by NHS number already.
    gp = hub.record("gp", (NHS, "9990000077"), DANIEL)
    epr = hub.record("slam-epr", (MRN, "RV5A000777"), DAN)
    assert epr.patient_id != gp.patient_id
    traced = hub.record("slam-epr", (MRN, "RV5A000777"), DAN, (NHS, "9990000077"))
    assert (traced.patient_id, traced.matched_by) == (gp.patient_id, "nhs-number")
    assert [m.retired_id for m in traced.merges] == [epr.patient_id]
    assert [p["id"] for p in hub.patients(MRN, "RV5A000777")] == [gp.patient_id]
    assert hub.store.read("Patient", epr.patient_id)["active"] is False


def test_a_source_key_whose_patient_has_another_nhs_number_is_refused(hub: Hub) -> None:
    hub.record("slam-epr", (MRN, "RV5A000123"), ADAEZE, (NHS, "9990000018"))
    with pytest.raises(IdentityConflict) as refused:
        hub.record("slam-epr", (MRN, "RV5A000123"), ADAEZE, (NHS, "9990000026"))
    assert refused.value.status == 422
    assert "9990000026" not in str(refused.value)


def test_resolve_only_reads_the_store(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore
) -> None:
    hub.record("gp", (NHS, "9990000018"), ADAEZE)
    before = store.history("Patient").total
    incoming = patient(*ADAEZE, (CLIENT_REF, "C-1"))
    plan = resolver.resolve(incoming, (CLIENT_REF, "C-1"), source="vcse", source_time_ms=None)
    assert plan.matched_by == "demographics"
    assert store.history("Patient").total == before
    assert hub.patients(CLIENT_REF, "C-1") == []


def test_retired_patients_are_never_candidates(hub: Hub, queue: MatchQueue) -> None:
    gp = hub.record("gp", (NHS, "9990000077"), DANIEL)
    hub.record("slam-epr", (MRN, "RV5A000777"), DAN)
    traced = hub.record("slam-epr", (MRN, "RV5A000777"), DAN, (NHS, "9990000077"))
    assert len(traced.merges) == 1  # the retired Patient still says "Dan", as the survivor now does
    vcse = hub.record("vcse", (CLIENT_REF, "C-9"), DAN)
    assert (vcse.patient_id, vcse.matched_by) == (gp.patient_id, "demographics")
    assert queue.list() == []


def test_rules_are_read_top_down_and_need_every_field() -> None:
    ours = patient(*ADAEZE)
    assert compare(ours, {**patient(*ADAEZE), "id": "a"}, MRN).level is MatchLevel.CERTAIN
    no_postcode = {**patient(*ADAEZE[:3], None), "id": "b"}
    assert compare(ours, no_postcode, MRN).level is MatchLevel.UNCERTAIN
    other_given = {**patient("Okafor", "Ada", *ADAEZE[2:]), "id": "c"}
    assert compare(ours, other_given, MRN).level is MatchLevel.NONE
    assert decide([]).link is None and decide([]).reviews == []
