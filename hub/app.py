"""The FastAPI application: the FHIR REST API over the store the settings choose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from hub.api import fhir_router, install_error_handling
from hub.api.capability import software_version
from hub.settings import HubSettings
from hub.store import FhirStore, open_store


def create_app(settings: HubSettings | None = None, store: FhirStore | None = None) -> FastAPI:
    """The hub's ASGI app.

    Without `store`, the app opens the one `settings` choose when it starts and closes it when
    it stops; a `store` given here belongs to the caller, who closes it.
    """
    settings = settings if settings is not None else HubSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        app.state.store = open_store(settings)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title="hub",
        summary="FHIR R4 interoperability hub for neighbourhood mental health care",
        version=software_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    if store is not None:
        app.state.store = store
    install_error_handling(app, max_body_bytes=settings.max_body_bytes)
    app.include_router(fhir_router, prefix="/fhir")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app
