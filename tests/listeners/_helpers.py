"""Helpers for listener tests: example messages, ACK parsing, an MLLP server in a thread."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hl7apy.core import Message
from hl7apy.parser import parse_message

from hub.listeners import MllpServer
from hub.mapping import Mapping
from hub.pipeline import Inbox
from hub.settings import REPOSITORY
from hub.sources import SourceRecord, source_format

MAPPINGS = REPOSITORY / "mappings"


def example_messages(name: str = "adt.hl7") -> list[bytes]:
    """The messages of an ADT example file, each as its segments joined by CR."""
    content = (MAPPINGS / "slam-epr" / "examples" / name).read_bytes()
    found = source_format("hl7v2").read(io.BytesIO(content), name)
    return [r.raw for r in found if isinstance(r, SourceRecord)]


class ServerThread:
    """An MllpServer served by an event loop in a background thread; `call` runs a coroutine
    function on that loop and waits for its result."""

    def __init__(self, server: MllpServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.server.port

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.call(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def serving(inbox: Inbox, mapping: Mapping, **options: Any) -> Iterator[ServerThread]:
    with ServerThread(MllpServer(inbox, mapping, host="127.0.0.1", port=0, **options)) as run:
        yield run


def parse_ack(ack: bytes, *, validate: bool = True) -> Message:
    """The ACK as hl7apy reads it; checked against its version's message structure too."""
    message = parse_message(ack.decode("utf-8"), find_groups=False)
    if validate:
        message.validate()
    return message
