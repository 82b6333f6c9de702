"""MLLP framing: a message travels as 0x0B, the message, 0x1C 0x0D.

TCP keeps no message boundaries, so the decoder is fed whatever each read returns and gives back
the frames that read completed: a frame may arrive split over many reads, many frames may come
in one read, and bytes outside any frame are counted and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_FS = 0x1C
_CR = 0x0D


def frame(message: bytes) -> bytes:
    """`message` wrapped for the wire."""
    return START_BLOCK + message + END_BLOCK


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame. Past the size limit only its first `limit` bytes are kept (enough to
    read the MSH and answer), and `size` says how large it really was."""

    content: bytes
    size: int

    @property
    def oversized(self) -> bool:
        return self.size > len(self.content)


@dataclass(frozen=True, slots=True)
class Discarded:
    """Bytes dropped: `count` of them, and why (the server logs it with the peer)."""

    count: int
    reason: str


Event = Frame | Discarded


class FrameDecoder:
    """Incremental decoder for one connection; `feed` each read, `close` at the end of input."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.limit = max_frame_bytes
        self._inside = False
        self._content = bytearray()
        self._size = 0  # the current frame's bytes so far, kept or not
        self._held_fs = False  # the last read ended in 0x1C: the 0x0D may open the next one
        self._garbage = 0

    @property
    def idle(self) -> bool:
        """True between frames: nothing received is waiting to be completed."""
        return not self._inside

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        pos = 0
        while pos < len(data):
            if self._inside:
                pos = self._continue_frame(data, pos, events)
            else:
                pos = self._skip_to_start(data, pos, events)
        return events

    def close(self) -> list[Event]:
        """What is left when the peer stops sending: garbage, or an unfinished frame."""
        events: list[Event] = []
        self._report_garbage(events)
        if self._inside:
            size = self._size + int(self._held_fs)
            events.append(Discarded(size, "an unfinished frame when the connection ended"))
            self._inside = False
        return events

    def _skip_to_start(self, data: bytes, pos: int, events: list[Event]) -> int:
        start = data.find(START_BLOCK, pos)
        if start < 0:
            self._garbage += len(data) - pos
            return len(data)
        self._garbage += start - pos
        self._report_garbage(events)
        self._open()
        return start + 1

    def _continue_frame(self, data: bytes, pos: int, events: list[Event]) -> int:
        if self._held_fs:
            self._held_fs = False
            if data[pos] == _CR:
                self._close_frame(events)
                return pos + 1
            self._keep(b"\x1c")  # a lone 0x1C is not an end block: it stays in the message
        end = data.find(END_BLOCK, pos)
        restart = data.find(START_BLOCK, pos, len(data) if end < 0 else end)
        if restart >= 0:
            # A start block inside a frame: the sender gave up on the unfinished frame (HL7
            # text never holds 0x0B). It is dropped, unanswered, so the sender sends it again.
            self._keep(data[pos:restart])
            events.append(Discarded(self._size, "an unfinished frame cut off by a new one"))
            self._open()
            return restart + 1
        if end < 0:
            chunk = data[pos:]
            if chunk[-1] == _FS:
                chunk, self._held_fs = chunk[:-1], True
            self._keep(chunk)
            return len(data)
        self._keep(data[pos:end])
        self._close_frame(events)
        return end + len(END_BLOCK)

    def _open(self) -> None:
        self._inside = True
        self._content = bytearray()
        self._size = 0

    def _keep(self, chunk: bytes) -> None:
        room = self.limit - len(self._content)
        if room > 0:
            self._content += chunk[:room]
        self._size += len(chunk)

    def _close_frame(self, events: list[Event]) -> None:
        events.append(Frame(bytes(self._content), self._size))
        self._inside = False
        self._content = bytearray()

    def _report_garbage(self, events: list[Event]) -> None:
        if self._garbage:
            events.append(Discarded(self._garbage, "bytes outside any frame"))
            self._garbage = 0
