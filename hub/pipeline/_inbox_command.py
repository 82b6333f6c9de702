"""`hub inbox`, `hub deadletters` and `hub replay`: look into the inbox and requeue from it.

They work on the state database the hub is configured with (HUB_DATABASE_URL, else hub.db in
HUB_DATA_DIR), the same one a running `hub serve` or `hub mllp` uses, so they can be run beside
it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from hub.settings import HubSettings
from hub.state import StateError, open_database

from ._inbox import Inbox, InboxItem, ItemStatus

_COLUMN_ORDER = ["pending", "processing", "waiting", "applied", "withheld", "failed"]
"""The statuses in the order an item goes through them."""
_WHERE_IT_RUNS = (
    "A running `hub serve`, `hub mllp` or `hub work` processes them within seconds; "
    "otherwise the next `hub ingest` (or `hub work`) does."
)


@contextmanager
def _open_inbox() -> Iterator[Inbox]:
    url = HubSettings().state_url
    try:
        db = open_database(url)
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield Inbox(db)
    finally:
        db.close()


@click.command("inbox")
def inbox_command() -> None:
    """Count the inbox's items per mapping and status.

    \b
    pending     to do, or to retry later (a peer was unavailable)
    processing  a worker has it now
    waiting     parked until what it needs arrives (e.g. its patient)
    applied     written to the shared record
    withheld    understood and deliberately not written (e.g. no consent)
    failed      a dead letter: `hub deadletters` lists them, `hub replay` requeues
    """
    with _open_inbox() as inbox:
        counts = inbox.counts()
    if not counts:
        click.echo("the inbox is empty")
        return
    rows = [[mapping, *(str(c.get(s, 0)) for s in _COLUMN_ORDER)] for mapping, c in counts.items()]
    totals = [sum(c.get(s, 0) for c in counts.values()) for s in _COLUMN_ORDER]
    rows.sort()
    rows.append(["total", *map(str, totals)])
    click.echo(_table(["mapping", *_COLUMN_ORDER], rows, right_from=1))


@click.command("deadletters")
@click.option("--mapping", "-m", default=None, help="Only this mapping's (e.g. slam-epr/adt).")
@click.option(
    "--limit", "-n", type=click.IntRange(1), default=50, show_default=True, help="Show at most N."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def deadletters_command(mapping: str | None, limit: int, as_json: bool) -> None:
    """List dead letters: inbox items that failed and need a person.

    Newest first, each with when it was received, its mapping, where it came from (origin
    and line), how often it was tried, and why it failed. Fix the cause (often a mapping),
    then `hub replay ID...` or `hub replay --all`.
    """
    with _open_inbox() as inbox:
        items = inbox.list(ItemStatus.FAILED, mapping=mapping, limit=limit)
        counts = inbox.counts()
    total = sum(c.get(ItemStatus.FAILED, 0) for m, c in counts.items() if mapping in (None, m))
    if as_json:
        click.echo(orjson.dumps([_dead_letter(item) for item in items]).decode())
        return
    if not items:
        click.echo("no dead letters" + (f" for {mapping}" if mapping else ""))
        return
    rows = [
        [
            str(item.id),
            _time(item.received_ms),
            item.mapping,
            f"{item.origin}:{item.line}",
            str(item.attempts),
            _one_line(item.last_error),
        ]
        for item in items
    ]
    headers = ["id", "received (UTC)", "mapping", "origin:line", "attempts", "error"]
    click.echo(_table(headers, rows))
    if total > len(items):
        click.echo(f"(newest {len(items)} of {total}; --limit shows more)")


@click.command("warnings")
@click.option("--mapping", "-m", default=None, help="Only this mapping's (e.g. vcse/clients).")
@click.option(
    "--limit", "-n", type=click.IntRange(1), default=50, show_default=True, help="Show at most N."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def warnings_command(mapping: str | None, limit: int, as_json: bool) -> None:
    """List applied records whose mapping reported something worth a look.

    A warning did not stop its record: for example a VCSE ethnicity label that is not an NHS
    ethnic category (kept as text, not coded) or a point of care missing from the table of
    points of care. Newest first. Mend the table or value map, then re-send or `hub replay`.
    """
    with _open_inbox() as inbox:
        items = inbox.list(ItemStatus.APPLIED, mapping=mapping, limit=limit, with_warnings=True)
    if as_json:
        click.echo(orjson.dumps([_warned(item) for item in items]).decode())
        return
    if not items:
        click.echo("no warnings" + (f" for {mapping}" if mapping else ""))
        return
    rows = [
        [str(item.id), item.mapping, f"{item.origin}:{item.line}", "; ".join(_warnings(item))]
        for item in items
    ]
    click.echo(_table(["id", "mapping", "origin:line", "warnings"], rows))


@click.command("replay")
@click.argument("ids", nargs=-1, type=click.IntRange(1))
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter (of --mapping).")
@click.option("--mapping", "-m", default=None, help="Only this mapping's items.")
@click.option(
    "--withheld",
    is_flag=True,
    help="Withheld items too (e.g. after a consent or scope change), not only failed ones.",
)
def replay_command(
    ids: tuple[int, ...], replay_all: bool, mapping: str | None, withheld: bool
) -> None:
    """Requeue dead letters to be processed again.

    After fixing the cause (often a mapping; `hub deadletters` shows why each failed):

    \b
      hub replay 12 15                          those items
      hub replay --all                          every dead letter
      hub replay --all --mapping slam-epr/adt   that mapping's

    A running `hub serve`, `hub mllp` or `hub work` processes them; otherwise the next
    `hub ingest` or `hub work` does. Replaying is safe: records are written keyed on their
    business identifiers, so one applied before changes nothing.
    """
    if bool(ids) == replay_all:
        raise click.UsageError("give the ids to replay, or --all (not both)")
    statuses = [ItemStatus.FAILED, ItemStatus.WITHHELD] if withheld else [ItemStatus.FAILED]
    with _open_inbox() as inbox:
        count = inbox.replay(list(ids) if ids else None, statuses=statuses, mapping=mapping)
    kinds = " or ".join(s.value for s in statuses)
    click.echo(f"requeued {count} {kinds} item{'' if count == 1 else 's'}.")
    if ids and count < len(set(ids)):
        click.echo(
            f"{len(set(ids)) - count} of the ids given are not {kinds} items"
            + (f" of {mapping}" if mapping else "")
            + ": `hub deadletters` lists those that are."
        )
    if count:
        click.echo(_WHERE_IT_RUNS)


def _dead_letter(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "received": _time(item.received_ms, iso=True),
        "mapping": item.mapping,
        "channel": item.channel,
        "origin": item.origin,
        "line": item.line,
        "message_id": item.message_id,
        "attempts": item.attempts,
        "error": item.last_error,
        "duplicates": item.duplicates,
    }


def _warnings(item: InboxItem) -> list[str]:
    return list((item.outcome or {}).get("warnings", []))


def _warned(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "mapping": item.mapping,
        "origin": item.origin,
        "line": item.line,
        "record": (item.outcome or {}).get("record"),
        "warnings": _warnings(item),
    }


def _time(ms: int, *, iso: bool = False) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if iso:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _table(headers: list[str], rows: list[list[str]], *, right_from: int | None = None) -> str:
    """Columns padded to their widest cell; from column `right_from` on, numbers right-aligned.
    The last column is not padded, so a long error does not pad every line."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            right = right_from is not None and i >= right_from
            last = i == len(cells) - 1 and not right
            out.append(cell.rjust(widths[i]) if right else cell if last else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join(line(row) for row in [headers, *rows])
