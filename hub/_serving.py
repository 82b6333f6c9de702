"""Serving the app from a background thread, for `hub demo` (and anything else that must talk
to a hub it started itself)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from hub.settings import HubSettings


def port_or_any(host: str, port: int) -> int:
    """`port` when it is free on `host`, else 0 (the system then picks a free one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return 0
    return port


class Served:
    """`with Served(app, settings) as served:` the app answers at `served.base_url` (on
    `port`, by default settings.port, or any free port when that one is taken; 0: any free
    port) until the block ends."""

    def __init__(
        self,
        app: FastAPI,
        settings: HubSettings,
        *,
        port: int | None = None,
        startup_timeout: float = 60,
    ) -> None:
        self.app = app
        self._settings = settings
        self._port = settings.port if port is None else port
        self._timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    def __enter__(self) -> Served:
        host = self._settings.host
        # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets that say it.
        self._socket = sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port_or_any(host, self._port)))
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", access_log=False, log_config=None
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="hub-served", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("the hub did not start: see the log above")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        assert self._server is not None and self._thread is not None and self._socket
        self._server.should_exit = True
        self._thread.join(30)
        self._socket.close()

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    @property
    def mllp_host(self) -> str:
        return self._settings.host

    @property
    def mllp_port(self) -> int:
        return self.app.state.mllp.port

    @property
    def mllp_address(self) -> str:
        return f"{self.mllp_host}:{self.mllp_port}"

    def wait(self) -> None:
        """Until Ctrl-C."""
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
