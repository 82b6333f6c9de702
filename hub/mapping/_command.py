"""`hub mappings ...`: the integrators' tools (check, list, preview, test, conceptmaps)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hub.settings import HubSettings

from ._examples import dumps, example_files, produce, run_example
from ._mapping import Checker, MappingSet
from ._yaml import MappingConfigError

_DIR_HELP = "The mappings folder. Default: HUB_MAPPINGS_DIR, else mappings/ of the checkout."
_PROFILES_HELP = "The profiles folder. Default: HUB_PROFILES_DIR, else profiles/ of the checkout."


def _mappings(directory: Path | None) -> MappingSet:
    return MappingSet(directory or HubSettings().mappings_dir)


def _profile_checker(directory: Path | None, enabled: bool) -> Checker | None:
    """Every produced resource checked against profiles/, as the pipeline does."""
    if not enabled:
        return None
    from hub.validation import ProfileLoadError, Profiles

    try:
        return Profiles.load(directory or HubSettings().profiles_dir).checker(base=True)
    except ProfileLoadError as exc:
        raise click.ClickException(str(exc)) from None


def _fail(exc: MappingConfigError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group("mappings")
def mappings_command() -> None:
    """Check, preview and test the declarative mappings in mappings/."""


@mappings_command.command("check")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
def check_command(directory: Path | None) -> None:
    """Compile every mapping, part, value map and table; name the file, line and key of each
    problem."""
    mappings = _mappings(directory)
    problems = mappings.check()
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {mappings.display(mappings.root)}", err=True)
        sys.exit(1)
    names, maps, tables = mappings.names(), mappings.value_maps(), mappings.tables()
    counts = f"{len(names)} mappings, {len(maps)} value maps and {len(tables)} tables"
    click.echo(f"ok: {counts} are well formed")


@mappings_command.command("list")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
def list_command(directory: Path | None) -> None:
    """Every mapping: its name, input format and description."""
    mappings = _mappings(directory)
    for name in mappings.names():
        try:
            mapping = mappings.get(name)
        except MappingConfigError as exc:
            click.echo(f"{name:28} (broken: {exc.message})")
            continue
        summary = " ".join(mapping.spec.description.split()).split(". ")[0].rstrip(".")
        if len(summary) > 90:
            summary = summary[:87] + "..."
        click.echo(f"{name:28} {mapping.spec.format:12} {summary}")


@mappings_command.command("preview")
@click.argument("mapping")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
@click.option("--profiles", type=click.Path(path_type=Path, file_okay=False), help=_PROFILES_HELP)
@click.option("--no-profiles", is_flag=True, help="Do not check the resources against profiles/.")
@click.option(
    "--transaction", is_flag=True, help="Print each record as the FHIR transaction the hub applies."
)
def preview_command(
    mapping: str,
    file: Path,
    directory: Path | None,
    profiles: Path | None,
    no_profiles: bool,
    transaction: bool,
) -> None:
    """Print the FHIR resources FILE produces with MAPPING (e.g. vcse/sessions); writes nothing.

    The output has the shape of a worked example's expected file: save it beside the input in
    mappings/<source>/examples/ as <input>.expected.json once you have checked it.
    """
    mappings = _mappings(directory)
    try:
        check = _profile_checker(profiles, not no_profiles)
        if not transaction:
            click.echo(dumps(produce(mappings, mapping, file, check)), nl=False)
            return
        with file.open("rb") as stream:
            for record in mappings.get(mapping).read(stream, file.name, check=check):
                shown = record.transaction() if record.ok else record.summary()
                click.echo(json.dumps(shown, ensure_ascii=False))
    except MappingConfigError as exc:
        _fail(exc)


@mappings_command.command("test")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
@click.option("--profiles", type=click.Path(path_type=Path, file_okay=False), help=_PROFILES_HELP)
@click.option(
    "--accept", is_flag=True, help="Write what the mappings produce now into the expected files."
)
def test_command(directory: Path | None, profiles: Path | None, accept: bool) -> None:
    """Run every worked example in mappings/**/examples/ and show a diff for each that differs."""
    mappings = _mappings(directory)
    files = example_files(mappings.root)
    failed = 0
    try:
        check = _profile_checker(profiles, True)
        for expected in files:
            outcome = run_example(mappings, expected, check, accept=accept)
            status = "ok" if outcome.passed else "FAIL"
            click.echo(f"{status:4} {mappings.display(expected)} ({outcome.mapping})")
            if not outcome.passed:
                failed += 1
                click.echo(outcome.diff)
    except MappingConfigError as exc:
        _fail(exc)
    click.echo(f"{len(files) - failed} of {len(files)} examples pass")
    if failed or not files:
        sys.exit(1)


@mappings_command.command("conceptmaps")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
def conceptmaps_command(directory: Path | None) -> None:
    """Print every value map as a FHIR ConceptMap, in one collection Bundle."""
    mappings = _mappings(directory)
    try:
        maps = mappings.value_maps()
    except MappingConfigError as exc:
        _fail(exc)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": m.to_concept_map()} for m in maps],
    }
    click.echo(dumps(bundle), nl=False)


@mappings_command.command("publish")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), help=_DIR_HELP
)
@click.option("--profiles", type=click.Path(path_type=Path, file_okay=False), help=_PROFILES_HELP)
def publish_command(directory: Path | None, profiles: Path | None) -> None:
    """Write the value maps (as ConceptMaps) and everything in profiles/ to the store.

    One transaction of conditional updates on each resource's url, so running it again changes
    nothing; afterwards they can be read over FHIR REST (e.g. GET /fhir/ConceptMap?url=...).
    """
    from hub.fhir import FhirError, parse_json_bytes
    from hub.store import open_store

    settings = HubSettings()
    try:
        resources = [m.to_concept_map() for m in _mappings(directory).value_maps()]
    except MappingConfigError as exc:
        _fail(exc)
    for file in sorted((profiles or settings.profiles_dir).rglob("*.json")):
        resources.append(parse_json_bytes(file.read_bytes()))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}?url={r['url']}"},
            }
            for r in resources
        ],
    }
    store = open_store(settings)
    try:
        response = store.transaction(bundle)
    except FhirError as exc:
        raise click.ClickException(f"the store refused the definitions: {exc}") from None
    finally:
        store.close()
    statuses = [entry["response"]["status"].split()[0] for entry in response["entry"]]
    created = statuses.count("201")
    click.echo(
        f"published {len(resources)} definitions: {created} new, {len(resources) - created} "
        "updated or unchanged"
    )
