"""What routes receive through `Depends`: the store, the settings, the request body.

The app puts the store and the settings on `app.state`; routes never reach for globals, so a
wrapped store (access policy, audit) is whatever the app put there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from hub.fhir import FhirError
from hub.settings import HubSettings
from hub.store import FhirStore


def get_store(request: Request) -> FhirStore:
    return request.app.state.store


def get_settings(request: Request) -> HubSettings:
    return request.app.state.settings


Store = Annotated[FhirStore, Depends(get_store)]
Settings = Annotated[HubSettings, Depends(get_settings)]


def supported_type(resource_type: Annotated[str, Path()], store: Store) -> str:
    """The `{resource_type}` of the URL, if the store keeps that type; else 404."""
    if not store.search_parameters.supports(resource_type):
        raise FhirError(
            404,
            f"Resource type {resource_type!r} is not supported by this server",
            code="not-supported",
        )
    return resource_type


ResourceType = Annotated[str, Depends(supported_type)]


async def request_body(request: Request) -> bytes:
    """The whole request body (BodyLimitMiddleware stops it at `max_body_bytes`)."""
    return await request.body()


Body = Annotated[bytes, Depends(request_body)]
