"""An input (file, HTTP body) split into inbox items, one per record of its source format.

Each item's `raw` is enough to read that one record again on its own, so the worker needs
nothing but the item: a CSV row is stored behind its header line (`SourceRecord.context`).
Records the format cannot read become items with `error`: kept as dead letters, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO

from hub.mapping import Mapping
from hub.pipeline import Inbox, ItemStatus, NewItem, Receipt, lane_of
from hub.sources import Hl7Message, SourceError, SourceRecord, message_header

_CONTEXT_SEPARATOR = b"\r\n"  # CSV's own line ending (RFC 4180)


def read_items(mapping: Mapping, stream: BinaryIO, origin: str, channel: str) -> Iterator[NewItem]:
    """One item per record of `stream`, read as it is consumed (memory stays bounded by the
    largest record, not the input)."""
    for record in mapping.format.read(stream, origin, columns=mapping.columns):
        yield _new_item(mapping, channel, origin, record)


def _new_item(
    mapping: Mapping, channel: str, origin: str, record: SourceRecord | SourceError
) -> NewItem:
    if isinstance(record, SourceError):
        # Where the format cannot tell the unreadable record's bytes (a whole file unreadable),
        # the error text (file, line, reason) stands in for them, so the dead letter still
        # says what was lost and where.
        error = str(record)
        raw = record.raw or error.encode()
        return NewItem(mapping.name, channel, origin, record.line or 1, raw, error=error)
    raw = record.raw
    if record.context:
        raw = record.context + _CONTEXT_SEPARATOR + raw
    return NewItem(
        mapping.name,
        channel,
        origin,
        record.line,
        raw,
        message_id=_message_id(record),
        lane=lane_of(mapping.name, mapping.order_key(record)),
    )


def _message_id(record: SourceRecord) -> str | None:
    """An HL7 message's MSH-10 (how a resend is recognised); None for other formats."""
    if isinstance(record.data, Hl7Message):
        return message_header(record.data)["control_id"]
    return None


def add_in_batches(
    inbox: Inbox, items: Iterable[NewItem], batch_size: int
) -> Iterator[tuple[NewItem, Receipt]]:
    """Store `items` with one inbox transaction per batch; each item with its receipt."""
    iterator = iter(items)
    while batch := list(islice(iterator, batch_size)):
        yield from zip(batch, inbox.add(batch), strict=True)


@dataclass(slots=True)
class IngestCounts:
    """How the records of one input were stored."""

    accepted: int = 0  # new in the inbox, waiting for a worker
    duplicates: int = 0  # already there (a resend, the same file again): not stored twice
    failed: int = 0  # dead letters: unreadable, or sent again after its first copy failed

    def count(self, receipt: Receipt) -> None:
        # A resend of a dead letter is still a record that failed, not one safely handled.
        if receipt.status == ItemStatus.FAILED:
            self.failed += 1
        elif receipt.duplicate:
            self.duplicates += 1
        else:
            self.accepted += 1

    def __iadd__(self, other: IngestCounts) -> IngestCounts:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.failed += other.failed
        return self
