"""Create, read, vread, update, delete and history: every change is a new version.

Each test runs for every resource type the hub stores, on every backend, through the store API
and through HTTP.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from itertools import pairwise

import pytest

from hub.fhir import ResourceGone, ResourceNotFound
from hub.store import SQLiteStore
from tests.conformance._api import REGISTRY, Api
from tests.conformance._examples import RESOURCE_TYPES, changed, content, example


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tick() -> None:
    """Let the clock move on, so writes made one after another have distinct instants."""
    time.sleep(0.005)


@pytest.fixture(params=RESOURCE_TYPES)
def resource_type(request: pytest.FixtureRequest) -> str:
    return request.param


# --- create and read ----------------------------------------------------------------------------


def test_create_assigns_an_id_version_1_and_last_updated(api: Api, resource_type: str) -> None:
    resource = example(resource_type)

    written = api.create(resource)

    assert written.status == 201
    assert written.resource["resourceType"] == resource_type
    assert written.id
    assert written.version_id == "1"
    assert instant(written.last_updated)
    assert content(written.resource) == resource


def test_read_returns_the_current_version_as_created(api: Api, resource_type: str) -> None:
    resource = example(resource_type)
    written = api.create(resource)

    found = api.read(resource_type, written.id)

    assert found["id"] == written.id
    assert found["meta"]["versionId"] == "1"
    assert found["meta"]["lastUpdated"] == written.last_updated
    assert content(found) == resource


def test_a_client_assigned_id_is_kept_by_an_update_that_creates(
    api: Api, resource_type: str
) -> None:
    id = f"cf-{uuid.uuid4().hex}"

    written = api.update({**example(resource_type), "id": id})

    assert written.status == 201
    assert written.id == id
    assert written.version_id == "1"
    assert api.read(resource_type, id)["id"] == id


def test_read_of_an_unknown_id_is_404(api: Api, resource_type: str) -> None:
    with pytest.raises(ResourceNotFound) as raised:
        api.read(resource_type, f"never-{uuid.uuid4().hex}")
    assert raised.value.status == 404


# --- update and vread ---------------------------------------------------------------------------


def test_update_makes_a_new_version_and_moves_last_updated(api: Api, resource_type: str) -> None:
    created = api.create(example(resource_type))
    tick()

    updated = api.update(changed(created.resource))

    assert updated.status == 200
    assert updated.id == created.id
    assert updated.version_id == "2"
    assert instant(updated.last_updated) > instant(created.last_updated)
    assert api.read(resource_type, created.id) == updated.resource


def test_vread_returns_each_version_as_it_was(api: Api, resource_type: str) -> None:
    first = api.create(example(resource_type))
    second = api.update(changed(first.resource))
    third = api.update(changed(second.resource))

    assert api.vread(resource_type, first.id, "1") == first.resource
    assert api.vread(resource_type, first.id, "2") == second.resource
    assert api.vread(resource_type, first.id, "3") == third.resource
    assert content(api.vread(resource_type, first.id, "1")) != content(third.resource)


def test_vread_of_a_version_that_never_was_is_404(api: Api, resource_type: str) -> None:
    created = api.create(example(resource_type))

    with pytest.raises(ResourceNotFound):
        api.vread(resource_type, created.id, "2")


def test_every_version_moves_last_updated_forward(api: Api, resource_type: str) -> None:
    # No pause between the writes: a new version is never as old as the one it replaces.
    written = api.create(example(resource_type))
    instants = [instant(written.last_updated)]
    for _ in range(15):
        written = api.update(changed(written.resource))
        instants.append(instant(written.last_updated))

    assert written.version_id == "16"
    assert all(later > earlier for earlier, later in pairwise(instants))


def test_an_update_with_unchanged_content_makes_no_new_version(
    api: Api, resource_type: str
) -> None:
    created = api.create(example(resource_type))
    tick()

    again = api.update(created.resource)

    assert again.status == 200
    assert again.version_id == "1"
    assert again.last_updated == created.last_updated
    assert content(api.read(resource_type, created.id)) == content(created.resource)
    assert [v.version_id for v in api.history(resource_type, created.id)] == ["1"]


# --- delete -------------------------------------------------------------------------------------


def test_read_after_delete_is_410_gone(api: Api, resource_type: str) -> None:
    created = api.create(example(resource_type))

    api.delete(resource_type, created.id)

    with pytest.raises(ResourceGone) as raised:
        api.read(resource_type, created.id)
    assert raised.value.status == 410


def test_earlier_versions_can_still_be_read_after_delete(api: Api, resource_type: str) -> None:
    created = api.create(example(resource_type))

    api.delete(resource_type, created.id)

    assert api.vread(resource_type, created.id, "1") == created.resource
    with pytest.raises(ResourceGone):
        api.vread(resource_type, created.id, "2")  # the version that records the delete


def test_a_deleted_resource_is_no_longer_found_by_search(api: Api, resource_type: str) -> None:
    created = api.create(example(resource_type))
    assert api.search(resource_type, [("_id", created.id)]).ids == [created.id]

    api.delete(resource_type, created.id)

    assert api.search(resource_type, [("_id", created.id)]).ids == []


def test_an_update_after_delete_brings_the_resource_back_as_a_new_version(
    api: Api, resource_type: str
) -> None:
    created = api.create(example(resource_type))
    api.delete(resource_type, created.id)

    revived = api.update(changed(created.resource))

    assert revived.version_id == "3"
    assert api.read(resource_type, created.id) == revived.resource


def test_delete_of_an_unknown_id_succeeds_and_changes_nothing(api: Api, resource_type: str) -> None:
    missing = f"never-{uuid.uuid4().hex}"

    api.delete(resource_type, missing)

    with pytest.raises(ResourceNotFound):
        api.read(resource_type, missing)


# --- history ------------------------------------------------------------------------------------


def test_instance_history_lists_every_version_newest_first_including_the_delete(
    api: Api, resource_type: str
) -> None:
    first = api.create(example(resource_type))
    tick()
    second = api.update(changed(first.resource))
    tick()
    api.delete(resource_type, first.id)

    versions = api.history(resource_type, first.id)

    assert [(v.method, v.version_id) for v in versions] == [
        ("DELETE", "3"),
        ("PUT", "2"),
        ("POST", "1"),
    ]
    assert {v.id for v in versions} == {first.id}
    assert versions[0].resource is None
    assert versions[1].resource == second.resource
    assert versions[2].resource == first.resource


def test_type_history_lists_the_versions_of_every_resource_of_the_type(
    api: Api, resource_type: str
) -> None:
    a = api.create(example(resource_type))
    tick()
    b = api.create(example(resource_type))
    tick()
    a2 = api.update(changed(a.resource))
    tick()
    api.delete(resource_type, b.id)

    versions = api.history(resource_type, since=a.last_updated)

    ours = [(v.id, v.version_id, v.method) for v in versions if v.id in (a.id, b.id)]
    assert ours == [
        (b.id, "2", "DELETE"),
        (a.id, "2", "PUT"),
        (b.id, "1", "POST"),
        (a.id, "1", "POST"),
    ]
    assert {v.resource_type for v in versions} == {resource_type}
    by_version = {(v.id, v.version_id): v.resource for v in versions}
    assert by_version[(a.id, "2")] == a2.resource
    assert by_version[(b.id, "1")] == b.resource


def test_history_of_an_unknown_id_is_404(api: Api, resource_type: str) -> None:
    with pytest.raises(ResourceNotFound):
        api.history(resource_type, f"never-{uuid.uuid4().hex}")


def test_a_new_version_is_dated_after_the_one_it_replaces_even_if_the_clock_stalls_or_steps_back(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The embedded store reads the wall clock for lastUpdated: here the clock stands still and
    # then steps back (as NTP may make it), which a quick succession of writes also shows.
    clock = iter([1_800_000_000_000, 1_800_000_000_000, 1_799_999_999_000])
    monkeypatch.setattr("hub.store._sqlite._session.now_ms", lambda: next(clock))
    with SQLiteStore(tmp_path / "fhir.sqlite", registry=REGISTRY) as store:
        first = store.create(example("Patient"))
        second = store.update(changed(first.resource or {}))
        third = store.update(changed(second.resource or {}))

    instants = [instant(w.last_updated or "") for w in (first, second, third)]
    assert instants[0] < instants[1] < instants[2]
