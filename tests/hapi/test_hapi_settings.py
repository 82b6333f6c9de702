"""HAPI answers as docker/hapi/application.yaml says it must for the hub: each test is one
setting of that file, checked on the running server (the native one in the tests, the same
file in the Docker image)."""

from __future__ import annotations

import re
import uuid

import httpx

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def unique_system() -> str:
    return f"https://hub.test/hapi-settings/{uuid.uuid4().hex}"


def patient(system: str, **elements: object) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": "1"}], **elements}


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def test_a_client_may_choose_an_id_of_digits_only(hapi: httpx.Client) -> None:
    # client_id_strategy: ANY
    id = str(uuid.uuid4().int)[:18]

    response = hapi.put(f"/Patient/{id}", json={**patient(unique_system()), "id": id})

    assert created(response)["id"] == id


def test_ids_hapi_chooses_are_uuids(hapi: httpx.Client) -> None:
    # server_id_strategy: UUID
    assert UUID.match(created(hapi.post("/Patient", json=patient(unique_system())))["id"])


def test_a_search_finds_what_was_written_just_after_the_same_search(hapi: httpx.Client) -> None:
    # reuse_cached_search_results_millis: 0
    system = unique_system()
    query = {"identifier": f"{system}|"}
    assert "entry" not in hapi.get("/Patient", params=query).json()

    written = created(hapi.post("/Patient", json=patient(system)))

    entries = hapi.get("/Patient", params=query).json()["entry"]
    assert [e["resource"]["id"] for e in entries] == [written["id"]]


def test_a_reference_to_a_resource_not_written_yet_is_kept(hapi: httpx.Client) -> None:
    # enforce_referential_integrity_on_write: false, auto_create_placeholder_reference_targets: false
    missing = f"Patient/not-yet-{uuid.uuid4().hex[:12]}"
    encounter = {
        "resourceType": "Encounter",
        "status": "planned",
        "class": {"code": "AMB"},
        "subject": {"reference": missing},
    }

    written = created(hapi.post("/Encounter", json=encounter))

    assert written["subject"] == {"reference": missing}
    assert hapi.get(f"/{missing}").status_code == 404


def test_a_reference_to_another_server_is_stored(hapi: httpx.Client) -> None:
    # allow_external_references: true
    elsewhere = "https://ods.example.nhs.uk/fhir/Organization/Y12345"

    written = created(
        hapi.post(
            "/Patient", json=patient(unique_system(), managingOrganization={"reference": elsewhere})
        )
    )

    assert written["managingOrganization"] == {"reference": elsewhere}


def test_a_resource_others_refer_to_can_be_deleted(hapi: httpx.Client) -> None:
    # enforce_referential_integrity_on_delete: false
    person = created(hapi.post("/Patient", json=patient(unique_system())))
    hapi.post(
        "/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{person['id']}"},
        },
    ).raise_for_status()

    assert hapi.delete(f"/Patient/{person['id']}").status_code == 200
    assert hapi.get(f"/Patient/{person['id']}").status_code == 410


def test_resources_come_back_without_a_generated_narrative(hapi: httpx.Client) -> None:
    # narrative_enabled: false
    written = created(hapi.post("/Patient", json=patient(unique_system(), gender="female")))

    assert "text" not in written
    assert "text" not in hapi.get(f"/Patient/{written['id']}").json()


def test_missing_searches_are_answered(hapi: httpx.Client) -> None:
    # enable_index_missing_fields: true
    system = unique_system()
    with_gender = created(hapi.post("/Patient", json=patient(system, gender="male")))
    without = created(hapi.post("/Patient", json=patient(system)))

    def found(missing: str) -> list[str]:
        params = {"identifier": f"{system}|", "gender:missing": missing}
        return [e["resource"]["id"] for e in hapi.get("/Patient", params=params).json()["entry"]]

    assert found("true") == [without["id"]]
    assert found("false") == [with_gender["id"]]


def test_a_subscription_is_stored_but_never_activated(hapi: httpx.Client) -> None:
    # subscription.*_enabled: false (the hub delivers subscriptions)
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Tell the partner app about new care plans",
        "criteria": "CarePlan?status=active",
        "channel": {"type": "rest-hook", "endpoint": "https://partner.example.org/hook"},
    }

    written = created(hapi.post("/Subscription", json=subscription))

    assert hapi.get(f"/Subscription/{written['id']}").json()["status"] == "requested"


def test_a_stale_if_match_is_refused(hapi: httpx.Client) -> None:
    # etag_support_enabled: true (HAPI answers 409, which the hub's RemoteStore reports as 412)
    written = created(hapi.post("/Patient", json=patient(unique_system())))
    hapi.put(f"/Patient/{written['id']}", json={**written, "gender": "other"}).raise_for_status()

    stale = hapi.put(
        f"/Patient/{written['id']}",
        json={**written, "gender": "unknown"},
        headers={"If-Match": 'W/"1"'},
    )

    assert stale.status_code == 409
    assert hapi.get(f"/Patient/{written['id']}").json()["gender"] == "other"
