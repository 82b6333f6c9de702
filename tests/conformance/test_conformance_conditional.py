"""Conditional create (If-None-Exist), conditional update (PUT Type?criteria) and optimistic
locking (If-Match): they act on exactly one match, or refuse."""

from __future__ import annotations

import pytest

from hub.fhir import InvalidRequest, PreconditionFailed
from tests.conformance._api import Api
from tests.conformance._examples import IDENTIFIED_TYPES, changed, content, example


@pytest.fixture(params=IDENTIFIED_TYPES)
def resource_type(request: pytest.FixtureRequest) -> str:
    return request.param


def by_identifier(api: Api, resource_type: str, system: str, value: str = "1") -> list[str]:
    return api.search(resource_type, [("identifier", f"{system}|{value}")]).ids


# --- conditional create -------------------------------------------------------------------------


def test_conditional_create_with_no_match_creates(
    api: Api, resource_type: str, system: str
) -> None:
    written = api.create(example(resource_type, system), if_none_exist=f"identifier={system}|1")

    assert written.status == 201
    assert by_identifier(api, resource_type, system) == [written.id]


def test_conditional_create_with_one_match_returns_it_and_writes_nothing(
    api: Api, resource_type: str, system: str
) -> None:
    existing = api.create(example(resource_type, system))

    again = api.create(
        changed(example(resource_type, system)), if_none_exist=f"identifier={system}|1"
    )

    assert again.status == 200
    assert again.id == existing.id
    assert again.version_id == existing.version_id
    assert content(again.resource) == content(existing.resource)
    assert by_identifier(api, resource_type, system) == [existing.id]
    assert api.read(resource_type, existing.id) == existing.resource


def test_conditional_create_with_several_matches_is_412_and_writes_nothing(
    api: Api, resource_type: str, system: str
) -> None:
    first = api.create(example(resource_type, system))
    second = api.create(example(resource_type, system))

    with pytest.raises(PreconditionFailed) as raised:
        api.create(example(resource_type, system), if_none_exist=f"identifier={system}|1")

    assert raised.value.status == 412
    assert sorted(by_identifier(api, resource_type, system)) == sorted([first.id, second.id])


def test_conditional_create_matches_on_every_criterion(api: Api, system: str) -> None:
    api.create(example("Patient", system), if_none_exist=f"identifier={system}|1")

    # The new resource meets its own criteria: HAPI refuses a conditional create that does not
    # (HAPI-0929), which FHIR R4 neither requires nor forbids.
    other = api.create(
        {**example("Patient", system), "gender": "female"},
        if_none_exist=f"identifier={system}|1&gender=female",
    )

    assert other.status == 201
    assert len(by_identifier(api, "Patient", system)) == 2


@pytest.mark.parametrize("write", ["create", "update"])
def test_a_conditional_write_that_would_create_what_its_criteria_cannot_find_is_refused(
    api: Api, system: str, write: str
) -> None:
    """Created, it could never be found by the same criteria: every replay would make another.
    HAPI refuses it (HAPI-0929), and so does the embedded store."""
    resource = example("Patient", system)  # identifier system|1
    with pytest.raises(InvalidRequest):
        if write == "create":
            api.create(resource, if_none_exist=f"identifier={system}|2")
        else:
            api.conditional_update("Patient", f"identifier={system}|2", resource)

    assert by_identifier(api, "Patient", system, "1") == []
    assert by_identifier(api, "Patient", system, "2") == []


@pytest.mark.parametrize(
    ("criteria", "meets"),
    [
        ("identifier={system}|{value}", True),
        ("identifier={value}", True),  # any system
        ("identifier={system}|", True),  # any value of the system
        ("identifier={system}|other,{system}|{value}", True),
        ("identifier={system}|other,{system}|another", False),
        ("identifier={system}|{value}&gender=female", True),
        ("identifier={system}|{value}&gender=male", False),
        ("identifier={system}|{value}&family=Testwell", True),  # not only tokens
        ("identifier={system}|{value}&family=Other", False),
    ],
)
def test_a_conditional_create_is_checked_against_every_form_of_its_criteria(
    api: Api, system: str, criteria: str, meets: bool
) -> None:
    value = system.rsplit("/", 1)[-1]  # unique: `identifier=value` finds no other test's
    resource = example("Patient", system, value=value) | {"gender": "female"}
    if_none_exist = criteria.format(system=system, value=value)

    if meets:
        assert api.create(resource, if_none_exist=if_none_exist).status == 201
        assert len(by_identifier(api, "Patient", system, value)) == 1
    else:
        with pytest.raises(InvalidRequest):
            api.create(resource, if_none_exist=if_none_exist)
        assert by_identifier(api, "Patient", system, value) == []


# --- conditional update -------------------------------------------------------------------------


def test_conditional_update_with_no_match_creates(
    api: Api, resource_type: str, system: str
) -> None:
    written = api.conditional_update(
        resource_type, f"identifier={system}|1", example(resource_type, system)
    )

    assert written.status == 201
    assert written.version_id == "1"
    assert by_identifier(api, resource_type, system) == [written.id]


def test_conditional_update_with_one_match_updates_that_resource(
    api: Api, resource_type: str, system: str
) -> None:
    existing = api.create(example(resource_type, system))
    other = api.create(example(resource_type, system, value="2"))
    new_content = changed(example(resource_type, system))

    written = api.conditional_update(resource_type, f"identifier={system}|1", new_content)

    assert written.status == 200
    assert written.id == existing.id
    assert written.version_id == "2"
    assert content(api.read(resource_type, existing.id)) == content({**new_content})
    assert api.read(resource_type, other.id) == other.resource
    assert by_identifier(api, resource_type, system) == [existing.id]


def test_conditional_update_with_several_matches_is_412_and_changes_nothing(
    api: Api, resource_type: str, system: str
) -> None:
    first = api.create(example(resource_type, system))
    second = api.create(example(resource_type, system))

    with pytest.raises(PreconditionFailed):
        api.conditional_update(
            resource_type, f"identifier={system}|1", changed(example(resource_type, system))
        )

    assert api.read(resource_type, first.id) == first.resource
    assert api.read(resource_type, second.id) == second.resource


# --- If-Match -----------------------------------------------------------------------------------


def test_update_with_the_current_version_in_if_match_succeeds(
    api: Api, resource_type: str, system: str
) -> None:
    created = api.create(example(resource_type, system))

    updated = api.update(changed(created.resource), if_match='W/"1"')

    assert updated.status == 200
    assert updated.version_id == "2"


def test_update_with_a_stale_if_match_is_412_and_changes_nothing(
    api: Api, resource_type: str, system: str
) -> None:
    created = api.create(example(resource_type, system))
    current = api.update(changed(created.resource), if_match='W/"1"')

    with pytest.raises(PreconditionFailed) as raised:
        api.update(changed(current.resource), if_match='W/"1"')

    assert raised.value.status == 412
    assert api.read(resource_type, created.id) == current.resource


def test_two_writers_holding_the_same_version_cannot_both_update(api: Api, system: str) -> None:
    created = api.create(example("Patient", system))
    mine = {**created.resource, "gender": "female"}
    theirs = {**created.resource, "gender": "male"}

    api.update(mine, if_match=f'W/"{created.version_id}"')
    with pytest.raises(PreconditionFailed):
        api.update(theirs, if_match=f'W/"{created.version_id}"')

    assert api.read("Patient", created.id)["gender"] == "female"
