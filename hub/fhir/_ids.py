"""Server-assigned resource ids."""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> str:
    """A UUIDv7 (RFC 9562 §5.7): unique, and ordered by creation time.

    Time order keeps each new id next to the last one in the store's indexes, so a large
    load writes pages near each other instead of all over the index, as random ids would.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # variant 10
    return str(uuid.UUID(int=value))
