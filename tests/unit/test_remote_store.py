"""RemoteStore speaks FHIR REST to a server, here one mocked with respx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from hub.fhir import (
    FhirError,
    InvalidRequest,
    InvalidResource,
    PreconditionFailed,
    ResourceGone,
    Unprocessable,
    UpstreamUnavailable,
)
from hub.store._remote import MAX_BACKOFF_SECONDS, RemoteStore

BASE = "http://fhir.test/fhir"
NHS_NUMBER = "9990000018"  # from the NHS test range
NHS = f"https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
    "name": [{"family": "Example", "given": ["Alex"]}],
}
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def stored(id: str = "p1", version: str = "1", **extra: Any) -> dict[str, Any]:
    meta = {"versionId": version, "lastUpdated": "2026-01-05T10:00:00.000Z"}
    return {**PATIENT, "id": id, "meta": meta, **extra}


def outcome(code: str, diagnostics: str) -> dict[str, Any]:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def bundle(*entries: dict[str, Any], total: int | None = None, next_link: bool = False) -> Any:
    body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": list(entries)}
    if total is not None:
        body["total"] = total
    if next_link:
        body["link"] = [{"relation": "next", "url": f"{BASE}/Patient?_offset=20"}]
    return body


def sent(route: respx.Route, index: int = -1) -> httpx.Request:
    return route.calls[index].request


@pytest.fixture
def store() -> Iterator[RemoteStore]:
    with RemoteStore(BASE, retries=3, backoff_seconds=0) as remote:
        yield remote


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


# --- writes -------------------------------------------------------------------------------------
def test_create_posts_fhir_json_asking_for_representation(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post("/Patient").respond(
        201,
        json=stored(),
        headers={"Location": f"{BASE}/Patient/p1/_history/1", "ETag": 'W/"1"'},
    )

    result = store.create(PATIENT)

    request = sent(route)
    assert request.headers["Prefer"] == "return=representation"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Accept"] == "application/fhir+json"
    assert json.loads(request.content) == PATIENT
    assert result.status == 201 and result.created
    assert (result.resource_type, result.id, result.version_id) == ("Patient", "p1", "1")
    assert result.last_updated == "2026-01-05T10:00:00.000Z"
    assert result.resource == stored()


def test_create_without_body_takes_id_and_version_from_location(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.post("/Patient").respond(201, headers={"Location": f"{BASE}/Patient/p9/_history/4"})

    result = store.create(PATIENT)

    assert (result.id, result.version_id, result.resource) == ("p9", "4", None)


def test_conditional_create_sends_if_none_exist_and_reports_existing_as_200(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post("/Patient").respond(200, json=stored(version="3"))

    result = store.create(PATIENT, if_none_exist=f"Patient?identifier={NHS}")

    assert sent(route).headers["If-None-Exist"] == f"identifier={NHS}"
    assert result.status == 200 and not result.created
    assert result.version_id == "3"


def test_conditional_create_with_unknown_criteria_is_never_sent(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post("/Patient").respond(201, json=stored())

    with pytest.raises(InvalidRequest):
        store.create(PATIENT, if_none_exist="shoe-size=9")

    assert not route.called


@pytest.mark.parametrize("if_match", ["3", 'W/"3"'])
def test_update_puts_to_instance_with_weak_if_match(
    store: RemoteStore, server: respx.MockRouter, if_match: str
) -> None:
    route = server.put("/Patient/p1").respond(200, json=stored(version="4"))

    result = store.update(stored(version="3"), if_match=if_match)

    request = sent(route)
    assert request.headers["If-Match"] == 'W/"3"'
    assert request.headers["Prefer"] == "return=representation"
    assert (result.status, result.version_id) == (200, "4")


def test_update_without_id_is_rejected(store: RemoteStore, server: respx.MockRouter) -> None:
    with pytest.raises(InvalidRequest):
        store.update(PATIENT)


def test_412_on_if_match_conflict(store: RemoteStore, server: respx.MockRouter) -> None:
    server.put("/Patient/p1").respond(
        412, json=outcome("conflict", "Version 3 is not current (5)"), headers=FHIR_JSON
    )

    with pytest.raises(PreconditionFailed) as raised:
        store.update(stored(), if_match="3")

    assert raised.value.status == 412
    assert str(raised.value) == "Version 3 is not current (5)"


def test_409_on_if_match_is_the_412_fhir_says(store: RemoteStore, server: respx.MockRouter) -> None:
    """HAPI answers a stale If-Match with 409; FHIR R4 (http.html#concurrency) says 412."""
    server.put("/Patient/p1").respond(
        409, json=outcome("conflict", "HAPI-0989: version 3 is not current"), headers=FHIR_JSON
    )

    with pytest.raises(PreconditionFailed) as raised:
        store.update(stored(), if_match="3")

    assert raised.value.status == 412


@pytest.mark.parametrize(
    ("sent_date", "server_gets"),
    [
        # A date without a time is the whole day, month or year: sent as the instant at which
        # that span begins (or ends), so every server compares the same span.
        ("ge2024-05", ["ge2024-05-01T00:00:00.000Z"]),
        ("le2024", ["le2024-12-31T23:59:59.999Z"]),
        # `ap` is sent as the two comparisons it means here.
        ("ap2024", ["lt2025-01-01T00:00:00.000Z", "gt2023-12-31T23:59:59.999Z"]),
    ],
)
def test_partial_dates_are_sent_as_the_instants_they_span(
    store: RemoteStore, server: respx.MockRouter, sent_date: str, server_gets: list[str]
) -> None:
    route = server.get("/Encounter").respond(200, json=bundle(total=0))
    store.search("Encounter", [("date", sent_date)])
    assert sent(route).url.params.get_list("date") == server_gets


def test_conditional_update_puts_criteria_on_type_url(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.put("/Patient").respond(201, json=stored())

    result = store.conditional_update("Patient", f"identifier={NHS}", PATIENT)

    assert sent(route).url.params["identifier"] == NHS
    assert (result.status, result.id) == (201, "p1")


def test_conditional_update_of_another_type_is_rejected(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    with pytest.raises(InvalidResource):
        store.conditional_update("Encounter", f"identifier={NHS}", PATIENT)


@pytest.mark.parametrize("answer", [200, 204])
def test_delete_reports_204_whatever_the_server_said(
    store: RemoteStore, server: respx.MockRouter, answer: int
) -> None:
    server.delete("/Patient/p1").respond(answer, headers={"ETag": 'W/"2"'})

    result = store.delete("Patient", "p1")

    assert (result.status, result.version_id, result.resource) == (204, "2", None)


@pytest.mark.parametrize("answer", [404, 410])
def test_deleting_what_is_not_there_is_204(
    store: RemoteStore, server: respx.MockRouter, answer: int
) -> None:
    server.delete("/Patient/p1").respond(answer, json=outcome("not-found", "gone"))

    assert store.delete("Patient", "p1").status == 204


def test_invalid_resource_never_sent(store: RemoteStore, server: respx.MockRouter) -> None:
    route = server.route().respond(201, json=stored())

    with pytest.raises(InvalidResource):
        store.create({**PATIENT, "birthDate": "not a date"})
    with pytest.raises(InvalidResource):
        store.update({**stored(), "shoeSize": 9})

    assert not route.called


def test_unsupported_type_is_404_not_supported_and_never_sent(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.route().respond(200, json=stored())

    with pytest.raises(FhirError) as raised:
        store.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    with pytest.raises(FhirError):
        store.read("Observation", "o1")

    assert raised.value.status == 404
    assert raised.value.issues[0].code == "not-supported"
    assert not route.called


def test_id_that_would_change_the_url_path_is_rejected(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.route().respond(200, json=stored())

    with pytest.raises(InvalidRequest):
        store.read("Patient", "../Encounter/1")

    assert not route.called


# --- reads and errors ---------------------------------------------------------------------------
def test_read_and_vread_get_the_resource(store: RemoteStore, server: respx.MockRouter) -> None:
    server.get("/Patient/p1").respond(200, json=stored(version="2"))
    server.get("/Patient/p1/_history/1").respond(200, json=stored(version="1"))

    assert store.read("Patient", "p1")["meta"]["versionId"] == "2"
    assert store.vread("Patient", "p1", "1")["meta"]["versionId"] == "1"


def test_server_operation_outcome_becomes_fhir_error_with_same_status(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.get("/Patient/p1").respond(410, json=outcome("deleted", "Patient/p1 was deleted"))
    server.post("/Patient").respond(422, json=outcome("business-rule", "Unresolved reference"))

    with pytest.raises(ResourceGone) as gone:
        store.read("Patient", "p1")
    with pytest.raises(Unprocessable) as unprocessable:
        store.create(PATIENT)

    assert gone.value.status == 410
    assert gone.value.outcome()["issue"][0]["diagnostics"] == "Patient/p1 was deleted"
    assert unprocessable.value.status == 422
    assert unprocessable.value.issues[0].code == "business-rule"


def test_error_without_outcome_names_method_and_path_but_not_the_query(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.get("/Patient").respond(403, text="<html>Forbidden</html>")

    with pytest.raises(FhirError) as raised:
        store.search("Patient", [("identifier", NHS)])

    assert raised.value.status == 403
    assert "GET /fhir/Patient" in str(raised.value) and "403" in str(raised.value)
    assert NHS_NUMBER not in str(raised.value)


def test_success_without_fhir_json_is_a_bad_gateway(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.get("/Patient/p1").respond(200, text="<html>proxy login</html>")

    with pytest.raises(FhirError) as raised:
        store.read("Patient", "p1")

    assert raised.value.status == 502


# --- search -------------------------------------------------------------------------------------
def test_search_page_from_bundle(store: RemoteStore, server: respx.MockRouter) -> None:
    practitioner = {"resourceType": "Practitioner", "id": "gp1"}
    route = server.get("/Patient").respond(
        200,
        json=bundle(
            {"resource": stored("p1"), "search": {"mode": "match"}},
            {"resource": stored("p2")},
            {"resource": practitioner, "search": {"mode": "include"}},
            {
                "resource": outcome("too-costly", "Include capped"),
                "search": {"mode": "outcome"},
            },
            total=45,
            next_link=True,
        ),
    )

    page = store.search(
        "Patient",
        [("identifier", NHS), ("_include", "Patient:general-practitioner"), ("_count", "2")],
    )

    assert sent(route).url.params.multi_items() == [
        ("identifier", NHS),
        ("_include", "Patient:general-practitioner"),
        ("_count", "2"),
        ("_offset", "0"),
    ]
    assert [r["id"] for r in page.matches] == ["p1", "p2"]
    assert page.includes == [practitioner]
    assert (page.total, page.offset, page.count, page.has_next) == (45, 0, 2, True)
    assert page.params == [("identifier", NHS), ("_include", "Patient:general-practitioner")]
    assert page.warnings[0]["diagnostics"] == "Include capped"
    assert page.resource_type == "Patient"


def test_search_last_page_has_no_next(store: RemoteStore, server: respx.MockRouter) -> None:
    server.get("/Patient").respond(200, json=bundle({"resource": stored()}, total=21))

    page = store.search("Patient", [("_count", "20"), ("_offset", "20")])

    assert (page.offset, page.has_next, len(page.matches)) == (20, False, 1)


def test_server_capping_page_size_steps_offset_by_what_it_returned(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.get("/Patient").respond(
        200, json=bundle(*({"resource": stored(f"p{i}")} for i in range(3)), next_link=True)
    )

    page = store.search("Patient", [("_count", "50")])

    assert (page.count, page.has_next) == (3, True)


def test_lenient_search_drops_unknown_params_and_warns(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.get("/Patient").respond(200, json=bundle())

    page = store.search(
        "Patient", [("family", "Example"), ("shoe-size", "9"), ("_sort", "-shoe-size,family")]
    )

    params = sent(route).url.params
    assert "shoe-size" not in params
    assert params["family"] == "Example"
    assert params["_sort"] == "family"
    assert [w["expression"] for w in page.warnings] == [["shoe-size"], ["_sort"]]
    assert all(w["severity"] == "warning" for w in page.warnings)


def test_strict_search_rejects_unknown_params(store: RemoteStore, server: respx.MockRouter) -> None:
    route = server.get("/Patient").respond(200, json=bundle())

    with pytest.raises(InvalidRequest) as raised:
        store.search("Patient", [("shoe-size", "9")], strict=True)

    assert raised.value.issues[0].code == "not-supported"
    assert not route.called


def test_summary_count_reports_total_only(store: RemoteStore, server: respx.MockRouter) -> None:
    server.get("/Patient").respond(200, json=bundle(total=7))

    page = store.search("Patient", [("_summary", "count")])

    assert (page.summary_count, page.total, page.has_next) == (True, 7, False)


def test_everything_gets_the_patient_compartment(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    encounter = {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"}}
    # A server may add resources of other patients' compartments (HAPI does): left out.
    other = {"resourceType": "Encounter", "id": "e2", "subject": {"reference": "Patient/p2"}}
    route = server.get("/Patient/p1/$everything").respond(
        200,
        json=bundle({"resource": stored()}, {"resource": encounter}, {"resource": other}, total=3),
    )

    page = store.everything("p1", count=50, offset=0)

    # The hub reads the server's pages itself, to leave out the other patients' resources.
    assert (sent(route).url.params["_count"], sent(route).url.params["_offset"]) == ("1000", "0")
    assert [r["id"] for r in page.matches] == ["p1", "e1"]
    assert (page.total, page.has_next) == (2, False)


# --- history ------------------------------------------------------------------------------------
def test_history_paging(store: RemoteStore, server: respx.MockRouter) -> None:
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "total": 5,
        "entry": [
            {
                "fullUrl": f"{BASE}/Patient/p1",
                "request": {"method": "DELETE", "url": "Patient/p1/_history/4"},
                "response": {"status": "204", "lastModified": "2026-01-07T00:00:00Z"},
            },
            {"resource": stored(version="3"), "request": {"method": "PUT", "url": "Patient/p1"}},
        ],
    }
    route = server.get("/Patient/p1/_history").respond(200, json=history)

    page = store.history("Patient", "p1", since="2026-01-01", count=2, offset=1)

    params = sent(route).url.params
    assert (params["_count"], params["_offset"], params["_since"]) == ("2", "1", "2026-01-01")
    deleted, updated = page.entries
    assert (deleted.method, deleted.id, deleted.version_id) == ("DELETE", "p1", "4")
    assert deleted.resource is None and deleted.last_updated == "2026-01-07T00:00:00Z"
    assert (updated.method, updated.version_id, updated.resource) == ("PUT", "3", stored("p1", "3"))
    assert (page.total, page.offset, page.count, page.has_next) == (5, 1, 2, True)


def test_type_history_without_total_pages_by_next_link(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": stored()}],
        "link": [{"relation": "next", "url": f"{BASE}/Patient/_history?page=2"}],
    }
    server.get("/Patient/_history").respond(200, json=history)

    page = store.history("Patient", count=1)

    assert page.has_next and page.total is None
    assert page.entries[0].method == "POST"


# --- transaction and batch ----------------------------------------------------------------------
def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


CREATE_ENTRY = {
    "fullUrl": "urn:uuid:6f0e3c4e-1f4b-4c57-9a3b-0c5d6e7f8a9b",
    "resource": PATIENT,
    "request": {"method": "POST", "url": "Patient"},
}


def test_transaction_posts_bundle_to_base(store: RemoteStore, server: respx.MockRouter) -> None:
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    route = server.post(f"{BASE}/").respond(200, json=answer)
    request = transaction(CREATE_ENTRY)

    assert store.transaction(request) == answer
    assert json.loads(sent(route).content) == request
    assert sent(route).headers["Prefer"] == "return=representation"


def test_batch_posts_bundle_to_base(store: RemoteStore, server: respx.MockRouter) -> None:
    answer = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"response": {"status": "200 OK"}, "resource": {**PATIENT, "id": "p1"}}],
    }
    route = server.post(f"{BASE}/").respond(200, json=answer)

    assert (
        store.batch(transaction({"request": {"method": "GET", "url": "Patient/p1"}}, kind="batch"))
        == answer
    )
    assert route.called


def test_invalid_batch_entry_is_answered_here_and_the_rest_is_sent(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    created = {"response": {"status": "201 Created", "location": "Patient/p9/_history/1"}}
    route = server.post(f"{BASE}/").respond(
        200, json={"resourceType": "Bundle", "type": "batch-response", "entry": [created]}
    )
    bad = {**CREATE_ENTRY, "resource": {**PATIENT, "birthDate": "not a date"}}

    answer = store.batch(transaction(bad, CREATE_ENTRY, kind="batch"))

    sent = json.loads(route.calls.last.request.content)
    assert [e["request"]["method"] for e in sent["entry"]] == ["POST"]
    assert sent["entry"][0]["resource"] == CREATE_ENTRY["resource"]
    first, second = answer["entry"]
    assert first["response"]["status"].startswith("400")
    issue = first["response"]["outcome"]["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[0].resource.birthDate")
    assert second == created


def test_batch_answered_with_too_few_entries_is_a_502(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    server.post(f"{BASE}/").respond(
        200, json={"resourceType": "Bundle", "type": "batch-response", "entry": []}
    )

    with pytest.raises(FhirError) as raised:
        store.batch(transaction(CREATE_ENTRY, kind="batch"))

    assert raised.value.status == 502


def test_invalid_transaction_entry_never_sent(store: RemoteStore, server: respx.MockRouter) -> None:
    route = server.post(f"{BASE}/").respond(200, json=transaction(kind="transaction-response"))
    bad = {**CREATE_ENTRY, "resource": {**PATIENT, "birthDate": "not a date"}}

    with pytest.raises(FhirError) as raised:
        store.transaction(transaction(CREATE_ENTRY, bad))

    assert raised.value.status == 400
    assert raised.value.issues[0].expression[0].startswith("Bundle.entry[1].resource")
    assert not route.called


def test_batch_sent_as_transaction_is_rejected(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    with pytest.raises(InvalidRequest):
        store.transaction(transaction(CREATE_ENTRY, kind="batch"))


# --- retries ------------------------------------------------------------------------------------
def test_retries_connection_error_then_succeeds(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.get("/Patient/p1")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=stored())]

    assert store.read("Patient", "p1")["id"] == "p1"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("pool full"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_plain_create_is_retried_when_nothing_reached_the_server(
    store: RemoteStore, server: respx.MockRouter, failure: Exception
) -> None:
    route = server.post("/Patient")
    route.side_effect = [failure, httpx.Response(201, json=stored())]

    assert store.create(PATIENT).status == 201
    assert route.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
def test_plain_create_is_not_retried_after_read_timeout(
    store: RemoteStore, server: respx.MockRouter, failure: Exception
) -> None:
    route = server.post("/Patient")
    route.side_effect = [failure, httpx.Response(201, json=stored())]

    with pytest.raises(UpstreamUnavailable) as raised:
        store.create(PATIENT)

    assert route.call_count == 1
    assert raised.value.status == 503
    assert "POST /fhir/Patient" in str(raised.value)


def test_conditional_create_is_retried_after_read_timeout(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post("/Patient")
    route.side_effect = [httpx.ReadTimeout("timed out"), httpx.Response(200, json=stored())]

    result = store.create(PATIENT, if_none_exist=f"identifier={NHS}")

    assert (result.status, route.call_count) == (200, 2)


def test_plain_create_is_not_retried_after_500(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post("/Patient").respond(500, json=outcome("exception", "NullPointer"))

    with pytest.raises(FhirError) as raised:
        store.create(PATIENT)

    assert (raised.value.status, route.call_count) == (500, 1)


def test_read_is_retried_after_500_and_read_timeout(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.get("/Patient/p1")
    route.side_effect = [
        httpx.Response(500),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, json=stored()),
    ]

    assert store.read("Patient", "p1")["id"] == "p1"
    assert route.call_count == 3


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_plain_create_is_retried_after_overload_statuses(
    store: RemoteStore, server: respx.MockRouter, status: int
) -> None:
    route = server.post("/Patient")
    route.side_effect = [httpx.Response(status), httpx.Response(201, json=stored())]

    assert store.create(PATIENT).status == 201
    assert route.call_count == 2


def test_transaction_of_idempotent_entries_is_retried_after_read_timeout(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    conditional = {
        **CREATE_ENTRY,
        "request": {**CREATE_ENTRY["request"], "ifNoneExist": f"identifier={NHS}"},
    }
    entries = [
        conditional,
        {"resource": stored(), "request": {"method": "PUT", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/p2"}},
        {"request": {"method": "DELETE", "url": "Patient/p3"}},
    ]
    route = server.post(f"{BASE}/")
    route.side_effect = [httpx.ReadTimeout("timed out"), httpx.Response(200, json=transaction())]

    store.transaction(transaction(*entries))

    assert route.call_count == 2


def test_transaction_with_plain_create_is_not_retried_after_read_timeout(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.post(f"{BASE}/")
    route.side_effect = [httpx.ReadTimeout("timed out"), httpx.Response(200, json=transaction())]

    with pytest.raises(UpstreamUnavailable):
        store.transaction(transaction(CREATE_ENTRY))

    assert route.call_count == 1


def test_429_honours_retry_after(server: respx.MockRouter, delays: list[float]) -> None:
    route = server.get("/Patient/p1")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json=stored()),
    ]

    with RemoteStore(BASE, retries=2, backoff_seconds=0.1) as store:
        store.read("Patient", "p1")

    assert delays == [7.0]


def test_backoff_delays_grow_and_are_capped(server: respx.MockRouter, delays: list[float]) -> None:
    server.get("/Patient/p1").mock(side_effect=httpx.ConnectError("refused"))

    with (
        RemoteStore(BASE, retries=6, backoff_seconds=1) as store,
        pytest.raises(UpstreamUnavailable),
    ):
        store.read("Patient", "p1")

    assert delays == [1, 2, 4, 8, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]


def test_gives_up_after_retries_with_503_outcome(
    store: RemoteStore, server: respx.MockRouter
) -> None:
    route = server.get("/Patient").respond(503)

    with pytest.raises(UpstreamUnavailable) as raised:
        store.search("Patient", [("identifier", NHS)])

    assert route.call_count == 4  # the first try and 3 retries
    issue = raised.value.outcome()["issue"][0]
    assert (raised.value.status, issue["code"]) == (503, "transient")
    assert "GET /fhir/Patient" in issue["diagnostics"] and "HTTP 503" in issue["diagnostics"]
    assert NHS_NUMBER not in issue["diagnostics"]


def test_retries_are_logged_without_the_query_string(
    store: RemoteStore, server: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route = server.get("/Patient")
    route.side_effect = [httpx.Response(502), httpx.Response(200, json=bundle())]

    with caplog.at_level(logging.WARNING, logger="hub.store._remote"):
        store.search("Patient", [("identifier", NHS)])

    retries = [r for r in caplog.records if r.name == "hub.store._remote"]
    assert len(retries) == 1 and retries[0].levelno == logging.WARNING
    message = retries[0].getMessage()
    assert "GET /fhir/Patient" in message and "HTTP 502" in message and "attempt 1" in message
    assert NHS_NUMBER not in message


# --- the client ---------------------------------------------------------------------------------
def test_connection_pool_is_reused(
    server: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[httpx.Client] = []

    class CountingClient(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            clients.append(self)

    monkeypatch.setattr(httpx, "Client", CountingClient)
    server.get("/Patient/p1").respond(200, json=stored())
    server.get("/Patient").respond(200, json=bundle())

    with RemoteStore(BASE) as store:
        store.read("Patient", "p1")
        store.search("Patient", [])
        store.read("Patient", "p1")

    assert len(clients) == 1
    assert clients[0].is_closed


def test_custom_transport_carries_every_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=stored())

    with RemoteStore(BASE, transport=httpx.MockTransport(handler)) as store:
        store.read("Patient", "p1")

    assert seen == ["GET /fhir/Patient/p1"]
    assert store.search_parameters.supports("Patient")
