"""The CapabilityStatement (`GET /fhir/metadata`), generated from the search parameter table.

It lists exactly what the REST API does: when a route or a parameter is added, so is its line
here, and nothing is listed that the API does not do.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from hub.fhir import format_instant, now_ms
from hub.store import SearchParameter, SearchParameterRegistry

FHIR_VERSION = "4.0.1"

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch")

RESULT_PARAMETERS = (
    ("_count", "number", "Page size (at most 1000)."),
    ("_offset", "number", "Number of matches to skip: the page links use it."),
    ("_sort", "string", "Comma-separated parameters to sort by; `-` before one for descending."),
    ("_include", "string", "`Type:parameter[:target]` of a reference to include (`:iterate`)."),
    ("_revinclude", "string", "`Type:parameter[:target]` of resources referring to matches."),
    ("_summary", "token", "`count` for the total only; `false` for full resources."),
    ("_elements", "string", "Top-level elements to return; the result is tagged SUBSETTED."),
    ("_total", "token", "`none`, `estimate` or `accurate`."),
)

PATIENT_EVERYTHING = {
    "name": "everything",
    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
}


def software_version() -> str:
    try:
        return metadata.version("hub")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _documentation(param: SearchParameter) -> str:
    """The parameter's FHIRPath for its own type (the branches of the shared union)."""
    branches = [b.strip() for b in param.expression.text.split("|")]
    own = [
        b
        for b in branches
        if b.startswith((f"{param.resource_type}.", f"({param.resource_type}.", "Resource."))
    ]
    return f"{param.type} search on {' | '.join(own or branches)}"


def _search_params(registry: SearchParameterRegistry, resource_type: str) -> list[dict[str, Any]]:
    return [
        {"name": p.code, "type": p.type, "documentation": _documentation(p)}
        for p in registry.params_for(resource_type).values()
    ]


def _includes(registry: SearchParameterRegistry, resource_type: str) -> list[str]:
    return [
        f"{resource_type}:{p.code}"
        for p in registry.params_for(resource_type).values()
        if p.type == "reference"
    ]


def _revincludes(registry: SearchParameterRegistry, resource_type: str) -> list[str]:
    return [
        f"{source}:{p.code}"
        for source in registry.resource_types
        for p in registry.params_for(source).values()
        if p.type == "reference" and resource_type in p.target_types(registry)
    ]


def _resource(registry: SearchParameterRegistry, resource_type: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "not-supported",
    }
    includes = _includes(registry, resource_type)
    if includes:
        entry["searchInclude"] = includes
    revincludes = _revincludes(registry, resource_type)
    if revincludes:
        entry["searchRevInclude"] = revincludes
    entry["searchParam"] = _search_params(registry, resource_type)
    if resource_type == "Patient":
        entry["operation"] = [dict(PATIENT_EVERYTHING)]
    return entry


def capability_statement(registry: SearchParameterRegistry, *, base_url: str) -> dict[str, Any]:
    """The server's CapabilityStatement for a store with `registry`, served at `base_url`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(now_ms()),
        "publisher": "hub",
        "kind": "instance",
        "software": {"name": "hub", "version": software_version()},
        "implementation": {
            "description": "FHIR interoperability hub for neighbourhood mental health care",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(registry, t) for t in registry.resource_types],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "searchParam": [
                    {"name": name, "type": kind, "documentation": doc}
                    for name, kind, doc in RESULT_PARAMETERS
                ],
            }
        ],
    }
