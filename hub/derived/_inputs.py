"""What the step reads for one patient, as data: the searches that gather it through the store
API (the same on both backends), and how the resources of the transaction being written take
the place of the ones found."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.store import MAX_PAGE_SIZE, Resource

from ._names import LEGAL_STATUS_PERIOD


@dataclass(frozen=True)
class Input:
    """One resource type the step reads: the search parameter that finds a patient's, the
    element that refers to the patient, and any further filter."""

    resource_type: str
    search_param: str
    patient_element: str
    filters: tuple[tuple[str, str], ...] = ()

    def params(self, patient_id: str) -> list[tuple[str, str]]:
        """The search for one patient's resources of this type."""
        return [
            (self.search_param, f"Patient/{patient_id}"),
            *self.filters,
            ("_count", str(MAX_PAGE_SIZE)),
            ("_total", "none"),
        ]


INPUTS: tuple[Input, ...] = (
    Input("EpisodeOfCare", "patient", "patient"),
    Input("CarePlan", "patient", "subject"),
    Input("RelatedPerson", "patient", "patient"),
    Input("Consent", "patient", "patient"),
    # Only a stay in progress has a current legal status. A stay that ends is in the
    # transaction that ends it, which `overlay` adds whatever its status: that dates the end.
    Input("Encounter", "patient", "subject", (("status", "in-progress"),)),
    Input("CareTeam", "patient", "subject"),
    Input("Flag", "patient", "subject"),
)
"""Besides these, the step needs the Patient itself (as it will be after the transaction)."""
_READ = frozenset(i.resource_type for i in INPUTS)


def affects(resource: Resource) -> bool:
    """Whether writing `resource` can change a patient's derived resources: an input of the
    step, except an Encounter with no legal status (most contacts), which none of them reads;
    a Patient (its registered practice) always does."""
    resource_type = resource.get("resourceType")
    if resource_type == "Encounter":
        return any(e.get("url") == LEGAL_STATUS_PERIOD for e in resource.get("extension", ()))
    return resource_type == "Patient" or resource_type in _READ


def overlay(
    patient_id: str, found: Iterable[Resource], written: Iterable[Resource]
) -> list[Resource]:
    """The inputs as they will be once the transaction commits: what the searches `found`, with
    each resource of the transaction (`written`, Patient references made literal) that is about
    this patient in place of the found one with the same business identifier, or added."""
    elements = {i.resource_type: i.patient_element for i in INPUTS}
    patient = f"Patient/{patient_id}"
    mine = [
        r
        for r in written
        if r.get("resourceType") in elements
        and (r.get(elements[r["resourceType"]]) or {}).get("reference") == patient
    ]
    replaced = {_business_key(r) for r in mine}
    return [r for r in found if _business_key(r) not in replaced] + mine


def conditional_url(resource: Resource) -> str:
    """Where the pipeline PUTs a derived resource: `CareTeam?identifier=system|value`."""
    identifier = resource["identifier"][0]
    return f"{resource['resourceType']}?identifier={identifier['system']}|{identifier['value']}"


def _business_key(resource: Resource) -> tuple[str, str]:
    found = resource.get("identifier") or []
    identifiers = found if isinstance(found, list) else [found]
    for identifier in identifiers:
        if identifier.get("system") and identifier.get("value"):
            return resource["resourceType"], f"{identifier['system']}|{identifier['value']}"
    return resource["resourceType"], f"id:{resource.get('id', '')}"
