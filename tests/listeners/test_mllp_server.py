"""The MLLP listener over real sockets into a real SQLite inbox: what each sender hears back,
what is stored, and that the answer never comes before the message is safe."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hub.listeners import MllpServer, send_messages
from hub.listeners._framing import Frame, FrameDecoder, frame
from hub.mapping import Mapping
from hub.pipeline import Inbox, NewItem, PipelineParts, Receipt
from hub.settings import HubSettings
from hub.state import Database
from tests.listeners._helpers import MAPPINGS, ServerThread, example_messages, parse_ack, serving

FIRST = example_messages()[0]  # an A04 for Adaeze Okafor, MSH-10 RV5-0000101
BAD_DATE = example_messages("adt-bad-date.hl7")[1]  # PID-7 19851332: mapping rejects it


def with_control_id(message: bytes, control_id: str) -> bytes:
    return message.replace(b"|RV5-0000101|", f"|{control_id}|".encode(), 1)


def acks_of(sock: socket.socket, count: int) -> list[bytes]:
    decoder = FrameDecoder(1 << 20)
    found: list[bytes] = []
    while len(found) < count:
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        found += [e.content for e in decoder.feed(data) if isinstance(e, Frame)]
    return found


def msa(ack: bytes) -> list[str]:
    segment = next(s for s in ack.decode().split("\r") if s.startswith("MSA|"))
    return segment.split("|")


class CountingInbox(Inbox):
    """The real inbox, noting how many messages each transaction stored."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batches: list[int] = []

    def add(self, items: Sequence[NewItem]) -> list[Receipt]:
        receipts = super().add(items)
        self.batches.append(len(items))
        return receipts


def test_a_message_is_stored_and_then_answered_aa(inbox: Inbox, adt: Mapping) -> None:
    with serving(inbox, adt) as server:
        (ack,) = send_messages(*server.address, [FIRST])

    parsed = parse_ack(ack)
    assert parsed.msa.msa_1.value == "AA"
    assert parsed.msa.msa_2.value == "RV5-0000101"
    assert parsed.msh.msh_9.value == "ACK^A04^ACK"
    (item,) = inbox.list()
    assert (item.mapping, item.channel, item.line) == ("slam-epr/adt", "mllp", 1)
    assert item.origin.startswith("MLLP 127.0.0.1:")
    assert item.message_id == "RV5-0000101"
    assert item.raw == FIRST
    assert item.status == "pending"


def test_a_message_the_mapping_rejects_is_kept_failed_and_answered_ae(
    inbox: Inbox, adt: Mapping
) -> None:
    with serving(inbox, adt) as server:
        (ack,) = send_messages(*server.address, [BAD_DATE])

    parsed = parse_ack(ack)
    assert parsed.msa.msa_1.value == "AE"
    assert parsed.msa.msa_2.value == "RV5-0000702"
    assert parsed.msa.msa_3.value.startswith("Patient.birthDate from PID-7.1")
    assert "'19851332' is not a real date/time" in parsed.err.err_1.value
    (item,) = inbox.list()
    assert item.status == "failed"
    assert item.last_error is not None and "'19851332' is not a real date/time" in item.last_error


MSH = "MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260315100000||ADT^A04^ADT_A01"


@pytest.mark.parametrize(
    ("message", "echo", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", "", "does not start with an MSH segment"),
        (f"{MSH}|M-30|P|3.0\rPID|1\r".encode(), "M-30", "HL7 version 3.0 in MSH-12"),
        (f"{MSH}||P|2.4\rPID|1\r".encode(), "", "MSH-10 (message control id) is empty"),
        (b"MSH|^~\\&|EPR|RV5|HUB\rPID|1\r", "", "at least 12 are needed"),
        (f"{MSH}|M-31|P|2.4\r{MSH}|M-32|P|2.4\r".encode(), "M-31", "holds 2 messages"),
    ],
    ids=["not-hl7", "version-3", "no-control-id", "short-msh", "two-messages"],
)
def test_what_cannot_be_accepted_is_answered_ar_and_not_stored(
    inbox: Inbox, adt: Mapping, message: bytes, echo: str, reason: str
) -> None:
    with serving(inbox, adt) as server:
        (ack,) = send_messages(*server.address, [message])

    parsed = parse_ack(ack, validate=bool(echo))
    assert parsed.msa.msa_1.value == "AR"
    assert parsed.msa.msa_2.value == echo
    assert reason in parsed.err.to_er7()
    assert inbox.list() == []


def test_a_resend_is_answered_as_its_original_and_not_stored_again(
    inbox: Inbox, adt: Mapping
) -> None:
    with serving(inbox, adt) as server:
        first = send_messages(*server.address, [FIRST, BAD_DATE])
        again = send_messages(*server.address, [FIRST, BAD_DATE])

    assert [msa(a)[1:3] for a in first] == [["AA", "RV5-0000101"], ["AE", "RV5-0000702"]]
    assert [msa(a)[1:] for a in again] == [msa(a)[1:] for a in first]
    items = inbox.list()
    assert sorted(i.message_id for i in items) == ["RV5-0000101", "RV5-0000702"]
    assert [i.duplicates for i in items] == [1, 1]


def test_frames_cut_anyhow_with_garbage_between_are_answered_in_order(
    inbox: Inbox, adt: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [with_control_id(FIRST, f"CUT-{n}") for n in range(5)]
    with serving(inbox, adt) as server, socket.create_connection(server.address) as sock:
        wire = frame(messages[0])
        for i in range(len(wire)):  # one byte per segment on the wire
            sock.sendall(wire[i : i + 1])
        sock.sendall(b"\r\nnoise" + frame(messages[1]) + frame(messages[2]) + b"\n")
        sock.sendall(frame(messages[3])[:40])
        sock.sendall(frame(messages[3])[40:] + frame(messages[4]))
        acks = acks_of(sock, 5)

    assert [msa(a)[1:3] for a in acks] == [["AA", f"CUT-{n}"] for n in range(5)]
    assert len(inbox.list()) == 5
    discarded = [r.getMessage() for r in caplog.records if "discarded" in r.getMessage()]
    assert any(m.startswith("MLLP 127.0.0.1:") and ": 7 bytes discarded" in m for m in discarded)
    assert all(r.levelno == logging.WARNING for r in caplog.records if "discarded" in r.msg)


def test_an_oversized_frame_is_refused_and_the_connection_goes_on(
    inbox: Inbox, adt: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    big = with_control_id(FIRST, "BIG-1") + b"OBX|1|TX|||" + b"x" * 10_000 + b"\r"
    with serving(inbox, adt, max_frame_bytes=4096) as server:
        refused, accepted = send_messages(*server.address, [big, FIRST])

    assert msa(refused)[1:3] == ["AR", "BIG-1"]
    assert "larger than the limit of 4096 bytes" in msa(refused)[3]
    assert msa(accepted)[1:3] == ["AA", "RV5-0000101"]
    assert [i.message_id for i in inbox.list()] == ["RV5-0000101"]
    assert any("larger than the limit" in r.getMessage() for r in caplog.records)


def test_many_connections_at_once_share_inbox_transactions(
    state_db: Database, adt: Mapping
) -> None:
    inbox = CountingInbox(state_db)
    connections, each = 40, 25

    def sender(n: int) -> list[bytes]:
        messages = [with_control_id(FIRST, f"C{n}-{k}") for k in range(each)]
        return send_messages(*server.address, messages)

    with serving(inbox, adt) as server, ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(sender, range(connections)))

    for n, acks in enumerate(results):
        assert [msa(a)[1:3] for a in acks] == [["AA", f"C{n}-{k}"] for k in range(each)]
    assert sum(inbox.counts()["slam-epr/adt"].values()) == connections * each
    assert sum(inbox.batches) == connections * each
    assert len(inbox.batches) < connections * each / 2  # frames waiting were stored together


def test_every_ack_comes_after_its_message_is_committed(
    state_url: str, inbox: Inbox, adt: Mapping
) -> None:
    path = state_url.removeprefix("sqlite:///")

    def sender(n: int) -> None:
        observer = sqlite3.connect(path)  # a connection of its own: sees only what committed
        try:
            for k in range(20):
                control_id = f"SEEN-{n}-{k}"
                (ack,) = send_messages(*server.address, [with_control_id(FIRST, control_id)])
                assert msa(ack)[1:3] == ["AA", control_id]
                row = observer.execute(
                    "SELECT status FROM inbox_items WHERE message_id = ?", (control_id,)
                ).fetchone()
                assert row == ("pending",)
        finally:
            observer.close()

    with serving(inbox, adt) as server, ThreadPoolExecutor(8) as pool:
        list(pool.map(sender, range(8)))


class GatedInbox(Inbox):
    """The real inbox, whose add waits until the test lets it go on."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def add(self, items: Sequence[NewItem]) -> list[Receipt]:
        self.entered.set()
        assert self.gate.wait(10)
        return super().add(items)


def test_stop_answers_the_frames_already_received(state_db: Database, adt: Mapping) -> None:
    inbox = GatedInbox(state_db)
    server = ServerThread(MllpServer(inbox, adt, port=0))
    with server, ThreadPoolExecutor(2) as pool:
        idle = socket.create_connection(server.address)
        sent = pool.submit(send_messages, *server.address, [FIRST])
        assert inbox.entered.wait(10)
        stopping = asyncio.run_coroutine_threadsafe(server.server.stop(), server.loop)
        inbox.gate.set()
        (ack,) = sent.result(10)
        stopping.result(10)
        assert _refused_soon(server.address)  # no longer accepting
        assert idle.recv(10) == b""  # the idle connection was closed
        idle.close()

    assert msa(ack)[1:3] == ["AA", "RV5-0000101"]
    assert [i.message_id for i in inbox.list()] == ["RV5-0000101"]


def _refused_soon(address: tuple[str, int]) -> bool:
    for _ in range(100):
        try:
            socket.create_connection(address, timeout=1).close()
        except ConnectionRefusedError:
            return True
        threading.Event().wait(0.02)
    return False


class FailingInbox(Inbox):
    def add(self, items: Sequence[NewItem]) -> list[Receipt]:
        raise sqlite3.OperationalError("disk I/O error")


def test_a_message_the_inbox_cannot_store_is_never_acknowledged(
    state_db: Database, adt: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = FailingInbox(state_db)
    with serving(inbox, adt) as server, pytest.raises(ConnectionError, match="without an ACK"):
        send_messages(*server.address, [FIRST])
    assert inbox.list() == []
    assert any("closing the connection unanswered" in r.getMessage() for r in caplog.records)


def test_the_listener_serves_as_the_settings_say(tmp_path: Path, state_url: str) -> None:
    settings = HubSettings(
        _env_file=None,
        data_dir=tmp_path,
        mllp_port=0,
        mappings_dir=MAPPINGS,
        database_url=state_url,
    )
    parts = PipelineParts.open(settings)

    async def main() -> list[bytes]:
        server = MllpServer.from_parts(parts)
        await server.start()
        try:
            return await asyncio.to_thread(
                send_messages, "127.0.0.1", server.port, [FIRST, BAD_DATE]
            )
        finally:
            await server.stop()

    try:
        acks = asyncio.run(main())
        assert [msa(a)[1] for a in acks] == ["AA", "AE"]
        assert sorted(i.status for i in parts.inbox.list()) == ["failed", "pending"]
    finally:
        parts.close()
