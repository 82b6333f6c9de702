"""Survivorship, element by element: trust first, then the record's own time; identifiers gathered."""

from __future__ import annotations

from hub.identity import Clock, IdentityConfig
from hub.identity._survivorship import absorb, apply_record, element_of

CONFIG = IdentityConfig(("slam-epr", "gp", "district-nursing", "vcse"))
EPR_MRN = "https://fhir.hub.example/Id/RV5/mrn"
CLIENT_REF = "https://fhir.hub.example/Id/LEW-MIND/client-ref"


def _current() -> tuple[dict, dict[str, Clock]]:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "active": True,
        "meta": {"versionId": "3", "lastUpdated": "2026-04-01T00:00:00Z"},
        "identifier": [{"system": EPR_MRN, "value": "RV5A000567"}],
        "name": [{"family": "Haddad", "given": ["Samira"]}],
        "address": [{"postalCode": "SE4 1PE"}],
        "telecom": [{"system": "phone", "value": "07700 900456"}],
    }
    at = Clock("slam-epr", 2_000)
    clocks = {"identifier": at, "name": at, "address": at, "telecom": at}
    return patient, clocks


def _record(**elements: object) -> dict:
    return {"resourceType": "Patient", **elements}


def test_a_newer_record_of_the_same_source_wins() -> None:
    current, clocks = _current()
    incoming = _record(address=[{"postalCode": "SE13 7JL"}])
    merged, after = apply_record(current, clocks, incoming, Clock("slam-epr", 3_000), CONFIG)
    assert merged["address"] == [{"postalCode": "SE13 7JL"}]
    assert after["address"] == Clock("slam-epr", 3_000)


def test_an_older_record_never_overwrites_newer_demographics() -> None:
    current, clocks = _current()
    incoming = _record(address=[{"postalCode": "SE13 7JL"}])
    merged, after = apply_record(current, clocks, incoming, Clock("slam-epr", 1_000), CONFIG)
    assert merged["address"] == [{"postalCode": "SE4 1PE"}]
    assert after == clocks


def test_an_equal_time_applies() -> None:
    current, clocks = _current()
    incoming = _record(telecom=[{"system": "phone", "value": "020 7946 0000"}])
    merged, _ = apply_record(current, clocks, incoming, Clock("slam-epr", 2_000), CONFIG)
    assert merged["telecom"] == [{"system": "phone", "value": "020 7946 0000"}]


def test_a_less_trusted_source_never_overwrites_however_new() -> None:
    current, clocks = _current()
    incoming = _record(name=[{"family": "Hadad", "given": ["Samira"]}])
    merged, after = apply_record(current, clocks, incoming, Clock("vcse", 9_000), CONFIG)
    assert merged["name"] == [{"family": "Haddad", "given": ["Samira"]}]
    assert after["name"] == Clock("slam-epr", 2_000)


def test_a_more_trusted_source_wins_however_old() -> None:
    current, clocks = _current()
    clocks = {**clocks, "address": Clock("vcse", 5_000)}
    incoming = _record(address=[{"postalCode": "SE13 7JL"}])
    merged, _ = apply_record(current, clocks, incoming, Clock("gp", 1_000), CONFIG)
    assert merged["address"] == [{"postalCode": "SE13 7JL"}]


def test_a_less_trusted_source_fills_an_element_nobody_supplied() -> None:
    current, clocks = _current()
    incoming = _record(gender="female")
    merged, after = apply_record(current, clocks, incoming, Clock("vcse", None), CONFIG)
    assert merged["gender"] == "female"
    assert after["gender"] == Clock("vcse", None)


def test_a_record_without_time_counts_as_oldest() -> None:
    current, clocks = _current()
    incoming = _record(address=[{"postalCode": "SE13 7JL"}])
    merged, _ = apply_record(current, clocks, incoming, Clock("slam-epr", None), CONFIG)
    assert merged["address"] == [{"postalCode": "SE4 1PE"}]


def test_unlisted_sources_rank_below_every_listed_one() -> None:
    assert CONFIG.rank("vcse/clients") < CONFIG.rank("some-new-feed")
    assert CONFIG.rank("slam-epr/adt") == 0


def test_identifiers_are_gathered_from_every_source_once_each() -> None:
    current, clocks = _current()
    incoming = _record(
        identifier=[
            {"system": CLIENT_REF, "value": "C-000500"},
            {"system": EPR_MRN, "value": "RV5A000567"},
        ]
    )
    merged, _ = apply_record(current, clocks, incoming, Clock("vcse", 1), CONFIG)
    assert merged["identifier"] == [
        {"system": EPR_MRN, "value": "RV5A000567"},
        {"system": CLIENT_REF, "value": "C-000500"},
    ]


def test_active_link_and_meta_are_the_hubs_never_a_sources() -> None:
    current, clocks = _current()
    incoming = _record(
        active=False,
        link=[{"other": {"reference": "Patient/x"}, "type": "seealso"}],
        meta={"source": "https://fhir.hub.example/source/RV5#slam-epr/adt"},
    )
    merged, _ = apply_record(current, clocks, incoming, Clock("slam-epr", 9_000), CONFIG)
    assert merged["active"] is True
    assert "link" not in merged
    assert "meta" not in merged  # the store's version metadata is not written back either


def test_a_choice_element_is_one_element() -> None:
    current, clocks = _current()
    current["deceasedBoolean"] = False
    clocks["deceased[x]"] = Clock("vcse", 1)
    incoming = _record(deceasedDateTime="2026-04-01")
    merged, after = apply_record(current, clocks, incoming, Clock("slam-epr", 2), CONFIG)
    assert merged["deceasedDateTime"] == "2026-04-01"
    assert "deceasedBoolean" not in merged
    assert after["deceased[x]"] == Clock("slam-epr", 2)
    assert element_of("_birthDate") == "birthDate"
    assert element_of("multipleBirthInteger") == "multipleBirth[x]"


def test_a_merge_keeps_the_survivors_values_unless_the_retired_knew_better() -> None:
    survivor, survivor_clocks = _current()
    retired = {
        "resourceType": "Patient",
        "id": "p2",
        "identifier": [{"system": EPR_MRN, "value": "RV5A000777"}],
        "name": [{"family": "Haddad", "given": ["Sam"]}],  # same source, older
        "address": [{"postalCode": "SE13 7JL"}],  # same source, newer
        "gender": "female",  # the survivor has none
    }
    retired_clocks = {
        "name": Clock("slam-epr", 1_000),
        "address": Clock("slam-epr", 3_000),
        "gender": Clock("vcse", 1),
    }
    merged, after = absorb(survivor, survivor_clocks, retired, retired_clocks, CONFIG)
    assert merged["name"] == survivor["name"]
    assert merged["address"] == [{"postalCode": "SE13 7JL"}]
    assert merged["gender"] == "female"
    assert after["address"] == Clock("slam-epr", 3_000)
    assert after["gender"] == Clock("vcse", 1)
    assert merged["identifier"] == [
        {"system": EPR_MRN, "value": "RV5A000567"},
        {"system": EPR_MRN, "value": "RV5A000777", "use": "old"},
    ]
