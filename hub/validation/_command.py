"""`hub validate FILE...`: check FHIR resources against base R4 and the hub's profiles."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from hub.fhir import InvalidResource, validate_resource

from ._issues import ProfileIssue, ProfileLoadError
from ._profiles import Profiles, default_profiles_dir

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})


class Unreadable(Exception):
    """The input cannot be read as FHIR JSON at all (exit code 2)."""


@dataclass
class Checked:
    """The outcome for one resource of an input file."""

    file: str
    where: str  # "resource", "bundle", "entry[3]", "line 7"
    label: str  # Patient/abc, Patient?identifier=system|value, or the type
    issues: list[ProfileIssue] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def lines(self) -> Iterator[str]:
        for issue in self.issues:
            rule = issue.rule if issue.severity == "error" else f"{issue.rule} (warning)"
            yield f"{self.file} {self.where} {self.label}: {rule}: {issue.message} ({issue.path})"

    def outcome(self) -> dict[str, Any]:
        issues = [i.to_fhir() for i in self.issues] or [
            {"severity": "information", "code": "informational", "diagnostics": "No issues"}
        ]
        return {
            "file": self.file,
            "where": self.where,
            "resource": self.label,
            "outcome": {"resourceType": "OperationOutcome", "issue": issues},
        }


def _label(resource: Any) -> str:
    if not isinstance(resource, dict):
        return "(not a resource)"
    resource_type = str(resource.get("resourceType") or "(no resourceType)")
    if isinstance(resource.get("id"), str):
        return f"{resource_type}/{resource['id']}"
    identifiers = [i for i in resource.get("identifier") or () if isinstance(i, dict)]
    if isinstance(resource.get("identifier"), dict):  # QuestionnaireResponse: max 1
        identifiers = [resource["identifier"]]
    # A local identifier names the record as well as the NHS number does, and keeps the NHS
    # number out of terminal scrollback and CI logs.
    identifiers.sort(key=lambda i: i.get("system") == NHS_NUMBER)
    for identifier in identifiers:
        if identifier.get("value"):
            return (
                f"{resource_type}?identifier={identifier.get('system', '')}|{identifier['value']}"
            )
    return resource_type


def _r4_issues(resource: Any) -> list[ProfileIssue]:
    try:
        validate_resource(resource)
    except InvalidResource as exc:
        return [
            ProfileIssue("R4", i.expression[0] if i.expression else "", i.diagnostics)
            for i in exc.issues
        ]
    return []


def _check_resource(profiles: Profiles, resource: Any, file: str, where: str) -> Checked:
    checked = Checked(file, where, _label(resource))
    checked.issues.extend(_r4_issues(resource))
    if isinstance(resource, dict):
        # Profiles are checked even when base R4 fails, so one run shows every problem.
        checked.issues.extend(profiles.check(resource))
    return checked


def _request_issues(entry: dict[str, Any], where: str) -> list[ProfileIssue]:
    """What a transaction or batch entry needs so the store can apply it."""
    request = entry.get("request")
    path = f"Bundle.{where}.request"
    if not isinstance(request, dict):
        return [ProfileIssue("Bundle.entry.request", path, "a transaction entry needs a request")]
    issues = []
    method = request.get("method")
    url = request.get("url")
    if method not in _METHODS:
        issues.append(
            ProfileIssue(
                "Bundle.entry.request", f"{path}.method", f"method {method!r} is not valid"
            )
        )
    if not isinstance(url, str) or not url:
        issues.append(ProfileIssue("Bundle.entry.request", f"{path}.url", "url is missing"))
    resource = entry.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            issues.append(
                ProfileIssue("Bundle.entry.request", path, f"a {method} entry needs a resource")
            )
        elif isinstance(url, str) and url.split("?", 1)[0].split("/", 1)[0] != resource.get(
            "resourceType"
        ):
            issues.append(
                ProfileIssue(
                    "Bundle.entry.request",
                    f"{path}.url",
                    f"url {url!r} is not for a {resource.get('resourceType')}",
                )
            )
    return issues


def _check_bundle(profiles: Profiles, bundle: dict[str, Any], file: str) -> list[Checked]:
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    # The Bundle's own structure, without its resources: they are checked one by one below,
    # so that each problem is reported once, against its entry.
    shell = {
        **bundle,
        "entry": [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ],
    }
    if not entries:
        shell.pop("entry")
    results = [Checked(file, "bundle", _label(bundle), _r4_issues(shell))]
    is_transaction = bundle.get("type") in ("transaction", "batch")
    for number, entry in enumerate(entries):
        where = f"entry[{number}]"
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if resource is not None:
            checked = _check_resource(profiles, resource, file, where)
        else:
            checked = Checked(file, where, "(no resource)")
        if is_transaction:
            checked.issues.extend(_request_issues(entry, where))
        if resource is not None or checked.issues:
            results.append(checked)
    return results


def _parse(file: Path) -> Iterator[tuple[str, Any]]:
    """(where, JSON value) for each item of a file: one resource or Bundle, or JSON Lines."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        yield "resource", orjson.loads(data)
        return
    except orjson.JSONDecodeError as exc:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise Unreadable(f"is not JSON: {exc}") from None
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise Unreadable(f"line {number} is not JSON: {exc}") from None


def check_file(profiles: Profiles, file: Path) -> tuple[list[Checked], str | None]:
    """Check every resource of `file`; the second value says why (part of) it was unreadable."""
    results: list[Checked] = []
    name = str(file)
    try:
        for where, value in _parse(file):
            if not isinstance(value, dict):
                raise Unreadable(f"{where}: a JSON {type(value).__name__} is not a FHIR resource")
            if value.get("resourceType") == "Bundle":
                results.extend(_check_bundle(profiles, value, name))
            else:
                results.append(_check_resource(profiles, value, name, where))
    except Unreadable as exc:
        return results, str(exc)
    return results, None


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--profiles",
    "profiles_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of profiles. Default: HUB_PROFILES_DIR, else profiles/ in the repository.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per resource (file, where, resource, OperationOutcome).",
)
def validate_command(files: tuple[Path, ...], profiles_dir: Path | None, as_json: bool) -> None:
    """Check FHIR resources against base R4 and the hub's profiles.

    FILE is a resource, a Bundle (every entry, and each entry.request of a transaction) or
    JSON Lines of resources. Exit code 0: no errors; 1: a resource breaks a rule; 2: an input
    (or the profiles) could not be read.
    """
    try:
        profiles = Profiles.load(profiles_dir or default_profiles_dir())
    except ProfileLoadError as exc:
        click.echo(f"hub validate: cannot load the profiles: {exc}", err=True)
        sys.exit(2)
    checked_count = error_count = 0
    unreadable = False
    for file in files:
        results, problem = check_file(profiles, file)
        for checked in results:
            checked_count += 1
            error_count += checked.has_errors
            if as_json:
                click.echo(orjson.dumps(checked.outcome()).decode())
            else:
                for line in checked.lines():
                    click.echo(line)
        if problem is not None:
            unreadable = True
            click.echo(f"{file}: unreadable: {problem}", err=True)
    summary = f"{checked_count} resources checked, {error_count} with errors"
    click.echo(summary, err=as_json)
    sys.exit(2 if unreadable else 1 if error_count else 0)
