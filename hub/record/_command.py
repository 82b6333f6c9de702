"""`hub record NHS_NUMBER`: one person's shared record on one screen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hub.fhir import FhirError
from hub.settings import HubSettings
from hub.store import FhirStore, open_store

from ._read import RecordError, read_record
from ._scores import score_items
from ._summary import summarise
from ._text import render


def record_summary(
    store: FhirStore, nhs_number: str, profiles_dir: Path | None = None
) -> dict[str, Any]:
    """The shared record of the person with this NHS number, as `hub record --json` prints it.
    RecordError when the number is not valid or nobody has it. `profiles_dir` holds the
    Questionnaires that say which answers are scores (default: HUB_PROFILES_DIR)."""
    scores = score_items(profiles_dir or HubSettings().profiles_dir)
    return summarise(read_record(store, nhs_number), scores)


@click.command("record")
@click.argument("nhs_number")
@click.option("--json", "as_json", is_flag=True, help="The record as one JSON object, for scripts.")
def record_command(nhs_number: str, as_json: bool) -> None:
    """One person's shared record on one screen: who they are, flags first, Mental Health Act
    legal status, episodes of care, the team around them, current plans, recent encounters by
    source, and the latest outcome scores with the change since the first.

    NHS_NUMBER: 10 digits (spaces allowed: "999 000 0018")."""
    settings = HubSettings()
    store = open_store(settings)
    try:
        summary = record_summary(store, nhs_number, settings.profiles_dir)
    except (RecordError, FhirError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False) if as_json else render(summary))
