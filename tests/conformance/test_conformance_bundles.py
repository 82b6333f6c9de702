"""`transaction` Bundles are all-or-nothing and resolve their references; `batch` entries
stand alone, each with its own outcome."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hub.fhir import FhirError
from tests.conformance._api import Api, Resource
from tests.conformance._examples import (
    NHS_NUMBER,
    care_plan,
    encounter,
    identifier,
    nhs_number,
    organization,
    patient,
)


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def post(resource: Resource, full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(url: str, resource: Resource, **request: str) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": url, **request}}


def get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def bundle(kind: str, *entries: dict[str, Any]) -> Resource:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def status(entry: dict[str, Any]) -> int:
    return int(entry["response"]["status"].split()[0])


def location(entry: dict[str, Any]) -> tuple[str, str]:
    """(type, id) from an entry's response.location (`Patient/1/_history/1`)."""
    parts = entry["response"]["location"].split("/_history/")[0].rstrip("/").split("/")
    return parts[-2], parts[-1]


def ids(api: Api, resource_type: str, system: str) -> list[str]:
    return api.search(resource_type, [("identifier", f"{system}|")]).ids


# --- transaction: references ---------------------------------------------------------------------


def test_transaction_resolves_urn_uuid_references_to_the_created_ids(api: Api, system: str) -> None:
    patient_urn, encounter_urn = urn(), urn()

    response = api.transaction(
        bundle(
            "transaction",
            post(encounter(system, subject={"reference": patient_urn}), encounter_urn),
            post(
                care_plan(
                    system,
                    subject={"reference": patient_urn},
                    encounter={"reference": encounter_urn},
                )
            ),
            post(patient(system), patient_urn),
        )
    )

    assert response["type"] == "transaction-response"
    entries = response["entry"]
    assert [status(e) for e in entries] == [201, 201, 201]
    (_, encounter_id), (_, plan_id), (_, patient_id) = (location(e) for e in entries)
    assert api.read("Encounter", encounter_id)["subject"] == {"reference": f"Patient/{patient_id}"}
    plan = api.read("CarePlan", plan_id)
    assert plan["subject"] == {"reference": f"Patient/{patient_id}"}
    assert plan["encounter"] == {"reference": f"Encounter/{encounter_id}"}
    assert api.search("Encounter", [("patient", patient_id)]).ids == [encounter_id]


def test_transaction_resolves_a_conditional_reference_to_an_existing_resource(
    api: Api, system: str
) -> None:
    number = nhs_number()
    existing = api.create(patient(system, identifier=[identifier(NHS_NUMBER, number)]))

    response = api.transaction(
        bundle(
            "transaction",
            post(
                encounter(
                    system, subject={"reference": f"Patient?identifier={NHS_NUMBER}|{number}"}
                )
            ),
        )
    )

    _, encounter_id = location(response["entry"][0])
    subject = api.read("Encounter", encounter_id)["subject"]
    assert subject == {"reference": f"Patient/{existing.id}"}


def test_transaction_resolves_a_conditional_reference_to_a_patient_conditionally_created_in_it(
    api: Api, system: str
) -> None:
    # FHIR R4 (http.html#trules) resolves a conditional reference to "the existing resource";
    # one created in the same bundle is found when its entry is a conditional create on the
    # same criteria (which HAPI matches; a plain POST it does not).
    number = nhs_number()
    criteria = f"identifier={NHS_NUMBER}|{number}"
    conditional = {"reference": f"Patient?{criteria}"}

    response = api.transaction(
        bundle(
            "transaction",
            post(encounter(system, subject=conditional)),
            post(
                patient(system, identifier=[identifier(NHS_NUMBER, number)]),
                urn(),
                ifNoneExist=criteria,
            ),
        )
    )

    encounter_entry, patient_entry = response["entry"]
    _, patient_id = location(patient_entry)
    _, encounter_id = location(encounter_entry)
    assert api.read("Encounter", encounter_id)["subject"] == {"reference": f"Patient/{patient_id}"}


def test_transaction_if_none_exist_reuses_the_existing_resource_and_its_references_follow(
    api: Api, system: str
) -> None:
    existing = api.create(patient(system))
    patient_urn = urn()

    response = api.transaction(
        bundle(
            "transaction",
            post(patient(system), patient_urn, ifNoneExist=f"identifier={system}|1"),
            post(encounter(system, subject={"reference": patient_urn})),
        )
    )

    patient_entry, encounter_entry = response["entry"]
    assert status(patient_entry) == 200
    assert location(patient_entry) == ("Patient", existing.id)
    assert ids(api, "Patient", system) == [existing.id]
    _, encounter_id = location(encounter_entry)
    assert api.read("Encounter", encounter_id)["subject"] == {"reference": f"Patient/{existing.id}"}


def test_transaction_if_none_exist_with_no_match_creates(api: Api, system: str) -> None:
    response = api.transaction(
        bundle("transaction", post(patient(system), ifNoneExist=f"identifier={system}|1"))
    )

    assert status(response["entry"][0]) == 201
    assert ids(api, "Patient", system) == [location(response["entry"][0])[1]]


def test_a_get_entry_of_a_transaction_sees_the_bundles_writes(api: Api, system: str) -> None:
    response = api.transaction(
        bundle(
            "transaction",
            get(f"Patient?identifier={system}|1"),
            post(patient(system)),
            put(f"Organization?identifier={system}|1", organization(system)),
        )
    )

    search, created, _ = response["entry"]
    assert status(search) == 200
    found = search["resource"]
    assert found["resourceType"] == "Bundle"
    assert found["type"] == "searchset"
    matches = [e["resource"]["id"] for e in found.get("entry", ())]
    assert matches == [location(created)[1]]


# --- transaction: all or nothing -----------------------------------------------------------------


def test_a_transaction_with_an_invalid_entry_in_the_middle_leaves_no_trace(
    api: Api, system: str
) -> None:
    invalid = patient(system, birthDate="not-a-date")

    with pytest.raises(FhirError) as raised:
        api.transaction(
            bundle(
                "transaction",
                post(patient(system)),
                post(organization(system)),
                post(invalid),
                post(encounter(system)),
            )
        )

    assert raised.value.status == 400
    assert any("Bundle.entry[2]" in " ".join(i.expression) for i in raised.value.issues)
    for resource_type in ("Patient", "Organization", "Encounter"):
        assert ids(api, resource_type, system) == []


def test_a_transaction_that_fails_while_writing_leaves_no_trace(api: Api, system: str) -> None:
    # The entries are valid: the failure (a stale If-Match) is found only after the entries
    # before it have been written, and they are rolled back.
    existing = api.create(organization(system, value="existing"))
    api.update({**existing.resource, "name": "Renamed"})

    with pytest.raises(FhirError) as raised:
        api.transaction(
            bundle(
                "transaction",
                post(patient(system)),
                post(encounter(system)),
                put(
                    f"Organization/{existing.id}",
                    {**existing.resource, "name": "Stale"},
                    ifMatch='W/"1"',
                ),
                post(care_plan(system)),
            )
        )

    assert raised.value.status == 412
    for resource_type in ("Patient", "Encounter", "CarePlan"):
        assert ids(api, resource_type, system) == []
    assert api.read("Organization", existing.id)["name"] == "Renamed"


def test_a_transaction_whose_conditional_reference_matches_nothing_leaves_no_trace(
    api: Api, system: str
) -> None:
    nobody = {"reference": f"Patient?identifier={system}|nobody"}

    with pytest.raises(FhirError) as raised:
        api.transaction(
            bundle("transaction", post(patient(system)), post(encounter(system, subject=nobody)))
        )

    assert raised.value.status in (400, 404, 412, 422)
    assert ids(api, "Patient", system) == []
    assert ids(api, "Encounter", system) == []


# --- batch ---------------------------------------------------------------------------------------


def test_batch_entries_succeed_or_fail_on_their_own(api: Api, system: str) -> None:
    response = api.batch(
        bundle(
            "batch",
            post(patient(system, value="a")),
            post(patient(system, value="b", birthDate="not-a-date")),
            post(patient(system, value="c")),
        )
    )

    assert response["type"] == "batch-response"
    first, failed, third = response["entry"]
    assert status(first) == 201
    assert status(third) == 201
    assert status(failed) == 400
    outcome = failed["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    assert sorted(ids(api, "Patient", system)) == sorted([location(first)[1], location(third)[1]])


def test_a_failing_batch_entry_does_not_stop_the_entries_after_it(api: Api, system: str) -> None:
    existing = api.create(patient(system, value="a"))

    response = api.batch(
        bundle(
            "batch",
            put(f"Patient/{existing.id}", patient(system, value="b"), ifMatch='W/"7"'),
            get(f"Patient?identifier={system}|a"),
            post(patient(system, value="c")),
        )
    )

    stale, search, created = response["entry"]
    assert status(stale) == 412
    assert stale["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert status(search) == 200
    assert [e["resource"]["id"] for e in search["resource"].get("entry", ())] == [existing.id]
    assert status(created) == 201
    assert api.read("Patient", existing.id) == existing.resource
    assert api.search("Patient", [("identifier", f"{system}|c")]).ids == [location(created)[1]]


# --- what a Bundle entry can hold ----------------------------------------------------------------


def test_a_post_entry_to_an_instance_url_is_refused_and_changes_nothing(
    api: Api, system: str
) -> None:
    existing = api.create(patient(system))

    with pytest.raises(FhirError) as raised:
        api.transaction(
            bundle(
                "transaction",
                {
                    "resource": patient(system, gender="male"),
                    "request": {"method": "POST", "url": f"Patient/{existing.id}"},
                },
            )
        )

    assert raised.value.status in (400, 405, 422)
    assert api.read("Patient", existing.id) == existing.resource
    assert ids(api, "Patient", system) == [existing.id]


def test_two_entries_with_the_same_full_url_are_refused(api: Api, system: str) -> None:
    same = urn()

    with pytest.raises(FhirError) as raised:
        api.transaction(
            bundle(
                "transaction",
                post(patient(system, value="a"), same),
                post(patient(system, value="b"), same),
                post(encounter(system, subject={"reference": same})),
            )
        )

    assert raised.value.status == 400
    assert ids(api, "Patient", system) == []
    assert ids(api, "Encounter", system) == []


def test_get_entries_read_vread_and_search(api: Api, system: str) -> None:
    created = api.create(patient(system))
    updated = api.update({**created.resource, "gender": "female"})

    response = api.batch(
        bundle(
            "batch",
            get(f"Patient/{created.id}"),
            get(f"Patient/{created.id}/_history/1"),
            get(f"Patient?identifier={system}|1&gender=female"),
        )
    )

    read, vread, search = response["entry"]
    assert [status(e) for e in response["entry"]] == [200, 200, 200]
    assert read["resource"] == updated.resource
    assert vread["resource"] == created.resource
    assert [e["resource"]["id"] for e in search["resource"]["entry"]] == [created.id]


def test_a_get_entry_for_an_instance_history_is_never_answered_with_a_read(
    api: Api, system: str
) -> None:
    created = api.create(patient(system))

    response = api.batch(bundle("batch", get(f"Patient/{created.id}/_history")))

    (entry,) = response["entry"]
    if status(entry) == 200:  # a server that supports it answers with the history
        assert entry["resource"]["resourceType"] == "Bundle"
        assert entry["resource"]["type"] == "history"
    else:
        assert status(entry) == 400
        assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_an_absolute_request_url_is_read_after_its_base_or_refused(api: Api, system: str) -> None:
    # The hub reads the type after whatever base the URL has; a server may instead refuse a
    # base other than its own. Either way the entry is never misread.
    entry = {
        "resource": patient(system),
        "request": {"method": "POST", "url": "https://hub.test/fhir/Patient"},
    }

    try:
        response = api.transaction(bundle("transaction", entry))
    except FhirError as error:
        assert error.status in (400, 404, 422)
        assert ids(api, "Patient", system) == []
        return
    assert status(response["entry"][0]) == 201
    assert ids(api, "Patient", system) == [location(response["entry"][0])[1]]


def test_an_entry_without_a_request_is_named_in_the_error(api: Api, system: str) -> None:
    with pytest.raises(FhirError) as raised:
        api.transaction(bundle("transaction", post(patient(system)), {"resource": patient(system)}))

    assert raised.value.status == 400
    paths = [e for issue in raised.value.issues for e in issue.expression]
    assert paths and all(p.startswith("Bundle.entry[1]") for p in paths), paths
    assert "Bundle.entry[1].resource.request" not in paths
    assert ids(api, "Patient", system) == []
