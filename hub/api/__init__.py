"""The hub's HTTP APIs: the FHIR R4 REST API (`fhir_router`, mounted at `/fhir`)."""

from ._deps import get_settings, get_store
from ._errors import install_error_handling
from .capability import capability_statement
from .fhir import router as fhir_router

__all__ = [
    "capability_statement",
    "fhir_router",
    "get_settings",
    "get_store",
    "install_error_handling",
]
