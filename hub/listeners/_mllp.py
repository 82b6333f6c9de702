"""The MLLP listener: HL7 v2 messages over TCP, acknowledged once they are safely stored.

Each frame is read just far enough to know it is an HL7 v2 message with a control id (else AR,
not stored), stored in the inbox, and mapped at once so that a message that can never be
processed is answered AE (and kept as a dead letter) rather than AA. No ACK leaves before the
inbox transaction holding its message has committed.

Group commit: one task stores every frame waiting at that moment in one `Inbox.add` call, run on
a thread of its own, and frames arriving meanwhile wait for the next call; so many connections
share each fsync, and the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hub.mapping import Checker, Mapping
from hub.pipeline import Inbox, ItemStatus, NewItem, PipelineParts, Receipt, lane_of
from hub.sources import Hl7Message, SourceError, SourceRecord, message_header

from ._ack import NOT_HL7, REQUIRED_FIELD_MISSING, UNSUPPORTED_VERSION, AckCode, Problem, build_ack
from ._framing import Discarded, Frame, FrameDecoder, frame

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAME_BYTES = 16 << 20
_READ_SIZE = 1 << 16
_MAX_BATCH = 1000  # frames per inbox transaction at most
_STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Refused:
    """A frame answered AR and not stored: its header when one could be read, and why."""

    header: Hl7Message | None
    problem: Problem


@dataclass(frozen=True, slots=True)
class _Pending:
    """A message waiting for the next inbox transaction."""

    record: SourceRecord  # as read, named by its origin ("MLLP 127.0.0.1:50412")
    content: bytes  # the frame's bytes as received: what is stored
    control_id: str
    done: asyncio.Future[_Stored]


@dataclass(frozen=True, slots=True)
class _Stored:
    receipt: Receipt
    errors: list[str]  # what mapping found wrong (then the item was stored failed)


@dataclass(slots=True)
class _Connection:
    origin: str  # "MLLP 127.0.0.1:50412": how inbox items and the log name the sender
    writer: asyncio.StreamWriter
    busy: bool = False  # frames received are being answered: stop() lets them finish
    answers: Counter[str] = field(default_factory=Counter)


class MllpServer:
    """An asyncio MLLP server storing into `inbox` the messages `mapping` (an hl7v2 mapping)
    will process; `checker` (profile rules) is what the mapping is run with to decide AE."""

    def __init__(
        self,
        inbox: Inbox,
        mapping: Mapping | Callable[[], Mapping],
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        checker: Checker | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        # A callable gives the mapping as it is now (one fixed on disk while the hub runs).
        self._mapping = mapping if callable(mapping) else lambda: mapping
        first = self.mapping
        if first.format.name != "hl7v2":
            raise ValueError(f"MLLP carries HL7 v2: mapping {first.name} reads {first.format.name}")
        self.inbox = inbox
        self.host = host
        self.checker = checker
        self.max_frame_bytes = max_frame_bytes
        self._port = port
        self._server: asyncio.Server | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._committer: asyncio.Task[None] | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False
        # One thread for the inbox: its connection is reused, and transactions never overlap.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mllp-inbox")

    @property
    def mapping(self) -> Mapping:
        return self._mapping()

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when 0 was asked)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @classmethod
    def from_parts(cls, parts: PipelineParts) -> MllpServer:
        """The listener `parts.settings` describe (host, mllp_port, mllp_mapping, and
        max_body_bytes as the frame limit), checking messages as the workers do, so that AE
        means what a worker would decide."""
        settings = parts.settings
        return cls(
            parts.inbox,
            lambda: parts.mappings.get(settings.mllp_mapping),
            host=settings.host,
            port=settings.mllp_port,
            checker=parts.checker,
            max_frame_bytes=settings.max_body_bytes,
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_connection, self.host, self._port)
        self._committer = asyncio.create_task(self._commit_loop(), name="mllp-commit")
        self._port = self.port  # the port chosen, still known once stopped
        log.info("MLLP listening on %s:%d for mapping %s", self.host, self.port, self.mapping.name)

    async def serve_forever(self) -> None:
        """Serve until cancelled, then stop as `stop` does."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    async def stop(self) -> None:
        """Stop accepting; answer the frames already received; close every connection."""
        if self._server is None or self._closing:
            return
        self._closing = True
        self._server.close()
        for connection in self._connections.values():
            if not connection.busy:  # waiting for bytes: nothing of theirs is in flight
                connection.writer.close()  # its read ends, as if the peer had gone
        if self._connections:
            # A peer that stopped reading cannot hold the stop up for ever; its message,
            # stored or not, is unanswered, so it is sent again (a duplicate, answered AA).
            _, stuck = await asyncio.wait(self._connections, timeout=_STOP_GRACE_SECONDS)
            for task in stuck:
                self._connections[task].writer.transport.abort()
            await asyncio.gather(*stuck, return_exceptions=True)
        await self._server.wait_closed()
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
        self._executor.shutdown(wait=True)
        log.info("MLLP listener on port %d stopped", self.port)

    # -- connections -------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connection = _Connection(f"MLLP {_peer(writer)}", writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = connection
        log.info("%s: connected", connection.origin)
        try:
            await self._read_frames(reader, writer, connection)
        except ConnectionError:
            log.info("%s: connection lost", connection.origin)
        except StorageFailed:
            # Unanswered, the sender sends again (after its timeout, or on a new connection).
            log.error("%s: the inbox failed; closing the connection unanswered", connection.origin)
        except Exception:  # a fault in the hub: this connection ends, the others go on
            log.exception("%s: unexpected error; closing the connection", connection.origin)
        finally:
            del self._connections[task]
            writer.close()
            await _closed(writer)
            counts = ", ".join(f"{n} {code}" for code, n in sorted(connection.answers.items()))
            log.info("%s: closed (%s)", connection.origin, counts or "no messages")

    async def _read_frames(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        decoder = FrameDecoder(self.max_frame_bytes)
        while not self._closing:
            data = await reader.read(_READ_SIZE)
            if not data:
                break
            connection.busy = True
            for event in decoder.feed(data):
                await self._handle(event, writer, connection)
            connection.busy = False
        for event in decoder.close():
            await self._handle(event, writer, connection)

    async def _handle(
        self, event: Frame | Discarded, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        if isinstance(event, Discarded):
            log.warning("%s: %d bytes discarded: %s", connection.origin, event.count, event.reason)
            return
        code, ack = await self._answer(event, connection.origin)
        connection.answers[code] += 1
        writer.write(frame(ack))
        await writer.drain()

    # -- one message -------------------------------------------------------------------------

    async def _answer(self, received: Frame, origin: str) -> tuple[AckCode, bytes]:
        checked = self._check(received, origin)
        if isinstance(checked, _Refused):
            log.warning("%s: message refused (AR): %s", origin, checked.problem.text)
            return "AR", build_ack(checked.header, "AR", checked.problem)
        message: Hl7Message = checked.data
        control_id = message_header(message)["control_id"] or ""
        stored = await self._store(checked, received.content, control_id)
        receipt = stored.receipt
        if receipt.status != ItemStatus.FAILED:  # a resend is answered as its original was
            log.debug("%s: inbox item %d (duplicate: %s)", origin, receipt.id, receipt.duplicate)
            return "AA", build_ack(message, "AA")
        log.warning("%s: inbox item %d cannot be processed (AE): a dead letter", origin, receipt.id)
        first = stored.errors[0] if stored.errors else None
        text = first or f"inbox item {receipt.id} failed: see hub deadletters"
        return "AE", build_ack(message, "AE", Problem(text))

    def _check(self, received: Frame, origin: str) -> SourceRecord | _Refused:
        """The frame's one HL7 v2 message, or why it cannot be accepted."""
        if received.oversized:
            reason = (
                f"the message is {received.size} bytes, larger than the limit of "
                f"{self.max_frame_bytes} bytes"
            )
            return _Refused(self._header_only(received.content, origin), Problem(reason))
        found = list(self.mapping.format.read(io.BytesIO(received.content), origin))
        if len(found) != 1 or not isinstance(found[0], SourceRecord):
            problem = _unreadable(received.content, found)
            return _Refused(self._header_only(received.content, origin), problem)
        record = found[0]
        header = message_header(record.data)
        version = header["version"] or ""
        if not version.startswith("2."):
            reason = f"HL7 version {version or '(none)'} in MSH-12 is not supported: 2.x only"
            return _Refused(record.data, Problem(reason, UNSUPPORTED_VERSION, ("MSH", 12)))
        if not header["control_id"]:
            reason = "MSH-10 (message control id) is empty: a message needs one to be acknowledged"
            return _Refused(record.data, Problem(reason, REQUIRED_FIELD_MISSING, ("MSH", 10)))
        return SourceRecord(origin, 1, record.data, record.raw)

    def _header_only(self, content: bytes, origin: str) -> Hl7Message | None:
        """The frame's MSH alone, when it can be read: enough to address an AR."""
        first = content.lstrip(b"\r\n\t ").split(b"\r", 1)[0].split(b"\n", 1)[0]
        if not first.startswith(b"MSH"):
            return None
        found = list(self.mapping.format.read(io.BytesIO(first), origin))
        return found[0].data if len(found) == 1 and isinstance(found[0], SourceRecord) else None

    def _mapping_errors(
        self, mapping: Mapping, record: SourceRecord
    ) -> tuple[list[str], str, bytes | None]:
        """What running the mapping finds wrong (nothing: it can be processed), the dead
        letter's text, written as the workers write theirs, and the outcome kept for the
        worker when it can be processed."""
        try:
            mapped = mapping.map_record(record, check=self.checker)
        except Exception as exc:  # a fault in the hub, not the message: still answered AE
            log.error("%s: the mapping failed unexpectedly", record.file, exc_info=exc)
            errors = [f"the hub could not map the message ({type(exc).__name__})"]
            return errors, errors[0], None
        if mapped.errors:
            return mapped.errors, f"{mapped.name}: " + "; ".join(mapped.errors), None
        return [], "", mapped.to_bytes(mapping.version)

    # -- the inbox ---------------------------------------------------------------------------

    async def _store(self, record: SourceRecord, content: bytes, control_id: str) -> _Stored:
        done: asyncio.Future[_Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(record, content, control_id, done))
        return await done

    async def _commit_loop(self) -> None:
        """Stores whatever is waiting in one transaction; what arrives meanwhile waits for
        the next one."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < _MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                stored = await loop.run_in_executor(self._executor, self._map_and_store, batch)
            except Exception as exc:
                log.error("the inbox could not store %d messages", len(batch), exc_info=exc)
                for pending in batch:
                    pending.done.set_exception(StorageFailed())
                continue
            for pending, result in zip(batch, stored, strict=True):
                pending.done.set_result(result)

    def _map_and_store(self, batch: list[_Pending]) -> list[_Stored]:
        """Map each message, then store them all in one transaction. Mapping runs here, on
        the inbox's thread, rather than on the event loop: the loop keeps to the network, and
        the two do not take turns at the GIL for every message.

        A message mapping finds wrong is stored failed in that same transaction (a dead
        letter, replayable after a fix), so no worker can claim it in between."""
        mapping = self.mapping
        mapped = [self._mapping_errors(mapping, pending.record) for pending in batch]
        items = [
            NewItem(
                mapping.name,
                "mllp",
                pending.record.file,
                1,
                pending.content,
                message_id=pending.control_id,
                error=failure if errors else None,
                lane=lane_of(mapping.name, mapping.order_key(pending.record)),
                mapped=outcome,
            )
            for pending, (errors, failure, outcome) in zip(batch, mapped, strict=True)
        ]
        receipts = self.inbox.add(items)
        return [_Stored(r, errors) for r, (errors, _, _) in zip(receipts, mapped, strict=True)]


class StorageFailed(Exception):
    """The inbox could not store a message: it must not be acknowledged."""


def _unreadable(content: bytes, found: list[SourceRecord | SourceError]) -> Problem:
    errors = [r for r in found if isinstance(r, SourceError)]
    if not content.lstrip(b"\r\n\t ").startswith(b"MSH"):
        reason = "not an HL7 v2 message: the frame does not start with an MSH segment"
    elif errors:
        reason = f"not a readable HL7 v2 message: {errors[0].reason}"
    else:
        reason = f"the frame holds {len(found)} messages: MLLP carries one per frame"
    return Problem(reason, NOT_HL7)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


async def _closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


# -- running it --------------------------------------------------------------------------------


# -- a small client: tests, the demo, the benchmark --------------------------------------------


def send_messages(
    host: str, port: int, messages: Iterable[bytes], *, timeout: float = 30.0
) -> list[bytes]:
    """Send each message in a frame of its own on one connection, waiting for its ACK before
    sending the next (as MLLP senders do); the ACKs, unframed, in order."""
    acks: list[bytes] = []
    decoder = FrameDecoder(DEFAULT_MAX_FRAME_BYTES)
    waiting: deque[bytes] = deque()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for message in messages:
            sock.sendall(frame(message))
            while not waiting:
                data = sock.recv(_READ_SIZE)
                if not data:
                    raise ConnectionError("the server closed the connection without an ACK")
                waiting.extend(e.content for e in decoder.feed(data) if isinstance(e, Frame))
            acks.append(waiting.popleft())
    return acks
