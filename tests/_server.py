"""A real hub on a free local port, for tests that talk HTTP to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from hub.app import create_app
from hub.settings import HubSettings
from hub.store import FhirStore


@contextmanager
def running_hub(
    settings: HubSettings,
    *,
    store: FhirStore | None = None,
    app: FastAPI | None = None,
    pipeline: bool = False,
    startup_timeout: float = 15.0,
) -> Iterator[str]:
    """Serve `create_app(settings, store, pipeline=pipeline)` (or `app`) with uvicorn on
    127.0.0.1 in a background thread; yield its base URL (`http://127.0.0.1:PORT`) and stop it
    on exit. The pipeline (ingest, workers, MLLP) is left out unless asked for."""
    # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets that say it, and
    # without it each answer on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app if app is not None else create_app(settings, store, pipeline=pipeline),
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"hub-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the hub did not start (see the log above)")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
