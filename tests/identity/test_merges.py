"""Merges: one survivor, found by every identifier; everything that pointed at the retired
Patient points at the survivor; the merge is written in the caller's one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from hub.fhir import FhirError
from hub.identity import IdentityConflict, IdentityResolver, MergePlan
from hub.state import Database
from hub.store import SQLiteStore
from tests.identity.conftest import ADAEZE, CLIENT_REF, DAN, DANIEL, MRN, NHS, THOMAS, Hub

HUB_ID = "https://fhir.hub.example/Id"


def _about(patient_id: str) -> list[dict[str, Any]]:
    """One of each kind of resource that refers to a Patient, in each way it can."""
    me = {"reference": f"Patient/{patient_id}"}
    return [
        {
            "resourceType": "Encounter",
            "identifier": [{"system": f"{HUB_ID}/RV5/visit-number", "value": "V1"}],
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": me,
        },
        {
            "resourceType": "CarePlan",
            "identifier": [{"system": f"{HUB_ID}/RV5/careplan", "value": "CP1"}],
            "status": "active",
            "intent": "plan",
            "subject": me,
            "activity": [{"detail": {"status": "scheduled", "performer": [me]}}],
        },
        {
            "resourceType": "QuestionnaireResponse",
            "identifier": {"system": f"{HUB_ID}/LEW-MIND/swemwbs", "value": "Q1"},
            "status": "completed",
            "subject": me,
            "author": me,
        },
        {
            "resourceType": "Consent",
            "identifier": [{"system": f"{HUB_ID}/LEW-MIND/consent", "value": "K1"}],
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"code": "INFA"}]}],
            "patient": me,
        },
    ]


def _provenance(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"Patient/{patient_id}"}],
        "recorded": "2026-04-01T10:00:00Z",
        "agent": [{"who": {"display": "hub"}}],
    }


def _audit(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"code": "rest"},
        "recorded": "2026-04-01T10:00:00Z",
        "agent": [{"who": {"reference": f"Patient/{patient_id}"}, "requestor": True}],
        "source": {"observer": {"display": "hub"}},
    }


def _write(store: SQLiteStore, plan: MergePlan, db: Database) -> None:
    with db.transaction() as tx:
        store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": plan.entries})
        plan.record(tx)


def _two_records(hub: Hub) -> tuple[str, str]:
    """Daniel (traced, NHS number) and Dan (a duplicate MRN, never traced)."""
    daniel = hub.record("slam-epr", (MRN, "RV5A000456"), DANIEL, (NHS, "9990000077"), at=2_000)
    dan = hub.record("slam-epr", (MRN, "RV5A000777"), DAN, at=1_000)
    assert daniel.patient_id != dan.patient_id
    return daniel.patient_id, dan.patient_id


def test_a_merge_repoints_everything_and_leaves_one_patient_per_identifier(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore, state_db: Database
) -> None:
    survivor, retired = _two_records(hub)
    created = {r["resourceType"]: store.create(r).id for r in _about(retired)}
    provenance = store.create(_provenance(retired)).id
    audit = store.create(_audit(retired)).id

    plan = resolver.plan_merge(retired, survivor, reason="test")
    assert sorted(r["resourceType"] for r in plan.referrers) == sorted(created)
    _write(store, plan, state_db)

    for resource_type, resource_id in created.items():
        assert f"Patient/{retired}" not in str(store.read(resource_type, resource_id))
        assert f"Patient/{survivor}" in str(store.read(resource_type, resource_id))
    for param, resource_type in [
        ("subject", "Encounter"),
        ("patient", "Consent"),
        ("author", "QuestionnaireResponse"),
        ("performer", "CarePlan"),
    ]:
        found = store.search(resource_type, [(param, f"Patient/{survivor}")]).matches
        assert [r["id"] for r in found] == [created[resource_type]]
    # Where data came from, and the audit trail, stay as they were: they tell history.
    assert store.read("Provenance", provenance)["target"] == [{"reference": f"Patient/{retired}"}]
    assert store.read("AuditEvent", audit)["agent"][0]["who"] == {"reference": f"Patient/{retired}"}

    for system, value in [(MRN, "RV5A000777"), (MRN, "RV5A000456"), (NHS, "9990000077")]:
        assert [p["id"] for p in hub.patients(system, value)] == [survivor]
    old = store.read("Patient", retired)
    assert old["active"] is False and "identifier" not in old
    assert old["link"] == [{"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}]
    new = store.read("Patient", survivor)
    assert new["link"] == [{"other": {"reference": f"Patient/{retired}"}, "type": "replaces"}]
    assert {"system": MRN, "value": "RV5A000777", "use": "old"} in new["identifier"]
    assert new["name"][0]["given"] == ["Daniel"]  # the retired record's name was older


def test_merge_entries_carry_the_versions_read(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore, state_db: Database
) -> None:
    survivor, retired = _two_records(hub)
    plan = resolver.plan_merge(retired, survivor, reason="test")
    assert [e["request"].get("ifMatch") for e in plan.entries] == ['W/"1"', 'W/"1"']
    store.update({**store.read("Patient", survivor), "gender": "male"})  # someone was quicker
    with pytest.raises(FhirError) as conflict:
        _write(store, plan, state_db)
    assert conflict.value.status == 412
    assert store.read("Patient", retired)["active"] is True  # nothing half-written


def test_an_a40_merges_the_duplicate_mrn_in_the_records_own_plan(
    hub: Hub, store: SQLiteStore
) -> None:
    survivor, retired = _two_records(hub)
    encounter = store.create(_about(retired)[0]).id
    daniel = ((MRN, "RV5A000456"), DANIEL, (NHS, "9990000077"))
    a40 = hub.record("slam-epr", *daniel, at=3_000, retired=((MRN, "RV5A000777"),))
    assert (a40.patient_id, [m.retired_id for m in a40.merges]) == (survivor, [retired])
    assert [p["id"] for p in hub.patients(MRN, "RV5A000777")] == [survivor]
    assert store.read("Encounter", encounter)["subject"] == {"reference": f"Patient/{survivor}"}


def test_a_resource_the_record_writes_itself_is_not_repointed_twice(
    hub: Hub, store: SQLiteStore
) -> None:
    _, retired = _two_records(hub)
    visit = _about(retired)[0]
    store.create(visit)
    daniel = ((MRN, "RV5A000456"), DANIEL, (NHS, "9990000077"))
    cancelled = {**visit, "status": "cancelled"}
    a40 = hub.record("slam-epr", *daniel, retired=((MRN, "RV5A000777"),), others=(cancelled,))
    (written,) = store.search("Encounter", [("subject", f"Patient/{a40.patient_id}")]).matches
    assert written["status"] == "cancelled"


def test_a_retired_identifier_nobody_holds_is_kept_as_old(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore, state_db: Database
) -> None:
    survivor, _ = _two_records(hub)
    plan = resolver.merge_by_identifier(retired=(MRN, "RV5A000999"), surviving_id=survivor)
    assert plan is not None and plan.retired_id is None
    _write(store, plan, state_db)
    assert [p["id"] for p in hub.patients(MRN, "RV5A000999")] == [survivor]
    assert {"system": MRN, "value": "RV5A000999", "use": "old"} in store.read("Patient", survivor)[
        "identifier"
    ]
    assert resolver.merge_by_identifier(retired=(MRN, "RV5A000999"), surviving_id=survivor) is None


def test_merge_by_identifier_merges_its_holder(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore, state_db: Database
) -> None:
    survivor, retired = _two_records(hub)
    plan = resolver.merge_by_identifier(retired=(MRN, "RV5A000777"), surviving_id=survivor)
    assert plan is not None and (plan.retired_id, plan.surviving_id) == (retired, survivor)
    _write(store, plan, state_db)
    assert [p["id"] for p in hub.patients(MRN, "RV5A000777")] == [survivor]


def test_survivorship_clocks_move_to_the_survivor(
    hub: Hub, resolver: IdentityResolver, store: SQLiteStore, state_db: Database
) -> None:
    survivor, retired = _two_records(hub)
    # Dan's record is newer about his phone number; Daniel's has none.
    phone = [{"system": "phone", "value": "07700 900777"}]
    hub.record("slam-epr", (MRN, "RV5A000777"), DAN, at=5_000, telecom=phone)
    _write(store, resolver.plan_merge(retired, survivor, reason="test"), state_db)
    assert store.read("Patient", survivor)["telecom"] == [
        {"system": "phone", "value": "07700 900777"}
    ]
    # An EPR record older than Dan's phone number does not take it away (its clock moved).
    older = [{"system": "phone", "value": "020 0000 0000"}]
    hub.record("slam-epr", (MRN, "RV5A000456"), DANIEL, at=4_000, telecom=older)
    assert store.read("Patient", survivor)["telecom"] == [
        {"system": "phone", "value": "07700 900777"}
    ]
    with state_db.transaction() as tx:
        left = tx.execute(
            "SELECT COUNT(*) FROM identity_clocks WHERE patient_id = ?", (retired,)
        ).fetchone()
    assert left[0] == 0


def test_two_valid_nhs_numbers_are_never_merged(hub: Hub, resolver: IdentityResolver) -> None:
    one = hub.record("gp", (NHS, "9990000018"), ADAEZE)
    two = hub.record("gp", (NHS, "9990000026"), THOMAS)
    with pytest.raises(IdentityConflict):
        resolver.plan_merge(two.patient_id, one.patient_id, reason="test")
    vcse = hub.record("vcse", (CLIENT_REF, "C-1"), ADAEZE)
    with pytest.raises(IdentityConflict):
        hub.record("gp", (NHS, "9990000026"), THOMAS, retired=((CLIENT_REF, "C-1"),))
    assert hub.patients(CLIENT_REF, "C-1")[0]["id"] == vcse.patient_id
