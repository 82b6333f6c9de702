"""The store benchmark on two backends at once: what a FHIR server that others use too needs.

A FHIR server (the project's test HAPI) holds other people's data and keeps it between runs, so
a run must never count, search for or delete anything but its own. The run numbers its patients
from 0 on both sides, as on a fresh embedded store; every resource a comparison
run writes, on both backends alike, carries a tag of its own (`RunScope`); patients whose NHS
number some other Patient on the server already has are left out of the load on both sides
(two Patients with one NHS number would make `hub record` refuse, and other tests' conditional
references ambiguous); and the run's resources are deleted from the server afterwards.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.store import MAX_PAGE_SIZE, FhirStore, Resource

from ._synthetic import NHS_NUMBER_SYSTEM

BENCH_TAG_SYSTEM = "https://fhir.hub.example/CodeSystem/bench-run"
"""The system of every benchmark run's tag; the code is the run's own."""
DELETES_PER_TRANSACTION = 100


@dataclass(frozen=True)
class RunScope:
    """This run's own data: the tag on every resource it writes, and the NHS numbers of its
    patients that the server already has (those patients are left out of the load)."""

    code: str
    taken: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def new(cls, taken: Iterable[str] = ()) -> RunScope:
        return cls(f"store-{uuid.uuid4().hex}", frozenset(taken))

    @property
    def tag(self) -> dict[str, str]:
        return {"system": BENCH_TAG_SYSTEM, "code": self.code}

    @property
    def token(self) -> str:
        """The tag as a token search value: `system|code`."""
        return f"{BENCH_TAG_SYSTEM}|{self.code}"

    def owns(self, resource: Resource) -> bool:
        return self.tag in ((resource.get("meta") or {}).get("tag") or ())

    def scoped(self, bundle: Resource) -> Resource:
        """The Bundle without the entries of the patients whose NHS numbers are taken, each
        resource tagged.

        The synthetic entries come as a Patient followed by its related resources, so a related
        resource goes (or stays) with the Patient before it."""
        kept: list[dict[str, Any]] = []
        keep = True
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                keep = _nhs_number(resource) not in self.taken
            if keep:
                resource.setdefault("meta", {})["tag"] = [self.tag]
                kept.append(entry)
        return {**bundle, "entry": kept}


def _nhs_number(patient: Resource) -> str | None:
    return next((i["value"] for i in patient["identifier"] if _is_nhs_number(i)), None)


# --- the server's data that is not this run's ---------------------------------------------------
def nhs_numbers_on(store: FhirStore) -> set[str]:
    """Every NHS number some Patient on the server has."""
    numbers: set[str] = set()
    offset = 0
    while True:
        page = store.search(
            "Patient",
            [
                ("identifier", f"{NHS_NUMBER_SYSTEM}|"),
                ("_elements", "identifier"),
                ("_count", str(MAX_PAGE_SIZE)),
                ("_offset", str(offset)),
            ],
            strict=True,
        )
        for patient in page.matches:
            numbers.update(i["value"] for i in patient.get("identifier") or () if _is_nhs_number(i))
        if not page.has_next or not page.matches:
            return numbers
        offset += page.count


def _is_nhs_number(identifier: dict[str, Any]) -> bool:
    return identifier.get("system") == NHS_NUMBER_SYSTEM and "value" in identifier


# --- this run's data ----------------------------------------------------------------------------
def stored_counts(store: FhirStore, scope: RunScope, types: Iterable[str]) -> dict[str, int]:
    """How many resources of each type carry the run's tag: what the backend really holds."""
    counts = {}
    for resource_type in types:
        params = [("_tag", scope.token), ("_summary", "count")]
        counts[resource_type] = store.search(resource_type, params, strict=True).total or 0
    return counts


def remove_run(store: FhirStore, scope: RunScope, types: Iterable[str]) -> dict[str, Any]:
    """Delete every resource with the run's tag (strict searches: an unknown parameter would
    otherwise be ignored and the search match everybody's)."""
    started = time.perf_counter()
    removed = 0
    for resource_type in types:
        while True:
            params = [("_tag", scope.token), ("_elements", "id"), ("_count", str(MAX_PAGE_SIZE))]
            ids = [r["id"] for r in store.search(resource_type, params, strict=True).matches]
            if not ids:
                break
            for start in range(0, len(ids), DELETES_PER_TRANSACTION):
                chunk = ids[start : start + DELETES_PER_TRANSACTION]
                store.transaction(_deletes(resource_type, chunk))
            removed += len(ids)
    return {"resources": removed, "seconds": time.perf_counter() - started}


def _deletes(resource_type: str, ids: list[str]) -> Resource:
    entries = [{"request": {"method": "DELETE", "url": f"{resource_type}/{id}"}} for id in ids]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- side by side -------------------------------------------------------------------------------
def comparison_rows(embedded: dict[str, Any], remote: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline figures of the two sides, and embedded / remote for each."""
    figures: list[tuple[str, Any, Any]] = [
        ("writes (resources/s)", embedded["load"]["per_second"], remote["load"]["per_second"])
    ]
    for name, search in embedded["searches"].items():
        other = remote["searches"][name]
        for p in ("p50", "p95"):
            label = f"{_without_values(search['query'])} {p} ms"
            figures.append((label, search[f"{p}_ms"], other[f"{p}_ms"]))
    figures.append(("hub record p95 ms", embedded["record"]["p95_ms"], remote["record"]["p95_ms"]))
    return [
        {
            "name": name,
            "embedded": mine,
            "remote": theirs,
            "ratio": mine / theirs if theirs else None,
        }
        for name, mine, theirs in figures
    ]


def _without_values(query: str) -> str:
    """`Patient?family=<family>&birthdate=<birth date>` -> `Patient?family=...&birthdate=...`."""
    return re.sub(r"=[^&]*", "=...", query)


def format_comparison(results: dict[str, Any]) -> str:
    config, machine = results["config"], results["machine"]
    embedded, remote = results["backends"]["embedded"], results["backends"]["remote"]
    per_bundle = embedded["load"]["patients_per_bundle"]
    cleanup = results["remote_cleanup"]
    lines = [
        "hub bench store: the same load on the embedded store and on a FHIR server",
        f"  FHIR server   {config['fhir_url']}",
        f"  data          {config['patients_loaded']:,} synthetic patients on each side, each with"
        f" {config['related_per_patient']} related resources; seed {config['seed']}"
        f" ({config['patients_skipped']} of {config['patients']:,} left out: their NHS numbers"
        " were on the server already)",
        f"  transactions  {per_bundle} patients per Bundle (--batch {config['batch']}), "
        f"{config['writers']} writer process(es) on each side",
        f"  run tag       {config['run_tag']} on every resource; removed from the server "
        f"afterwards ({cleanup['resources']:,} resources, {cleanup['seconds']:,.1f} s)",
        f"  machine       {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable); load "
        f"average {embedded['load_average_start'][0]:.2f} before the embedded side, "
        f"{remote['load_average_start'][0]:.2f} before the server side, "
        f"{machine['load_average_end'][0]:.2f} at the end",
        "",
    ]
    for name, side in (("embedded", embedded), ("server", remote)):
        loaded = side["load"]
        stored = ", ".join(f"{t} {n:,}" for t, n in side["stored"].items())
        lines.append(
            f"  {name:<9} wrote {loaded['resources']:,} resources in {loaded['bundles']:,} "
            f"transactions in {loaded['wall_seconds']:,.1f} s; stored with the run tag: {stored}"
        )
    lines += [
        f"  searches      {config['searches']:,} of each kind and {config['searches']:,} "
        "hub record, for the same random patients on both sides",
        "",
    ]
    rows = results["comparison"]
    width = max(len(r["name"]) for r in rows)
    lines.append(f"  {'':<{width}}  {'embedded':>10}  {'FHIR server':>11}  {'embedded/server':>15}")
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(
            f"  {r['name']:<{width}}  {r['embedded']:>10,.2f}  {r['remote']:>11,.2f}  {ratio:>15}"
        )
    lines.append(
        "  (embedded/server above 1 for writes and below 1 for latencies: the embedded store "
        "is faster)"
    )
    return "\n".join(lines)
