"""The pipeline: the durable inbox, the workers that apply it, dead letters and replay.

Listeners `Inbox.add` what they receive and acknowledge once it returns; workers
(`WorkerPool` in a long-running process, `run_pipeline_until_idle` for `hub ingest`) claim items
lane by lane (a lane is one mapping, or the part of it about one person: each person's order
in each source is kept), map them, resolve the
person (hub.identity), and write each record's resources with a Provenance in one transaction.
"""

from ._inbox import LANES_PER_MAPPING, Inbox, InboxItem, ItemStatus, NewItem, Receipt, lane_of
from ._provenance import INBOX_SYSTEM, provenance_id
from ._worker import PipelineParts, Worker, WorkerPool, read_record, run_pipeline_until_idle

__all__ = [
    "INBOX_SYSTEM",
    "LANES_PER_MAPPING",
    "Inbox",
    "InboxItem",
    "ItemStatus",
    "NewItem",
    "PipelineParts",
    "Receipt",
    "Worker",
    "WorkerPool",
    "lane_of",
    "provenance_id",
    "read_record",
    "run_pipeline_until_idle",
]
