"""A real hub on a free local port, for tests that talk HTTP to it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from hub._serving import Served
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
    """Serve `create_app(settings, store, pipeline=pipeline)` (or `app`) on a free port of
    127.0.0.1 in a background thread; yield its base URL (`http://127.0.0.1:PORT`) and stop it
    on exit. The pipeline (ingest, workers, MLLP) is left out unless asked for."""
    app = app if app is not None else create_app(settings, store, pipeline=pipeline)
    with Served(app, settings, port=0, startup_timeout=startup_timeout) as served:
        yield served.base_url


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (for a server that must be told one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(**settings: str) -> dict[str, str]:
    """The environment for a `hub` command run as a process of its own: this one's without any
    HUB_ variable (a developer's own settings must not reach it), with `settings` added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(settings)
    return env
