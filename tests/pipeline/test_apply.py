"""Applying one record to the shared record (RecordApplier, through the Worker): a record that
waits for its Patient, VCSE consent, the source's own clock against late arrivals, the same item
applied twice, and the Provenance each applied record writes.

Real parts throughout: the embedded store in tmp_path, the hub state on SQLite and on
PostgreSQL (`state_url`), the repository's mappings and profiles, the example feeds.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from hub.pipeline import INBOX_SYSTEM, read_record
from hub.pipeline._apply import RecordApplier
from hub.state import instance_id
from tests.pipeline._workers import (
    HUB_ID,
    MRN,
    NHS,
    VISIT,
    Pipeline,
    csv_rows,
    example,
    hl7_messages,
    hub_settings,
    open_parts,
)

ADT = hl7_messages(example("slam-epr/examples/adt.hl7"))
ADAEZE_A04, _, THOMAS_A01, THOMAS_A03 = ADT[:4]
CAREPLANS = example("slam-epr/examples/careplans.jsonl").splitlines(keepends=True)
CLIENTS = example("vcse/examples/clients.csv")
SESSIONS = example("vcse/examples/sessions.csv")
CAREPLAN = f"{HUB_ID}/RV5/careplan"
CLIENT_REF = f"{HUB_ID}/LEW-MIND/client-ref"
CONSENT = f"{HUB_ID}/LEW-MIND/consent"
SESSION = f"{HUB_ID}/LEW-MIND/session"
ORGANISATION_SYSTEM = "https://fhir.hub.example/Id/source-organisation"


def careplan_line(index: int, **changes: str) -> bytes:
    """Line `index` (0-based) of the example careplans.jsonl, with fields changed."""
    plan = orjson.loads(CAREPLANS[index])
    plan.update(changes)
    return orjson.dumps(plan) + b"\n"


def client_row(row: int, **changes: str) -> bytes:
    """clients.csv with its header and data row `row` (1-based), cells changed by column."""
    header, *rows = [line for line in CLIENTS.decode().splitlines() if line.strip()]
    columns = header.split(",")
    cells = rows[row - 1].split(",")
    for column, value in changes.items():
        cells[columns.index(column)] = value
    return f"{header}\r\n{','.join(cells)}\r\n".encode()


# -- a record that needs its Patient first ------------------------------------------------------


def test_a_care_plan_before_its_patient_waits_and_is_applied_once_the_adt_arrives(
    pipeline: Pipeline,
) -> None:
    [plan] = pipeline.add("slam-epr/careplans", CAREPLANS[0], "careplans.jsonl")
    assert pipeline.run() == [(plan, "waiting")]
    waiting = pipeline.item(plan)
    assert waiting.status == "waiting"
    assert waiting.wait_key == f"Patient|{MRN}|RV5A000123"
    assert "Patient" in (waiting.last_error or "")
    assert pipeline.versions() == {}  # nothing of it written, not even a Provenance

    [adt] = pipeline.add("slam-epr/adt", ADAEZE_A04, "adt.hl7")
    # Woken by the ADT at once: its fallback recheck is an hour away.
    assert pipeline.run() == [(adt, "applied"), (plan, "applied")]
    patient = pipeline.one("Patient", NHS, "9990000018")
    careplan = pipeline.one("CarePlan", CAREPLAN, "CP-55120")
    assert careplan["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert [goal["subject"] for goal in careplan["contained"]] == [
        {"reference": f"Patient/{patient['id']}"}
    ]
    assert pipeline.item(plan).wait_key is None


def test_a_waiting_record_does_not_hold_up_the_rest_of_its_lane(pipeline: Pipeline) -> None:
    [thomas] = pipeline.add("slam-epr/adt", THOMAS_A01, "adt.hl7")
    pipeline.run()
    adaeze_plan, thomas_plan = pipeline.add(
        "slam-epr/careplans", CAREPLANS[0] + CAREPLANS[2], "careplans.jsonl"
    )
    # Different people, different lanes: whichever is handled first, Adaeze's waiting plan
    # holds up nothing.
    assert sorted(pipeline.run()) == [(adaeze_plan, "waiting"), (thomas_plan, "applied")]
    assert pipeline.by_identifier("CarePlan", CAREPLAN, "CP-55120") == []
    patient = pipeline.one("Patient", NHS, "9990000026")
    s117 = pipeline.one("CarePlan", CAREPLAN, "CP-60001")
    assert s117["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert pipeline.status(thomas) == ["applied"]


# -- VCSE consent -------------------------------------------------------------------------------


def test_sessions_before_their_client_are_withheld_then_applied_once_consent_arrives(
    pipeline: Pipeline,
) -> None:
    sessions = pipeline.add("vcse/sessions", csv_rows(SESSIONS, 1, 2), "sessions.csv")
    assert pipeline.run() == [(s, "withheld") for s in sessions]
    for session in sessions:
        item = pipeline.item(session)
        assert item.outcome == {"reason": "no consent to share on record"}
        assert item.wait_key == f"Consent|{CONSENT}|C-000417"
    assert pipeline.versions() == {}

    [client] = pipeline.add("vcse/clients", csv_rows(CLIENTS, 1), "clients.csv")
    assert pipeline.run() == [(client, "applied"), *((s, "applied") for s in sessions)]
    patient = pipeline.one("Patient", CLIENT_REF, "C-000417")
    assert (NHS, "9990000018") in {(i["system"], i["value"]) for i in patient["identifier"]}
    consent = pipeline.one("Consent", CONSENT, "C-000417")
    assert consent["status"] == "active"
    assert consent["patient"] == {"reference": f"Patient/{patient['id']}"}
    for session_id in ("S-0091", "S-0092"):
        encounter = pipeline.one("Encounter", SESSION, session_id)
        assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    everything = orjson.dumps([pipeline.search("Encounter")]).decode()
    assert "Talked about sleep and money worries" not in everything  # notes stay with the VCSE


def test_a_client_without_consent_reaches_nothing_and_neither_do_their_rows(
    pipeline: Pipeline,
) -> None:
    [client] = pipeline.add("vcse/clients", csv_rows(CLIENTS, 3), "clients.csv")  # Kwabena: N
    [session] = pipeline.add("vcse/sessions", csv_rows(SESSIONS, 4), "sessions.csv")
    assert sorted(pipeline.run()) == [(client, "withheld"), (session, "withheld")]
    assert pipeline.item(client).outcome == {
        "reason": "no consent to share with the neighbourhood team"
    }
    assert pipeline.item(session).outcome == {"reason": "no consent to share on record"}
    assert pipeline.versions() == {}  # no Patient, Consent, Encounter or Provenance at all
    assert pipeline.by_identifier("Patient", NHS, "9990000050") == []


def test_a_withdrawal_makes_the_consent_inactive_and_later_rows_are_withheld(
    pipeline: Pipeline,
) -> None:
    [client] = pipeline.add("vcse/clients", csv_rows(CLIENTS, 1), "clients.csv")
    [shared] = pipeline.add("vcse/sessions", csv_rows(SESSIONS, 1), "sessions.csv")
    assert pipeline.run() == [(client, "applied"), (shared, "applied")]
    patient = pipeline.one("Patient", CLIENT_REF, "C-000417")

    withdrawal = client_row(1, consent_withdrawn_date="20/04/2026")
    [withdrawn] = pipeline.add("vcse/clients", withdrawal, "clients.csv")
    assert pipeline.run() == [(withdrawn, "applied")]
    consent = pipeline.one("Consent", CONSENT, "C-000417")
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"]["end"] == "2026-04-20"
    assert consent["patient"] == {"reference": f"Patient/{patient['id']}"}
    # The withdrawal refreshes nothing of the person who no longer shares.
    after = pipeline.one("Patient", CLIENT_REF, "C-000417")
    assert after["meta"]["versionId"] == patient["meta"]["versionId"]

    [later] = pipeline.add("vcse/sessions", csv_rows(SESSIONS, 2), "sessions.csv")
    assert pipeline.run() == [(later, "withheld")]
    assert pipeline.item(later).outcome == {
        "reason": "consent to share is not active (never given or withdrawn)"
    }
    assert pipeline.by_identifier("Encounter", SESSION, "S-0092") == []
    # What was shared before stays in the store: hiding it is the access policy's job.
    assert pipeline.one("Encounter", SESSION, "S-0091")

    # Consent given again: what was withheld meanwhile is shared now.
    again = client_row(1, consent_date="01/05/2026")
    [consented] = pipeline.add("vcse/clients", again, "clients.csv")
    assert pipeline.run() == [(consented, "applied"), (later, "applied")]
    assert pipeline.one("Consent", CONSENT, "C-000417")["status"] == "active"
    assert pipeline.one("Encounter", SESSION, "S-0092")["subject"] == {
        "reference": f"Patient/{patient['id']}"
    }


def test_an_older_consent_row_arriving_late_does_not_turn_a_withdrawal_back_on(
    pipeline: Pipeline,
) -> None:
    [client] = pipeline.add("vcse/clients", csv_rows(CLIENTS, 1), "clients.csv")
    withdrawal = client_row(1, consent_withdrawn_date="20/04/2026")
    [withdrawn] = pipeline.add("vcse/clients", withdrawal, "clients.csv")
    assert pipeline.run() == [(client, "applied"), (withdrawn, "applied")]
    # The export from before the withdrawal, delayed in transit: same bytes as the first row
    # would be a duplicate, so it comes from another export with a changed phone number.
    [late] = pipeline.add("vcse/clients", client_row(1, phone="07700900999"), "late.csv")
    assert pipeline.run() == [(late, "applied")]
    assert pipeline.item(late).outcome["superseded"] == [f"Consent|{CONSENT}|C-000417"]  # type: ignore[index]
    assert pipeline.one("Consent", CONSENT, "C-000417")["status"] == "inactive"


def test_a_withdrawal_for_a_client_never_shared_writes_an_inactive_consent_without_a_patient(
    pipeline: Pipeline,
) -> None:
    row = client_row(
        2,
        client_ref="C-000999",
        first_name="Testy",
        last_name="Nobody",
        consent_date="01/03/2026",
        consent_withdrawn_date="15/03/2026",
    )
    [client] = pipeline.add("vcse/clients", row, "clients.csv")
    assert pipeline.run() == [(client, "applied")]
    consent = pipeline.one("Consent", CONSENT, "C-000999")
    assert consent["status"] == "inactive"
    assert "patient" not in consent
    assert pipeline.search("Patient") == []
    provenance = pipeline.store.read("Provenance", pipeline.provenance_id(client))
    assert provenance["target"] == [{"reference": f"Consent/{consent['id']}"}]


# -- the source's clock: late arrivals never overwrite ----------------------------------------


def test_an_older_care_plan_after_a_newer_one_is_recorded_but_does_not_overwrite(
    pipeline: Pipeline,
) -> None:
    pipeline.add("slam-epr/adt", ADAEZE_A04, "adt.hl7")
    pipeline.run()
    [newer] = pipeline.add(
        "slam-epr/careplans",
        careplan_line(0, title="Newer plan", updated_at="2026-05-01T12:00:00Z"),
    )
    assert pipeline.run() == [(newer, "applied")]
    current = pipeline.one("CarePlan", CAREPLAN, "CP-55120")
    assert current["title"] == "Newer plan"

    [older] = pipeline.add(
        "slam-epr/careplans",
        careplan_line(0, title="Older plan", updated_at="2026-03-15T12:00:00Z"),
    )
    assert pipeline.run() == [(older, "applied")]
    outcome = pipeline.item(older).outcome
    assert outcome is not None
    assert outcome["superseded"] == [f"CarePlan|{CAREPLAN}|CP-55120"]
    assert outcome["written"] == []
    unchanged = pipeline.one("CarePlan", CAREPLAN, "CP-55120")
    assert unchanged["title"] == "Newer plan"
    assert unchanged["meta"]["versionId"] == current["meta"]["versionId"]

    # The same time as the newest applies: one event can be re-sent with new content.
    [same] = pipeline.add(
        "slam-epr/careplans",
        careplan_line(0, title="Same time, new words", updated_at="2026-05-01T12:00:00Z"),
    )
    assert pipeline.run() == [(same, "applied")]
    assert "superseded" not in (pipeline.item(same).outcome or {})
    rewritten = pipeline.one("CarePlan", CAREPLAN, "CP-55120")
    assert rewritten["title"] == "Same time, new words"
    assert int(rewritten["meta"]["versionId"]) == int(current["meta"]["versionId"]) + 1


def test_an_admission_arriving_after_its_discharge_leaves_the_stay_finished(
    pipeline: Pipeline,
) -> None:
    [discharge] = pipeline.add("slam-epr/adt", THOMAS_A03, "adt.hl7")
    assert pipeline.run() == [(discharge, "applied")]
    stay = pipeline.one("Encounter", VISIT, "V0000503")
    patient = pipeline.one("Patient", NHS, "9990000026")
    assert stay["status"] == "finished"

    [admission] = pipeline.add("slam-epr/adt", THOMAS_A01, "adt.hl7")  # the resend of the A01
    assert pipeline.run() == [(admission, "applied")]
    outcome = pipeline.item(admission).outcome or {}
    assert f"Encounter|{VISIT}|V0000503" in outcome["superseded"]
    after = pipeline.one("Encounter", VISIT, "V0000503")
    assert after == stay  # same version, still finished, its end kept
    assert pipeline.one("Patient", NHS, "9990000026")["meta"] == patient["meta"]


# -- the same item twice -----------------------------------------------------------------------


def _apply_directly(pipeline: Pipeline, item_id: int) -> None:
    """What a worker does with a claimed item, up to (not including) finishing it: the state
    a crash between the store commit and `Inbox.finish` leaves behind."""
    parts = pipeline.parts
    [item] = parts.inbox.claim("crashed-worker", lease_seconds=0.01)
    assert item.id == item_id
    mapping = parts.mappings.get(item.mapping)
    record = read_record(mapping, item.raw, item.origin, item.line)
    mapped = mapping.map_record(record, check=parts.checker)  # type: ignore[arg-type]
    applier = RecordApplier(parts.store, parts.db, parts.identity)
    applier.apply(item, mapping, mapped, lambda applied: None)  # the item is not finished
    time.sleep(0.05)  # the crashed worker's lease runs out


def test_the_same_item_applied_twice_changes_no_resource_the_second_time(
    pipeline: Pipeline,
) -> None:
    [item_id] = pipeline.add("slam-epr/adt", THOMAS_A01, "adt.hl7")
    _apply_directly(pipeline, item_id)
    before = pipeline.versions()
    assert {t for t, _ in before} >= {"Patient", "Encounter", "Provenance"}

    # The worker that takes the item over once the crashed one's lease is gone.
    [again] = pipeline.inbox.claim("next-worker")
    assert again.id == item_id
    assert pipeline.worker.handle(again) == "applied"
    after = pipeline.versions()
    assert {k: v for k, v in after.items() if k[0] != "Provenance"} == {
        k: v for k, v in before.items() if k[0] != "Provenance"
    }
    assert [k for k in after if k[0] == "Provenance"] == [
        ("Provenance", pipeline.provenance_id(item_id))
    ]
    assert len(pipeline.search("Patient")) == 1
    assert len(pipeline.search("Encounter")) == 1


def test_the_same_item_applied_twice_leaves_its_provenance_as_it_was(
    pipeline: Pipeline,
) -> None:
    """'Replaying a message changes nothing' (ARCHITECTURE.md 4) holds for the Provenance too:
    a second version of it would be a change (history, _lastUpdated, a notification)."""
    [item_id] = pipeline.add("slam-epr/adt", THOMAS_A01, "adt.hl7")
    _apply_directly(pipeline, item_id)
    before = pipeline.store.read("Provenance", pipeline.provenance_id(item_id))
    [again] = pipeline.inbox.claim("next-worker")
    assert pipeline.worker.handle(again) == "applied"
    after = pipeline.store.read("Provenance", pipeline.provenance_id(item_id))
    assert after["meta"]["versionId"] == before["meta"]["versionId"]
    assert after == before


# -- Provenance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "file", "organisation", "record"),
    [
        ("slam-epr/adt", None, "RV5", "adt.hl7 line 1 (RV5-0000103)"),
        ("vcse/clients", "vcse/examples/clients.csv", "LEW-MIND", "line 2 (LEW-MIND/C-000417)"),
        ("district-nursing/visits", "district-nursing/examples/visits.csv", "RJ2", "line 2"),
        ("gp/stu3-bundle", "gp/examples/G85901-okafor.json", "G85901", "G85901-okafor.json"),
    ],
)
def test_each_applied_record_writes_a_provenance_naming_source_mapping_and_inbox_item(
    pipeline: Pipeline, mapping: str, file: str | None, organisation: str, record: str
) -> None:
    if file is None:
        data, origin = THOMAS_A01, "adt.hl7"
    elif file.endswith(".csv"):
        data, origin = csv_rows(example(file), 1), Path(file).name
    else:
        data, origin = example(file), Path(file).name
    before = pipeline.versions()
    [item_id] = pipeline.add(mapping, data, origin)
    assert pipeline.run() == [(item_id, "applied")]
    after = pipeline.versions()
    changed = {f"{t}/{i}" for (t, i), v in after.items() if before.get((t, i)) != v}
    provenance = pipeline.store.read("Provenance", pipeline.provenance_id(item_id))
    changed.discard(f"Provenance/{pipeline.provenance_id(item_id)}")

    version = pipeline.parts.mappings.get(mapping).version
    assert provenance["policy"] == [f"https://fhir.hub.example/mappings/{mapping}|{version}"]
    authors = [a for a in provenance["agent"] if a["type"]["coding"][0]["code"] == "author"]
    assert [a["who"]["identifier"] for a in authors] == [
        {"system": ORGANISATION_SYSTEM, "value": organisation}
    ]
    assembler = next(a for a in provenance["agent"] if a not in authors)
    assert assembler["who"]["display"] == f"hub mapping {mapping} version {version}"
    [entity] = provenance["entity"]
    assert entity["what"]["identifier"] == {
        "system": INBOX_SYSTEM,
        "value": f"{instance_id(pipeline.parts.db)}-{item_id}",
    }
    assert record in entity["what"]["display"]
    # It targets exactly what the record wrote, every target a literal, readable reference;
    # not the derived summaries its transaction recomputed (their sources are many records).
    targets = {t["reference"] for t in provenance["target"]}
    assert targets == {c for c in changed if c.split("/")[0] not in ("CareTeam", "Flag")}
    assert changed
    for target in targets:
        resource_type, id = target.split("/")
        pipeline.store.read(resource_type, id)


def test_a_record_that_changes_nothing_of_its_patient_does_not_rewrite_it(
    pipeline: Pipeline,
) -> None:
    """Adaeze's second contact carries the same PID as her first: her Patient stays at its
    first version, and the contact's Provenance still names her."""
    first, second = pipeline.add("slam-epr/adt", ADT[0] + ADT[1], "adt.hl7")
    assert sorted(pipeline.run()) == [(first, "applied"), (second, "applied")]
    patient = pipeline.one("Patient", NHS, "9990000018")
    assert patient["meta"]["versionId"] == "1"
    targets = pipeline.store.read("Provenance", pipeline.provenance_id(second))["target"]
    assert {"reference": f"Patient/{patient['id']}"} in targets
    # The Patient, the new Encounter and the place it was at.
    assert sorted(t["reference"].split("/")[0] for t in targets) == [
        "Encounter",
        "Location",
        "Patient",
    ]
    assert pipeline.item(second).outcome["patients"] == [  # type: ignore[index]
        {"id": patient["id"], "matched_by": "nhs-number"}
    ]


def test_a_gp_extract_sent_again_finds_every_resource_it_wrote_by_its_key(
    pipeline: Pipeline,
) -> None:
    """The GP's consultations and questionnaires are keyed on times with an offset
    (`...T11:20:00+01:00`): their conditional URLs must carry the `+` as `%2B`, or a store
    reads a space, finds nothing, and writes a second copy each time."""
    bundle = example("gp/examples/G85901-okafor.json")
    [first] = pipeline.add("gp/stu3-bundle", bundle, "G85901-okafor.json")
    assert pipeline.run() == [(first, "applied")]
    before = pipeline.versions()
    [again] = pipeline.add("gp/stu3-bundle", bundle + b"\n", "G85901-okafor-next.json")
    assert pipeline.run() == [(again, "applied")]
    assert pipeline.versions() == {**before, ("Provenance", pipeline.provenance_id(again)): 1}


def test_a_new_state_database_never_writes_over_the_provenance_of_an_older_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Inbox item numbers start again in a new state database (a hub moved from SQLite to
    PostgreSQL, state made afresh): the store keeps what the first one's items wrote."""
    [first] = pipeline.add("slam-epr/adt", THOMAS_A01, "adt.hl7")
    pipeline.run()
    kept = pipeline.store.read("Provenance", pipeline.provenance_id(first))
    fresh_state = f"sqlite:///{tmp_path / 'new-state' / 'hub.db'}"
    moved = Pipeline(open_parts(hub_settings(tmp_path / "data", fresh_state), store=pipeline.store))
    [again] = moved.add("slam-epr/adt", THOMAS_A03, "adt.hl7")
    assert again == first  # numbered alike
    assert moved.run() == [(again, "applied")]

    assert moved.provenance_id(again) != pipeline.provenance_id(first)
    assert pipeline.store.read("Provenance", pipeline.provenance_id(first)) == kept
    written = pipeline.store.read("Provenance", moved.provenance_id(again))
    assert written["entity"][0]["what"]["display"] != kept["entity"][0]["what"]["display"]
    moved.parts.db.close()
