"""MLLP framing: frames are found whatever way TCP cuts the bytes, and nothing else is kept."""

from __future__ import annotations

from hub.listeners._framing import Discarded, Event, Frame, FrameDecoder, frame

MESSAGE = b"MSH|^~\\&|EPR|RV5|HUB|INT|20260101||ADT^A01|M1|P|2.4\rPID|1||X\r"


def feed_all(decoder: FrameDecoder, *chunks: bytes) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def test_a_frame_split_byte_by_byte_is_one_frame() -> None:
    wire = frame(MESSAGE)
    events = feed_all(FrameDecoder(1 << 20), *(wire[i : i + 1] for i in range(len(wire))))
    assert events == [Frame(MESSAGE, len(MESSAGE))]


def test_the_end_block_split_between_reads_still_ends_the_frame() -> None:
    decoder = FrameDecoder(1 << 20)
    assert decoder.feed(b"\x0b" + MESSAGE + b"\x1c") == []
    assert not decoder.idle
    assert decoder.feed(b"\x0d") == [Frame(MESSAGE, len(MESSAGE))]
    assert decoder.idle


def test_many_frames_in_one_read_come_out_in_order() -> None:
    messages = [MESSAGE.replace(b"M1", f"M{n}".encode()) for n in range(50)]
    events = FrameDecoder(1 << 20).feed(b"".join(frame(m) for m in messages))
    assert [e.content for e in events if isinstance(e, Frame)] == messages


def test_bytes_between_frames_are_discarded_and_counted() -> None:
    decoder = FrameDecoder(1 << 20)
    events = feed_all(decoder, b"junk" + frame(MESSAGE) + b"\r\n", b"more" + frame(MESSAGE), b"!")
    assert events == [
        Discarded(4, "bytes outside any frame"),
        Frame(MESSAGE, len(MESSAGE)),
        Discarded(6, "bytes outside any frame"),
        Frame(MESSAGE, len(MESSAGE)),
    ]
    assert decoder.close() == [Discarded(1, "bytes outside any frame")]


def test_a_lone_0x1c_inside_a_frame_is_content() -> None:
    content = b"MSH|odd\x1cbyte"
    events = feed_all(FrameDecoder(1 << 20), b"\x0bMSH|odd\x1c", b"byte\x1c\x0d")
    assert events == [Frame(content, len(content))]


def test_an_oversized_frame_keeps_only_its_head_and_the_next_frame_is_intact() -> None:
    big = MESSAGE + b"OBX|" + b"x" * 5000 + b"\r"
    decoder = FrameDecoder(100)
    wire = frame(big) + frame(MESSAGE)
    events = feed_all(decoder, *(wire[i : i + 1000] for i in range(0, len(wire), 1000)))

    oversized, normal = events
    assert isinstance(oversized, Frame) and oversized.oversized
    assert oversized.size == len(big)
    assert oversized.content == big[:100]
    assert normal == Frame(MESSAGE, len(MESSAGE))
    assert not normal.oversized


def test_a_start_block_inside_a_frame_drops_the_unfinished_one() -> None:
    events = FrameDecoder(1 << 20).feed(b"\x0bMSH|cut short" + frame(MESSAGE))
    assert events == [
        Discarded(len(b"MSH|cut short"), "an unfinished frame cut off by a new one"),
        Frame(MESSAGE, len(MESSAGE)),
    ]


def test_an_unfinished_frame_at_the_end_is_reported() -> None:
    decoder = FrameDecoder(1 << 20)
    assert decoder.feed(b"\x0bMSH|half\x1c") == []
    assert decoder.close() == [
        Discarded(len(b"MSH|half\x1c"), "an unfinished frame when the connection ended")
    ]
