"""FHIR R4 helpers shared by every step: errors, validation, dates, references."""

from ._dates import (
    MAX_MS,
    MIN_MS,
    DateFormatError,
    date_range,
    format_instant,
    http_date,
    instant_ms,
    now_ms,
)
from ._errors import (
    FhirError,
    InvalidRequest,
    InvalidResource,
    Issue,
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
    Unprocessable,
    UpstreamUnavailable,
    VersionConflict,
    operation_outcome,
)
from ._ids import new_id
from ._json import json_bytes, json_copy, json_text, parse_json_bytes
from ._references import LiteralReference, map_references, parse_reference
from ._uk import NHS_NUMBER_SYSTEM, nhs_number_is_valid, normalise_postcode
from ._validation import is_resource_type, is_valid_id, validate_resource

__all__ = [
    "MAX_MS",
    "MIN_MS",
    "NHS_NUMBER_SYSTEM",
    "DateFormatError",
    "FhirError",
    "InvalidRequest",
    "InvalidResource",
    "Issue",
    "LiteralReference",
    "PreconditionFailed",
    "ResourceGone",
    "ResourceNotFound",
    "Unprocessable",
    "UpstreamUnavailable",
    "VersionConflict",
    "date_range",
    "format_instant",
    "http_date",
    "instant_ms",
    "is_resource_type",
    "is_valid_id",
    "json_bytes",
    "json_copy",
    "json_text",
    "map_references",
    "new_id",
    "nhs_number_is_valid",
    "normalise_postcode",
    "now_ms",
    "operation_outcome",
    "parse_json_bytes",
    "parse_reference",
    "validate_resource",
]
