"""Listeners: bytes in from the sources, into the inbox, before anything else happens.

- MLLP (`MllpServer`, `MllpServer.from_parts`): HL7 v2 over TCP; AA once stored, AE when
  stored but it can never be processed, AR when it cannot be accepted; `send_messages` is a
  small client.
- HTTP (`ingest_router`): `POST /ingest/{mapping}` with a body in the source's own format.
- Files (`ingest_files`, the `hub ingest` command `ingest_command`).

`read_items` splits any input into inbox items, one per record, each readable again on its own
(`hub.pipeline.read_record`).
"""

from ._files import IngestSummary, ingest_command, ingest_files
from ._http import ingest_router
from ._mllp import MllpServer, send_messages
from ._split import IngestCounts, read_items

__all__ = [
    "IngestCounts",
    "IngestSummary",
    "MllpServer",
    "ingest_command",
    "ingest_files",
    "ingest_router",
    "read_items",
    "send_messages",
]
