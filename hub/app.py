"""The FastAPI application: the FHIR REST API over the store the settings choose, the ingest
API, and — while it runs — the MLLP listener and the pipeline workers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from hub.api import fhir_router, install_error_handling
from hub.api.capability import software_version
from hub.listeners import MllpServer, ingest_router
from hub.pipeline import PipelineParts, WorkerPool
from hub.settings import HubSettings
from hub.store import FhirStore, open_store

log = logging.getLogger(__name__)


def create_app(
    settings: HubSettings | None = None,
    store: FhirStore | None = None,
    *,
    pipeline: bool = True,
) -> FastAPI:
    """The hub's ASGI app.

    Without `store`, the app opens the one `settings` choose when it starts and closes it when
    it stops; a `store` given here belongs to the caller, who closes it. With `pipeline`, it
    also opens the hub's state database and runs the ingest API, `settings.workers` workers
    and (when `settings.mllp_enabled`) the MLLP listener while it runs.
    """
    settings = settings if settings is not None else HubSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if store is None:
                app.state.store = open_store(settings)
                stack.callback(app.state.store.close)
            if pipeline:
                await _start_pipeline(app, settings, stack)
            yield

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
    if pipeline:
        app.include_router(ingest_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


async def _start_pipeline(app: FastAPI, settings: HubSettings, stack: AsyncExitStack) -> None:
    parts = PipelineParts.open(settings, store=app.state.store)
    stack.callback(parts.close, store=False)
    app.state.inbox = parts.inbox
    app.state.mappings = parts.mappings
    pool = WorkerPool(parts, settings.workers)
    pool.start()
    stack.callback(pool.stop)
    app.state.workers = pool
    if settings.mllp_enabled:
        server = MllpServer.from_parts(parts)
        await server.start()
        stack.push_async_callback(server.stop)
        app.state.mllp = server
        log.info("MLLP listener on %s:%s (%s)", settings.host, server.port, settings.mllp_mapping)
