"""The HTTP face of the FHIR API: statuses, headers, formats, errors, bundles and links.

FHIR semantics (what a search matches, how a transaction resolves references) are the
conformance suite's business (tests/conformance); these tests are about HTTP, against a real
uvicorn server and the embedded SQLite store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from hub.app import create_app
from hub.cli import main
from hub.fhir import validate_resource
from hub.settings import HubSettings
from hub.store import SearchParameterRegistry
from tests._server import running_hub

FHIR_JSON = "application/fhir+json; charset=utf-8"
SUBSETTED = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"


def unique_system() -> str:
    return f"https://example.org/test/{uuid.uuid4().hex}"


def patient(system: str | None = None, value: str = "1", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "Testperson", "given": ["Alex"]}],
        "gender": "unknown",
    }
    if system:
        resource["identifier"] = [{"system": system, "value": value}]
    resource.update(extra)
    return resource


def post_json(client: httpx.Client, url: str, body: Any, **headers: str) -> httpx.Response:
    return client.post(
        url,
        content=json.dumps(body),
        headers={"Content-Type": "application/fhir+json", **headers},
    )


def put_json(client: httpx.Client, url: str, body: Any, **headers: str) -> httpx.Response:
    return client.put(
        url,
        content=json.dumps(body),
        headers={"Content-Type": "application/fhir+json", **headers},
    )


def assert_outcome(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"], outcome
    if code is not None:
        assert outcome["issue"][0]["code"] == code, outcome
    return outcome


def assert_http_date(value: str) -> None:
    assert value.endswith(" GMT")
    assert parsedate_to_datetime(value).tzinfo is not None


@pytest.fixture
def created(client: httpx.Client) -> dict[str, Any]:
    response = post_json(client, "/Patient", patient(unique_system()))
    assert response.status_code == 201
    return response.json()


# --- create ---------------------------------------------------------------------------------------


def test_create_answers_201_with_location_etag_and_last_modified(
    client: httpx.Client, fhir_base: str
) -> None:
    response = post_json(client, "/Patient", patient(unique_system()))

    assert response.status_code == 201
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    assert body["resourceType"] == "Patient"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["location"] == f"{fhir_base}/Patient/{body['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert_http_date(response.headers["last-modified"])


def test_create_accepts_plain_application_json(client: httpx.Client) -> None:
    response = client.post("/Patient", json=patient())

    assert response.status_code == 201


def test_create_with_search_parameters_in_the_url_is_400_and_creates_nothing(
    client: httpx.Client,
) -> None:
    family = f"Urlcriteria{uuid.uuid4().hex[:8]}"
    body = {**patient(), "name": [{"family": family}]}

    response = post_json(client, f"/Patient?family={family}", body)

    assert response.status_code == 400
    assert "If-None-Exist" in response.json()["issue"][0]["diagnostics"]
    assert client.get("/Patient", params={"family": family}).json()["total"] == 0


def test_prefer_return_minimal_answers_with_headers_and_no_body(client: httpx.Client) -> None:
    response = post_json(client, "/Patient", patient(), Prefer="return=minimal")

    assert response.status_code == 201
    assert response.content == b""
    assert "/Patient/" in response.headers["location"]
    assert response.headers["etag"] == 'W/"1"'


def test_prefer_return_operation_outcome_answers_with_an_outcome(client: httpx.Client) -> None:
    response = post_json(client, "/Patient", patient(), Prefer="return=OperationOutcome")

    assert response.status_code == 201
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"


def test_conditional_create_that_matches_answers_200_with_the_existing_resource(
    client: httpx.Client,
) -> None:
    system = unique_system()
    first = post_json(client, "/Patient", patient(system, "42"))
    criteria = f"identifier={system}|42"

    again = post_json(client, "/Patient", patient(system, "42"), **{"If-None-Exist": criteria})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


# --- read, vread, update, delete ------------------------------------------------------------------


def test_read_answers_with_etag_and_last_modified(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    response = client.get(f"/Patient/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert_http_date(response.headers["last-modified"])


def test_update_answers_200_with_the_new_version(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    changed = {**created, "gender": "female"}

    response = put_json(client, f"/Patient/{created['id']}", changed)

    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["meta"]["versionId"] == "2"
    assert_http_date(response.headers["last-modified"])


def test_update_with_a_new_id_creates_and_answers_201(client: httpx.Client, fhir_base: str) -> None:
    new_id = f"api-{uuid.uuid4().hex[:12]}"

    response = put_json(client, f"/Patient/{new_id}", patient(id=new_id))

    assert response.status_code == 201
    assert response.headers["location"] == f"{fhir_base}/Patient/{new_id}/_history/1"


def test_update_whose_body_id_differs_from_the_url_is_400(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    response = put_json(client, f"/Patient/{created['id']}", {**created, "id": "someone-else"})

    outcome = assert_outcome(response, 400)
    assert outcome["issue"][0]["expression"] == ["Patient.id"]


def test_update_without_an_id_in_the_body_is_400(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    body = {k: v for k, v in created.items() if k != "id"}

    assert_outcome(put_json(client, f"/Patient/{created['id']}", body), 400)


def test_update_with_a_stale_if_match_is_412(client: httpx.Client, created: dict[str, Any]) -> None:
    url = f"/Patient/{created['id']}"
    changed = {**created, "gender": "male"}
    assert put_json(client, url, changed, **{"If-Match": 'W/"1"'}).status_code == 200

    stale = put_json(client, url, {**created, "gender": "female"}, **{"If-Match": 'W/"1"'})

    assert_outcome(stale, 412)


def test_conditional_update_creates_then_updates(client: httpx.Client) -> None:
    system = unique_system()
    url = f"/Patient?identifier={system}|7"

    first = put_json(client, url, patient(system, "7"))
    second = put_json(client, url, patient(system, "7", gender="male"))

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["etag"] == 'W/"2"'


def test_delete_answers_204_without_a_body_and_then_read_is_410(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    response = client.delete(f"/Patient/{created['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_outcome(client.get(f"/Patient/{created['id']}"), 410)


def test_vread_answers_with_that_version(client: httpx.Client, created: dict[str, Any]) -> None:
    put_json(client, f"/Patient/{created['id']}", {**created, "gender": "other"})

    response = client.get(f"/Patient/{created['id']}/_history/1")

    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json()["gender"] == created["gender"]


def test_unknown_id_is_404(client: httpx.Client) -> None:
    assert_outcome(client.get("/Patient/no-such-patient"), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/Observation"), ("GET", "/Observation/1"), ("POST", "/Observation")],
)
def test_a_resource_type_the_store_does_not_keep_is_404_not_supported(
    client: httpx.Client, method: str, url: str
) -> None:
    response = client.request(method, url, json={"resourceType": "Observation"})

    assert_outcome(response, 404, "not-supported")


# --- malformed and invalid bodies -----------------------------------------------------------------


def test_malformed_json_is_400_with_the_error_position(client: httpx.Client) -> None:
    body = b'{\n  "resourceType": "Patient",\n  "gender": }'

    response = client.post(
        "/Patient", content=body, headers={"Content-Type": "application/fhir+json"}
    )

    outcome = assert_outcome(response, 400, "structure")
    assert "line 3, column" in outcome["issue"][0]["diagnostics"]


def test_json_that_is_not_an_object_is_400(client: httpx.Client) -> None:
    assert_outcome(post_json(client, "/Patient", [patient()]), 400, "structure")


def test_invalid_resource_is_400_naming_the_fhirpath(client: httpx.Client) -> None:
    response = post_json(client, "/Patient", patient(birthDate="not-a-date"))

    outcome = assert_outcome(response, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", ())]
    assert "Patient.birthDate" in expressions


def test_body_of_another_resource_type_than_the_url_is_400(client: httpx.Client) -> None:
    response = post_json(client, "/Patient", {"resourceType": "Organization", "name": "X"})

    assert_outcome(response, 400)


def test_body_over_the_limit_with_content_length_is_413(
    client: httpx.Client, hub_settings: HubSettings
) -> None:
    div = "<div>" + "x" * hub_settings.max_body_bytes + "</div>"
    big = patient(text={"status": "generated", "div": div})

    response = post_json(client, "/Patient", big)

    assert_outcome(response, 413)


def test_chunked_body_over_the_limit_is_413(
    client: httpx.Client, hub_settings: HubSettings
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Patient", "text": {"status": "generated", "div": "<div>'
        for _ in range(hub_settings.max_body_bytes // 1024 + 8):
            yield b"x" * 1024
        yield b'</div>"}}'

    response = client.post(
        "/Patient", content=chunks(), headers={"Content-Type": "application/fhir+json"}
    )

    assert "content-length" not in response.request.headers
    assert_outcome(response, 413)


def test_a_chunked_body_within_the_limit_is_read(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield json.dumps(patient()).encode()

    response = client.post(
        "/Patient", content=chunks(), headers={"Content-Type": "application/fhir+json"}
    )

    assert response.status_code == 201


# --- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
def test_json_formats_are_served(client: httpx.Client, fmt: str) -> None:
    response = client.get("/metadata", params={"_format": fmt})

    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON


def test_format_with_an_unescaped_plus_is_understood(client: httpx.Client) -> None:
    response = client.get("/metadata?_format=application/fhir+json")

    assert response.status_code == 200


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "text/turtle"])
def test_a_format_other_than_json_is_406(client: httpx.Client, fmt: str) -> None:
    assert_outcome(client.get("/metadata", params={"_format": fmt}), 406)


def test_accept_asking_only_for_xml_is_406(client: httpx.Client) -> None:
    response = client.get("/metadata", headers={"Accept": "application/fhir+xml"})

    assert_outcome(response, 406)


def test_accept_preferring_xml_but_allowing_json_is_served(client: httpx.Client) -> None:
    accept = "application/fhir+xml, application/fhir+json;q=0.8, */*;q=0.1"

    assert client.get("/metadata", headers={"Accept": accept}).status_code == 200


def test_an_xml_body_is_415(client: httpx.Client) -> None:
    body = b'<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>'

    response = client.post(
        "/Patient", content=body, headers={"Content-Type": "application/fhir+xml"}
    )

    assert_outcome(response, 415)


def test_pretty_output_is_indented(client: httpx.Client, created: dict[str, Any]) -> None:
    pretty = client.get(f"/Patient/{created['id']}", params={"_pretty": "true"})
    compact = client.get(f"/Patient/{created['id']}")

    assert pretty.text.startswith('{\n  "resourceType"')
    assert "\n" not in compact.text
    assert pretty.json() == compact.json()


# --- routing --------------------------------------------------------------------------------------


def test_a_method_a_url_does_not_serve_is_405_naming_the_allowed_ones(
    client: httpx.Client,
) -> None:
    response = client.delete("/Patient")

    assert_outcome(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "PUT"}


def test_an_unknown_url_is_404(client: httpx.Client, hub_url: str) -> None:
    assert_outcome(client.get("/Patient/1/no/such/thing"), 404, "not-found")
    assert_outcome(httpx.get(f"{hub_url}/nowhere"), 404, "not-found")


def test_healthz(hub_url: str) -> None:
    response = httpx.get(f"{hub_url}/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- CapabilityStatement --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capability(fhir_base: str) -> dict[str, Any]:
    response = httpx.get(f"{fhir_base}/metadata")
    assert response.status_code == 200
    return response.json()


def test_metadata_is_a_valid_r4_capability_statement(
    capability: dict[str, Any], fhir_base: str
) -> None:
    validate_resource(capability, expected_type="CapabilityStatement")
    assert capability["fhirVersion"] == "4.0.1"
    assert capability["format"] == ["json"]
    assert capability["kind"] == "instance"
    assert capability["implementation"]["url"] == fhir_base
    assert capability["software"]["name"] == "hub"


def test_metadata_lists_exactly_the_registry_types_and_parameters(
    capability: dict[str, Any],
) -> None:
    registry = SearchParameterRegistry.default()
    resources = capability["rest"][0]["resource"]

    assert [r["type"] for r in resources] == registry.resource_types
    for entry in resources:
        params = registry.params_for(entry["type"])
        listed = {p["name"]: p["type"] for p in entry["searchParam"]}
        assert listed == {code: p.type for code, p in params.items()}
        assert all(p["documentation"] for p in entry["searchParam"])
        references = {f"{entry['type']}:{c}" for c, p in params.items() if p.type == "reference"}
        assert set(entry.get("searchInclude", ())) == references
        assert entry["conditionalDelete"] == "not-supported"


def test_metadata_lists_rev_includes_of_references_that_can_target_the_type(
    capability: dict[str, Any],
) -> None:
    by_type = {r["type"]: r for r in capability["rest"][0]["resource"]}

    assert "Encounter:patient" in by_type["Patient"]["searchRevInclude"]
    assert "Encounter:patient" not in by_type["Organization"].get("searchRevInclude", [])
    assert "Encounter:service-provider" in by_type["Organization"]["searchRevInclude"]


def test_metadata_lists_patient_everything_and_only_there(capability: dict[str, Any]) -> None:
    by_type = {r["type"]: r for r in capability["rest"][0]["resource"]}

    assert by_type["Patient"]["operation"] == [
        {
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        }
    ]
    assert all("operation" not in r for t, r in by_type.items() if t != "Patient")
    rest = capability["rest"][0]
    assert [i["code"] for i in rest["interaction"]] == ["transaction", "batch"]
    assert {p["name"] for p in rest["searchParam"]} == {
        "_count",
        "_offset",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
    }


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seven_patients(fhir_base: str) -> tuple[str, set[str]]:
    """Seven patients sharing one identifier system, to search for."""
    system = unique_system()
    ids = set()
    with httpx.Client(base_url=fhir_base) as http:
        for n in range(7):
            response = http.post("/Patient", json=patient(system, str(n)))
            assert response.status_code == 201
            ids.add(response.json()["id"])
    return system, ids


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", ())}


def test_next_links_page_through_every_match_exactly_once(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, ids = seven_patients
    response = client.get("/Patient", params={"identifier": f"{system}|", "_count": "3"})
    seen: list[str] = []
    pages = 0
    while True:
        assert response.status_code == 200
        bundle = response.json()
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 7
        seen += [e["resource"]["id"] for e in bundle.get("entry", ())]
        pages += 1
        if "next" not in links(bundle):
            break
        response = client.get(links(bundle)["next"])

    assert pages == 3
    assert sorted(seen) == sorted(ids)


def test_previous_links_page_back_to_the_first_page(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, _ = seven_patients
    params = {"identifier": f"{system}|", "_count": "3", "_sort": "_id"}
    first = client.get("/Patient", params=params).json()
    third = client.get("/Patient", params={**params, "_offset": "6"}).json()

    assert "previous" not in links(first)
    assert "next" not in links(third)
    second = client.get(links(third)["previous"]).json()
    back_to_first = client.get(links(second)["previous"]).json()
    ids = [e["resource"]["id"] for e in back_to_first["entry"]]
    assert ids == [e["resource"]["id"] for e in first["entry"]]


def test_search_entries_have_full_urls_and_search_mode(
    client: httpx.Client, fhir_base: str, seven_patients: tuple[str, set[str]]
) -> None:
    system, _ = seven_patients
    bundle = client.get("/Patient", params={"identifier": f"{system}|0"}).json()

    (entry,) = bundle["entry"]
    assert entry["fullUrl"] == f"{fhir_base}/Patient/{entry['resource']['id']}"
    assert entry["search"] == {"mode": "match"}
    assert links(bundle)["self"].startswith(f"{fhir_base}/Patient?")


def test_summary_count_answers_with_the_total_only(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, _ = seven_patients
    bundle = client.get("/Patient", params={"identifier": f"{system}|", "_summary": "count"})

    assert bundle.status_code == 200
    assert bundle.json()["total"] == 7
    assert "entry" not in bundle.json()


def test_elements_keeps_only_the_listed_elements_and_tags_subsetted(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, _ = seven_patients
    bundle = client.get(
        "/Patient", params={"identifier": f"{system}|", "_elements": "gender"}
    ).json()

    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert set(resource) == {"resourceType", "id", "meta", "gender"}
        assert {"system": SUBSETTED, "code": "SUBSETTED"} in resource["meta"]["tag"]
        assert resource["meta"]["versionId"]


def test_lenient_search_reports_an_unknown_parameter_in_an_outcome_entry(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, _ = seven_patients
    bundle = client.get("/Patient", params={"identifier": f"{system}|", "shoe-size": "9"}).json()

    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issue = outcomes[0]["resource"]["issue"][0]
    assert issue["severity"] == "warning"
    assert "shoe-size" in issue["diagnostics"]
    assert len([e for e in bundle["entry"] if e["search"]["mode"] == "match"]) == 7


def test_strict_search_rejects_an_unknown_parameter_with_400(client: httpx.Client) -> None:
    response = client.get(
        "/Patient", params={"shoe-size": "9"}, headers={"Prefer": "handling=strict"}
    )

    assert_outcome(response, 400)


def test_post_search_merges_form_and_query_parameters(
    client: httpx.Client, seven_patients: tuple[str, set[str]]
) -> None:
    system, ids = seven_patients

    response = client.post(
        "/Patient/_search", params={"_count": "100"}, data={"identifier": f"{system}|"}
    )

    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.json()["entry"]} == ids


def test_post_search_with_a_json_body_is_415(client: httpx.Client) -> None:
    response = client.post("/Patient/_search", json={"identifier": "x"})

    assert_outcome(response, 415)


# --- history, $everything, transaction ------------------------------------------------------------


def test_instance_history_lists_versions_newest_first_with_request_and_response(
    client: httpx.Client, fhir_base: str, created: dict[str, Any]
) -> None:
    url = f"/Patient/{created['id']}"
    put_json(client, url, {**created, "gender": "male"})
    client.delete(url)

    bundle = client.get(f"{url}/_history").json()

    assert bundle["type"] == "history"
    assert bundle["total"] == 3
    deleted, updated, first = bundle["entry"]
    assert deleted["request"] == {"method": "DELETE", "url": f"Patient/{created['id']}"}
    assert "resource" not in deleted
    assert updated["request"]["method"] == "PUT"
    assert updated["response"]["etag"] == 'W/"2"'
    assert updated["resource"]["gender"] == "male"
    assert first["request"] == {"method": "POST", "url": "Patient"}
    assert first["response"]["status"].startswith("201")
    assert first["fullUrl"] == f"{fhir_base}/Patient/{created['id']}"
    assert first["response"]["lastModified"] == created["meta"]["lastUpdated"]


def test_type_history_pages_with_count_and_next_links(client: httpx.Client) -> None:
    post_json(client, "/Organization", {"resourceType": "Organization", "name": "A"})
    post_json(client, "/Organization", {"resourceType": "Organization", "name": "B"})

    first = client.get("/Organization/_history", params={"_count": "1"}).json()

    assert len(first["entry"]) == 1
    following = client.get(links(first)["next"]).json()
    assert following["type"] == "history"
    assert following["entry"][0]["fullUrl"] != first["entry"][0]["fullUrl"]
    assert "previous" in links(following)


def test_history_with_a_bad_since_is_400(client: httpx.Client) -> None:
    assert_outcome(client.get("/Patient/_history", params={"_since": "yesterday"}), 400)


def test_patient_everything_answers_with_a_searchset(
    client: httpx.Client, created: dict[str, Any]
) -> None:
    response = client.get(f"/Patient/{created['id']}/$everything")

    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert created["id"] in [e["resource"]["id"] for e in bundle["entry"]]
    assert "/Patient/" in links(bundle)["self"]


def test_transaction_bundle_answers_with_a_transaction_response(client: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": patient(unique_system()),
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }

    response = post_json(client, "", bundle)

    assert response.status_code == 200
    assert response.json()["type"] == "transaction-response"


def test_posting_a_collection_bundle_to_the_base_is_400(client: httpx.Client) -> None:
    response = post_json(client, "", {"resourceType": "Bundle", "type": "collection"})

    assert_outcome(response, 400)


# --- app wiring -----------------------------------------------------------------------------------


def test_public_base_url_is_used_for_location_headers(tmp_path) -> None:
    settings = HubSettings(
        _env_file=None, data_dir=tmp_path, public_base_url="https://hub.example.org/fhir/"
    )
    with running_hub(settings) as url:
        response = httpx.post(f"{url}/fhir/Patient", json=patient())

    assert response.headers["location"].startswith("https://hub.example.org/fhir/Patient/")


def test_an_unexpected_error_is_500_without_the_request_content(tmp_path) -> None:
    app = create_app(HubSettings(_env_file=None, data_dir=tmp_path), pipeline=False)

    def explode() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/explode", explode)
    with running_hub(app.state.settings, app=app) as url:
        response = httpx.get(f"{url}/explode", params={"nhs": "9990000018"})

    assert response.status_code == 500
    assert response.headers["content-type"] == FHIR_JSON
    assert "secret" not in response.text
    assert "9990000018" not in response.text
    assert response.json()["issue"][0]["code"] == "exception"


# --- command line ---------------------------------------------------------------------------------


def test_hub_serve_help_describes_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])

    assert result.exit_code == 0, result.output
    assert "--host" in result.output
    assert "--port" in result.output


def test_hub_version() -> None:
    result = CliRunner().invoke(main, ["--version"])

    assert result.exit_code == 0
    assert "hub" in result.output
