"""`hub matches ...`: the review queue of Patients that may be one person."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

import click

from hub.fhir import FhirError, format_instant
from hub.settings import HubSettings
from hub.state import StateError, open_database
from hub.store import open_store

from ._config import IdentityConfig, IdentityConfigError
from ._queue import MatchQueue, ReviewError
from ._review import STATUSES, MatchEntry, Status

T = TypeVar("T")
_BY_HELP = "Who decides (recorded with the decision). Default: the login name."


@contextmanager
def _queue() -> Iterator[MatchQueue]:
    settings = HubSettings()
    try:
        config = IdentityConfig.load(settings.mappings_dir / "identity.yaml")
        db = open_database(settings.state_url)
    except (IdentityConfigError, StateError) as exc:
        raise click.ClickException(str(exc)) from None
    store = open_store(settings)
    try:
        yield MatchQueue(db, store, config)
    finally:
        store.close()
        db.close()


def _run(action: Callable[[MatchQueue], T]) -> T:
    """Run against the queue; a refusal is a one-line error, not a traceback."""
    with _queue() as queue:
        try:
            return action(queue)
        except (ReviewError, FhirError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group("matches")
def matches_command() -> None:
    """Pairs of Patients that may be one person: list them, accept (merge) or reject."""


@matches_command.command("list")
@click.option(
    "--status",
    type=click.Choice([*STATUSES, "all"]),
    default="open",
    show_default=True,
    help="Which entries to show.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_command(status: str, as_json: bool) -> None:
    """The queue, oldest first: both Patients, why they were paired, which fields agree."""
    wanted = None if status == "all" else cast(Status, status)
    entries = _run(lambda q: q.list(wanted))
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"no {'' if status == 'all' else status + ' '}entries")
        return
    for entry in entries:
        click.echo(_line(entry))


def _line(entry: MatchEntry) -> str:
    # Only ids and which fields agree: the queue is shown without anyone's details.
    agreement = " ".join(f"{field}={said}" for field, said in sorted(entry.evidence.items()))
    decided = f" by {entry.decided_by}" if entry.decided_by else ""
    return (
        f"{entry.id}  {entry.status}{decided}  Patient/{entry.patient_id} ~ "
        f"Patient/{entry.candidate_id}  [{entry.source}, {format_instant(entry.created_ms)}]  "
        f"{agreement}  ({entry.reason})"
    )


def _decision(command: Callable[[int, str], None]) -> Callable[[int, str], None]:
    """ENTRY_ID and --by, which every decision takes."""
    command = click.option("--by", default=getpass.getuser, help=_BY_HELP)(command)
    return click.argument("entry_id", type=int)(command)


@matches_command.command("accept")
@_decision
def accept_command(entry_id: int, by: str) -> None:
    """They are one person: merge the two Patients now."""
    merge = _run(lambda q: q.accept(entry_id, by))
    if merge is None:
        click.echo(f"entry {entry_id} accepted: the two were already one Patient")
        return
    click.echo(
        f"entry {entry_id} accepted: Patient/{merge.retired_id} merged into "
        f"Patient/{merge.surviving_id} ({len(merge.referrers)} resource(s) re-pointed)"
    )


@matches_command.command("reject")
@_decision
def reject_command(entry_id: int, by: str) -> None:
    """They are two people: the pair is never queued again."""
    _run(lambda q: q.reject(entry_id, by))
    click.echo(f"entry {entry_id} rejected: the pair will not be queued again")
