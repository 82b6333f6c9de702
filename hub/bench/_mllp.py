"""`hub bench mllp`: sustained HL7 v2 ingestion over MLLP into the embedded store, end to end.

The hub runs as it would in production, in processes of its own: one `hub mllp` (listener, no
workers) and `--worker-processes` `hub work` processes, sharing the hub's state database and
the embedded store in a fresh data directory. This process only sends: synthetic ADT A04/A08
messages for invented people (NHS numbers from the 999 test range), each connection waiting for
its ACK before sending the next, as MLLP senders do.

Two phases: ACK latency at a steady offered rate (the issue: p99 under 50 ms at 200 msg/s),
then throughput, as fast as the ACKs come back, timed until the last message is applied to the
shared record (the issue: at least 1,000 messages/s end to end).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from hub.pipeline import Inbox
from hub.state import open_database

from ._cpus import usable_cpus
from ._store import percentile
from ._synthetic import patient_facts

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
TARGET_MESSAGES_PER_SECOND = 1_000
TARGET_P99_MS = 50.0


def adt_message(seed: int, number: int, patients: int) -> bytes:
    """Message `number`: an A04 (a contact) for patient number % patients, or an A08 (new
    details) for every fifth; each with its own control id and visit number."""
    facts = patient_facts(seed, number % patients)
    event = "A08" if number % 5 == 4 else "A04"
    made = (dt.datetime(2026, 1, 1) + dt.timedelta(seconds=number)).strftime("%Y%m%d%H%M%S")
    born = facts.birth_date.replace("-", "")
    sex = {"female": "F", "male": "M"}.get(facts.gender, "U")
    segments = [
        f"MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|{made}||ADT^{event}^ADT_A01|BENCH-{seed}-{number}"
        "|P|2.4|||AL|NE||UNICODE UTF-8",
        f"EVN|{event}|{made}",
        f"PID|1||{facts.nhs_number}^^^NHS^NH~{facts.mrn}^^^RV5^MR||{facts.family.upper()}^"
        f"{facts.given.upper()}^^^||{born}|{sex}|||{facts.street}^^{facts.town.upper()}^^"
        f"{facts.postcode}^GBR^H",
    ]
    if event == "A04":
        segments.append(
            "PV1|1|O|HEATHER-CLOSE^^^RV5||||C1234567^MENSAH^KWAME^^^DR|||MHC|||||||||"
            f"B{seed}V{number:08d}^^^RV5^VN|||||||||||||||||||||||||{made}|"
        )
    return START_BLOCK + "\r".join(segments).encode() + b"\r" + END_BLOCK


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, frame: bytes) -> float:
        """Send one frame, wait for its ACK; the seconds it took. Anything but AA fails."""
        started = time.perf_counter()
        self.writer.write(frame)
        await self.writer.drain()
        ack = await self.reader.readuntil(END_BLOCK)
        elapsed = time.perf_counter() - started
        if b"MSA|AA|" not in ack:
            raise click.ClickException(f"the hub did not accept a message: {ack!r}")
        return elapsed


async def _connect(port: int, count: int) -> list[_Connection]:
    pairs = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    return [_Connection(r, w) for r, w in pairs]


async def _steady(port: int, frames: list[bytes], rate: float, connections: int) -> list[float]:
    """Offer `rate` messages/s, spread over the connections; the ACK latency of each."""
    links = await _connect(port, connections)
    interval = connections / rate
    latencies: list[float] = []

    async def run(index: int, link: _Connection) -> None:
        start = time.perf_counter() + index * interval / connections
        for n, frame in enumerate(frames[index::connections]):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            latencies.append(await link.send(frame))

    await asyncio.gather(*(run(i, link) for i, link in enumerate(links)))
    for link in links:
        link.writer.close()
    return latencies


async def _flood(port: int, frames: list[bytes], connections: int) -> float:
    """Send everything as fast as the ACKs allow; the seconds until the last ACK."""
    links = await _connect(port, connections)
    started = time.perf_counter()

    async def run(index: int, link: _Connection) -> None:
        for frame in frames[index::connections]:
            await link.send(frame)

    await asyncio.gather(*(run(i, link) for i, link in enumerate(links)))
    for link in links:
        link.writer.close()
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _hub_processes(data_dir: Path, port: int, workers: int) -> Iterator[list[subprocess.Popen]]:
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_DATABASE_URL": "",
        "HUB_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "hub"]
    processes = [
        subprocess.Popen(
            [*command, "mllp", "--port", str(port), "--workers", "0"], env=env, stdout=sys.stderr
        )
    ]
    processes += [
        subprocess.Popen([*command, "work", "--workers", "1"], env=env, stdout=sys.stderr)
        for _ in range(workers)
    ]
    try:
        _wait_for_port(port, processes[0])
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException("`hub mllp` stopped while starting: see its output")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise click.ClickException(f"`hub mllp` did not listen on port {port} within {timeout} s")


def _wait_applied(inbox: Inbox, expected: int, timeout: float) -> float:
    """Wait until nothing is left to do; the moment that happened (perf_counter)."""
    deadline = time.monotonic() + timeout
    while inbox.pending_count():
        if time.monotonic() > deadline:
            raise click.ClickException(f"not applied within {timeout} s: {inbox.counts()}")
        time.sleep(0.02)
    done = time.perf_counter()
    counts = inbox.counts().get("slam-epr/adt", {})
    if counts.get("applied", 0) != expected:
        raise click.ClickException(f"expected {expected} applied messages, found {counts}")
    return done


def run_mllp_bench(
    *, messages: int, rate: float, seconds: float, connections: int, workers: int, seed: int
) -> dict[str, Any]:
    steady_count = int(rate * seconds)
    frames = [
        adt_message(seed, n, max(1, (steady_count + messages) // 3))
        for n in range(steady_count + messages)
    ]
    results: dict[str, Any] = {
        "cpus": usable_cpus(),
        "load_average_at_start": os.getloadavg()[0],
        "worker_processes": workers,
        "connections": connections,
    }
    with tempfile.TemporaryDirectory(prefix="hub-bench-mllp-") as tmp:
        data_dir = Path(tmp)
        port = _free_port()
        with _hub_processes(data_dir, port, workers):
            db = open_database(f"sqlite:///{data_dir / 'hub.db'}")
            inbox = Inbox(db)
            try:
                latencies = asyncio.run(_steady(port, frames[:steady_count], rate, connections))
                _wait_applied(inbox, steady_count, timeout=600)
                ordered = sorted(latencies)
                results["steady"] = {
                    "offered_per_second": rate,
                    "messages": steady_count,
                    "ack_p50_ms": percentile(ordered, 50) * 1000,
                    "ack_p95_ms": percentile(ordered, 95) * 1000,
                    "ack_p99_ms": percentile(ordered, 99) * 1000,
                    "ack_max_ms": ordered[-1] * 1000,
                }
                started = time.perf_counter()
                acked = asyncio.run(_flood(port, frames[steady_count:], connections))
                applied_at = _wait_applied(inbox, steady_count + messages, timeout=1800)
                results["flood"] = {
                    "messages": messages,
                    "acked_per_second": messages / acked,
                    "end_to_end_seconds": applied_at - started,
                    "end_to_end_per_second": messages / (applied_at - started),
                }
            finally:
                db.close()
    return results


def format_report(results: dict[str, Any]) -> str:
    steady, flood = results["steady"], results["flood"]
    p99_ok = steady["ack_p99_ms"] < TARGET_P99_MS
    rate_ok = flood["end_to_end_per_second"] >= TARGET_MESSAGES_PER_SECOND
    return "\n".join(
        [
            f"hub bench mllp: {results['cpus']} CPUs, load average at start "
            f"{results['load_average_at_start']:.2f}; 1 `hub mllp` + "
            f"{results['worker_processes']} `hub work` processes; embedded store",
            f"  ACK latency at {steady['offered_per_second']:.0f} msg/s offered "
            f"({steady['messages']} messages, {results['connections']} connections): "
            f"p50 {steady['ack_p50_ms']:.1f} ms, p95 {steady['ack_p95_ms']:.1f} ms, "
            f"p99 {steady['ack_p99_ms']:.1f} ms, max {steady['ack_max_ms']:.1f} ms "
            f"(target p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99_ok else 'NOT met'})",
            f"  throughput ({flood['messages']} messages): ACKed at "
            f"{flood['acked_per_second']:,.0f} msg/s; all applied after "
            f"{flood['end_to_end_seconds']:.1f} s = {flood['end_to_end_per_second']:,.0f} msg/s "
            f"end to end (target >= {TARGET_MESSAGES_PER_SECOND:,}: "
            f"{'met' if rate_ok else 'NOT met'})",
        ]
    )


@click.command("mllp")
@click.option(
    "--messages",
    type=click.IntRange(1),
    default=20_000,
    show_default=True,
    help="Messages sent as fast as possible, for the throughput figure.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1),
    default=200.0,
    show_default=True,
    help="Messages per second offered in the latency phase.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="How long the latency phase lasts.",
)
@click.option(
    "--connections",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Concurrent MLLP connections (each waits for its ACK, as senders do).",
)
@click.option(
    "--worker-processes",
    type=click.IntRange(1),
    default=None,
    help="`hub work` processes applying the inbox. Default: usable CPUs.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Synthetic data seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def mllp_bench_command(
    messages: int,
    rate: float,
    seconds: float,
    connections: int,
    worker_processes: int | None,
    seed: int,
    as_json: bool,
) -> None:
    """Measure MLLP ingestion end to end into the embedded store: ACK latency at a steady
    rate, then messages per second until everything sent is in the shared record."""
    results = run_mllp_bench(
        messages=messages,
        rate=rate,
        seconds=seconds,
        connections=connections,
        workers=worker_processes or usable_cpus(),
        seed=seed,
    )
    click.echo(json.dumps(results, indent=2) if as_json else format_report(results))
