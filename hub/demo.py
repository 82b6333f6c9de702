"""`hub demo`: the whole flow on the embedded store, with the contract's example feeds.

It starts the hub (FHIR API, ingest API, MLLP listener, workers) on a fresh demo data
directory, sends the trust's ADT messages through the real MLLP listener and every other
example file through `POST /ingest/{mapping}`, waits until the workers have applied them, and
prints one person's shared record as a clinician's FHIR client would read it.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from hub.fhir import NHS_NUMBER_SYSTEM
from hub.listeners import send_messages
from hub.mapping import SOURCE_BASE, MappingSet
from hub.settings import HubSettings


@dataclass(frozen=True)
class Feed:
    mapping: str
    file: str  # under mappings/, one of the worked examples copied from the source contract
    via: str = "http"  # "mllp": message by message through the MLLP listener


FEEDS = (
    Feed("slam-epr/adt", "slam-epr/examples/adt.hl7", via="mllp"),
    Feed("vcse/clients", "vcse/examples/clients.csv"),
    Feed("gp/stu3-bundle", "gp/examples/G85901-okafor.json"),
    Feed("gp/stu3-bundle", "gp/examples/G85902-reilly.json"),
    Feed("district-nursing/visits", "district-nursing/examples/visits.csv"),
    Feed("district-nursing/careplans", "district-nursing/examples/careplans.csv"),
    Feed("slam-epr/careplans", "slam-epr/examples/careplans.jsonl"),
    Feed("slam-epr/episodes", "slam-epr/examples/episodes.jsonl"),
    Feed("slam-epr/dialog", "slam-epr/examples/dialog.jsonl"),
    Feed("vcse/sessions", "vcse/examples/sessions.csv"),
    Feed("vcse/support-plans", "vcse/examples/support_plans.csv"),
    Feed("vcse/wellbeing", "vcse/examples/wellbeing.csv"),
)
"""The order the demo sends them in: a VCSE organisation's clients (and their consent) before
the rows that depend on it, as its export would."""

SHOWN_NHS_NUMBER = "9990000018"  # Adaeze Okafor (synthetic): in every source of the contract
RECORD_NHS_NUMBER = "9990000026"  # Thomas Reilly: a guest-bed stay, a carer, a member since
_SCORE_ITEMS = ("-total", "-metric")


def run_demo(settings: HubSettings, echo: Callable[[str], None], *, keep_running: bool) -> None:
    from hub._serving import Served, port_or_any
    from hub.app import create_app

    data_dir = settings.data_dir / "demo"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # every run starts from an empty shared record
    settings = settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": "",
            "mllp_enabled": True,
            "mllp_port": port_or_any(settings.host, settings.mllp_port),
            "workers": max(settings.workers, 1),
        }
    )
    echo(f"hub demo: a fresh embedded store in {data_dir.resolve()}")
    with Served(create_app(settings), settings) as served:
        echo(f"  FHIR API  {served.fhir_base}")
        echo(f"  MLLP      {served.mllp_address}  (HL7 v2 ADT, {settings.mllp_mapping})")
        echo("")
        with httpx.Client(base_url=served.base_url, timeout=60) as client:
            _send_feeds(settings, served, client, echo)
            counts = _wait_until_idle(served, echo)
            echo("")
            _show_person(client, SHOWN_NHS_NUMBER, echo)
            _show_links(client, echo)
            _show_inbox(counts, echo)
            _show_record(served.fhir_base, settings, RECORD_NHS_NUMBER, echo)
            _where_next(served, data_dir, echo)
        if keep_running:
            echo("The hub keeps running for you to explore: press Ctrl-C to stop it.")
            served.wait()


def _send_feeds(
    settings: HubSettings, served: Any, client: httpx.Client, echo: Callable[[str], None]
) -> None:
    mappings = MappingSet(settings.mappings_dir)
    for feed in FEEDS:
        path = settings.mappings_dir / feed.file
        if feed.via == "mllp":
            messages = [r.raw for r in _records(mappings, feed, path)]
            acks = send_messages(served.mllp_host, served.mllp_port, messages)
            codes = defaultdict(int)
            for ack in acks:
                codes[_ack_code(ack)] += 1
            summary = ", ".join(f"{n} {code}" for code, n in sorted(codes.items()))
            echo(f"  MLLP  {feed.file}: {len(messages)} messages, ACKs {summary}")
            continue
        response = client.post(f"/ingest/{feed.mapping}", content=path.read_bytes())
        response.raise_for_status()
        body = response.json()
        echo(
            f"  POST /ingest/{feed.mapping}  {path.name}: {body['accepted']} accepted,"
            f" {body['duplicates']} duplicate, {body['failed']} unreadable"
        )


def _records(mappings: MappingSet, feed: Feed, path: Path) -> Iterator[Any]:
    mapping = mappings.get(feed.mapping)
    with path.open("rb") as stream:
        yield from mapping.format.read(stream, path.name, columns=mapping.columns)


def _ack_code(ack: bytes) -> str:
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            text = segment.decode(errors="replace")
            return text.split(text[3])[1]  # MSA-1, after the field separator MSH-1 set
    return "no MSA"


def _wait_until_idle(served: Any, echo: Callable[[str], None], timeout: float = 120) -> dict:
    inbox = served.app.state.inbox
    deadline = time.monotonic() + timeout
    while inbox.pending_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    if inbox.pending_count():
        echo(f"  still busy after {timeout:.0f} s: what follows may be incomplete")
    counts: dict[str, int] = defaultdict(int)
    for by_status in inbox.counts().values():
        for status, n in by_status.items():
            counts[status] += n
    return counts


def _show_person(client: httpx.Client, nhs_number: str, echo: Callable[[str], None]) -> None:
    found = _search(client, "Patient", {"identifier": f"{NHS_NUMBER_SYSTEM}|{nhs_number}"})
    if not found:
        echo(f"No Patient with NHS number {nhs_number}: see `hub deadletters`.")
        return
    patient = found[0]
    name = patient.get("name", [{}])[0]
    echo(
        f"The shared record of {' '.join(name.get('given', []))} {name.get('family', '')}"
        f" (synthetic), NHS number {nhs_number}: Patient/{patient['id']}"
    )
    echo("  identifiers, one per source that knows her:")
    for identifier in patient.get("identifier", []):
        echo(f"    {identifier['system']}  {identifier['value']}")
    subject = {"subject": f"Patient/{patient['id']}", "_count": "100"}
    encounters = _search(client, "Encounter", subject)
    by_source: dict[str, list[dict]] = defaultdict(list)
    for encounter in encounters:
        by_source[_source(encounter)].append(encounter)
    echo(f"  encounters: {len(encounters)}")
    for source, items in sorted(by_source.items()):
        dates = sorted(e.get("period", {}).get("start", "?")[:10] for e in items)
        echo(f"    {source:<34} {len(items)}  ({', '.join(dates)})")
    plans = _search(client, "CarePlan", subject)
    echo(f"  care plans: {len(plans)}")
    for plan in plans:
        echo(f"    {_source(plan):<34} {plan.get('status', '?'):<10} {plan.get('title', '')}")
    responses = _search(client, "QuestionnaireResponse", subject)
    echo(f"  questionnaires: {len(responses)}")
    for response in sorted(responses, key=lambda r: r.get("authored", "")):
        echo(
            f"    {_source(response):<34} {response.get('authored', '?')[:10]}"
            f"  {response.get('questionnaire', '').rsplit('/', 1)[-1]:<8} {_scores(response)}"
        )
    echo("")


def _show_links(client: httpx.Client, echo: Callable[[str], None]) -> None:
    echo("Identity across sources:")
    marisol = _search(client, "Patient", {"identifier": f"{NHS_NUMBER_SYSTEM}|9990000034"})
    vcse = [
        i["value"]
        for p in marisol
        for i in p.get("identifier", [])
        if i["system"].endswith("/client-ref")
    ]
    echo(
        "  9990000034: the VCSE record without an NHS number is "
        + (f"linked by demographics (client {', '.join(vcse)})" if vcse else "not linked")
    )
    daniel = _search(
        client, "Patient", {"identifier": "https://fhir.hub.example/Id/RV5/mrn|RV5A000777"}
    )
    if daniel:
        ids = [i["value"] for i in daniel[0].get("identifier", [])]
        echo(f"  RV5A000777 (merged by A40) now finds Patient/{daniel[0]['id']}: {', '.join(ids)}")
    withheld = _search(client, "Patient", {"identifier": f"{NHS_NUMBER_SYSTEM}|9990000050"})
    echo(
        "  9990000050 (VCSE consent to share = N): "
        + ("SHARED — this must not happen" if withheld else "nothing shared, as it must be")
    )
    echo("")


def _show_record(
    fhir_base: str, settings: HubSettings, nhs_number: str, echo: Callable[[str], None]
) -> None:
    """What `hub record` prints, read here as any FHIR client would: over the REST API."""
    from hub.record import RecordError, record_summary, render
    from hub.store import RemoteStore

    echo(f"hub record {nhs_number}  (one person's shared record on one screen):")
    with RemoteStore(fhir_base) as store:
        try:
            echo(render(record_summary(store, nhs_number, settings.profiles_dir)))
        except RecordError as exc:
            echo(f"  {exc}")
    echo("")


def _show_inbox(counts: dict[str, int], echo: Callable[[str], None]) -> None:
    shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    echo(f"Inbox: {shown}")
    echo("")


def _where_next(served: Any, data_dir: Path, echo: Callable[[str], None]) -> None:
    base = served.fhir_base
    echo("Where to look next:")
    echo(f"  {base}/Patient?identifier={NHS_NUMBER_SYSTEM}|{SHOWN_NHS_NUMBER}")
    echo(f"  {base}/CarePlan?patient.identifier={NHS_NUMBER_SYSTEM}|{SHOWN_NHS_NUMBER}")
    echo(f"  {base}/Provenance?_count=5   (which message and mapping wrote what)")
    echo(f"  HUB_DATA_DIR={data_dir} hub inbox      (and hub deadletters, hub matches list)")
    echo(f"  HUB_DATA_DIR={data_dir} hub record {SHOWN_NHS_NUMBER}")
    echo("")


def _search(client: httpx.Client, resource_type: str, params: dict[str, str]) -> list[dict]:
    response = client.get(f"/fhir/{resource_type}", params=params)
    response.raise_for_status()
    return [
        e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


def _source(resource: dict[str, Any]) -> str:
    """`https://fhir.hub.example/source/RV5#slam-epr/adt` -> `RV5 slam-epr/adt`."""
    source = resource.get("meta", {}).get("source", "")
    organisation, _, mapping = source.removeprefix(SOURCE_BASE).partition("#")
    return f"{organisation} {mapping}".strip() or "?"


def _scores(response: dict[str, Any]) -> str:
    scores = [
        f"{item['linkId']} {_value(item['answer'][0])}"
        for item in response.get("item", [])
        if item.get("linkId", "").endswith(_SCORE_ITEMS) and item.get("answer")
    ]
    return ", ".join(scores) or f"{len(response.get('item', []))} answers"


@click.command("demo")
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="Stop once the record is printed, instead of serving it for you to explore.",
)
def demo_command(exit_after: bool) -> None:
    """Run the whole flow on the embedded store with the example feeds, and show the result.

    Starts the hub on a fresh .hub-data/demo (FHIR API, ingest API, MLLP listener, workers),
    sends the example ADT messages over MLLP and the other example files through
    POST /ingest/{mapping}, then prints one person's shared record across every source.
    """
    from hub.cli import configure_logging

    settings = HubSettings()
    configure_logging("warning")
    run_demo(settings, click.echo, keep_running=not exit_after)


def _value(answer: dict[str, Any]) -> Any:
    return next((v for k, v in answer.items() if k.startswith("value")), "?")
