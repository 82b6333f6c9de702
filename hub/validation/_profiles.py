"""The hub's profiles (profiles/), loaded and compiled once, and the check of one resource."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hub.fhir import InvalidResource, is_resource_type, validate_resource
from hub.settings import HubSettings

from ._issues import ProfileIssue, ProfileLoadError
from ._questionnaire import CompiledQuestionnaire, compile_questionnaire
from ._structure import CompiledProfile, compile_structure
from ._terminology import CompiledValueSet, compile_value_sets, strip_version

HUB_CANONICAL_BASE = "https://fhir.hub.example/"
_INDEXED = ("StructureDefinition", "ValueSet", "CodeSystem", "Questionnaire")


def default_profiles_dir() -> Path:
    """HUB_PROFILES_DIR when set, else the `profiles/` folder at the root of the repository."""
    return HubSettings().profiles_dir


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ProfileLoadError(file, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ProfileLoadError(file, "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ProfileLoadError(
            file, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise ProfileLoadError(file, "is not a FHIR resource (a JSON object)")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise ProfileLoadError(file, f"has an unknown resourceType {resource_type!r}")
    try:
        validate_resource(data)
    except InvalidResource as exc:
        raise ProfileLoadError(file, f"is not a valid R4 {resource_type}: {exc}") from None
    return data


class Profiles:
    """Every conformance resource under a profiles/ folder, indexed, with the rules compiled.

    Load once (`Profiles.load`) and share: `check` only reads.
    """

    def __init__(
        self,
        directory: Path,
        resources: Mapping[str, Mapping[str, tuple[Path, dict[str, Any]]]],
        value_sets: Mapping[str, CompiledValueSet],
        profiles: Mapping[str, CompiledProfile],
        questionnaires: Mapping[str, CompiledQuestionnaire],
    ) -> None:
        self.directory = directory
        self._resources = resources
        self._value_sets = dict(value_sets)
        self._profiles = dict(profiles)
        self._questionnaires = dict(questionnaires)
        by_type: dict[str, list[CompiledProfile]] = {}
        for profile in profiles.values():
            by_type.setdefault(profile.type, []).append(profile)
        self._by_type = {t: tuple(p) for t, p in by_type.items()}
        self._hub_by_type = {
            t: tuple(p for p in ps if p.url.startswith(HUB_CANONICAL_BASE))
            for t, ps in self._by_type.items()
        }

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> Profiles:
        """Read every `*.json` under `directory`; ProfileLoadError names the file at fault."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ProfileLoadError(directory, "is not a directory")
        resources: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {t: {} for t in _INDEXED}
        for file in sorted(directory.rglob("*.json")):
            if any(part.startswith(".") for part in file.relative_to(directory).parts):
                continue
            data = _read(file)
            kind = data["resourceType"]
            if kind not in resources:
                continue  # ConceptMaps, SearchParameters...: other steps read them
            url = data.get("url")
            if not url:
                raise ProfileLoadError(file, f"a {kind} needs a url")
            if url in resources[kind]:
                raise ProfileLoadError(
                    file, f"{kind} {url} is also defined in {resources[kind][url][0]}"
                )
            resources[kind][url] = (file, data)
        code_systems = {url: data for url, (_, data) in resources["CodeSystem"].items()}
        value_sets = compile_value_sets(resources["ValueSet"], code_systems)
        profiles = {
            url: compile_structure(file, data, value_sets)
            for url, (file, data) in resources["StructureDefinition"].items()
        }
        questionnaires = {
            url: compile_questionnaire(file, data)
            for url, (file, data) in resources["Questionnaire"].items()
        }
        return cls(directory, resources, value_sets, profiles, questionnaires)

    # -- indexes ----------------------------------------------------------------------------

    def structure_definition(self, url: str) -> dict[str, Any] | None:
        found = self._resources["StructureDefinition"].get(strip_version(url))
        return found[1] if found else None

    def structure_definitions_for(self, resource_type: str) -> list[dict[str, Any]]:
        """Every loaded StructureDefinition that constrains `resource_type`."""
        return [
            self._resources["StructureDefinition"][p.url][1]
            for p in self._by_type.get(resource_type, ())
        ]

    def value_set(self, url: str) -> dict[str, Any] | None:
        found = self._resources["ValueSet"].get(strip_version(url))
        return found[1] if found else None

    def code_system(self, url: str) -> dict[str, Any] | None:
        found = self._resources["CodeSystem"].get(strip_version(url))
        return found[1] if found else None

    def questionnaire(self, url: str) -> dict[str, Any] | None:
        found = self._resources["Questionnaire"].get(strip_version(url))
        return found[1] if found else None

    # -- checking ---------------------------------------------------------------------------

    def check(self, resource: dict[str, Any]) -> list[ProfileIssue]:
        """Every rule of the hub's profiles that `resource` breaks (empty: it conforms).

        Applies the hub profile(s) for its type, any other loaded profile named in
        meta.profile and, for a QuestionnaireResponse, its Questionnaire.
        """
        issues: list[ProfileIssue] = []
        resource_type = resource.get("resourceType")
        applied = self._hub_by_type.get(resource_type, ())  # type: ignore[arg-type]
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, dict) else None
        if claimed:
            applied = self._claimed(resource_type, claimed, applied, issues)
        for profile in applied:
            profile.check(resource, issues)
        if resource_type == "QuestionnaireResponse":
            self._check_answers(resource, issues)
        return issues

    def checker(self, *, base: bool = False) -> Callable[[dict[str, Any]], list[str]]:
        """`check` as the mapping engine's Checker takes it: the errors only, one line each
        (`<rule>: <message> (at <path>)`); warnings do not stop a resource. `base`: first the
        base R4 check (`validate_resource`), as `hub validate` does; the pipeline leaves that
        to the store, which checks every write anyway."""

        def check(resource: dict[str, Any]) -> list[str]:
            if base:
                try:
                    validate_resource(resource)
                except InvalidResource as exc:
                    return [f"base R4: {exc.diagnostics}"]
            return [
                f"{issue.rule}: {issue.message} (at {issue.path})"
                for issue in self.check(resource)
                if issue.severity == "error"
            ]

        return check

    def _claimed(
        self,
        resource_type: Any,
        claimed: Any,
        applied: tuple[CompiledProfile, ...],
        issues: list[ProfileIssue],
    ) -> tuple[CompiledProfile, ...]:
        result = list(applied)
        for number, url in enumerate(claimed if isinstance(claimed, list) else ()):
            profile = self._profiles.get(strip_version(url)) if isinstance(url, str) else None
            where = f"{resource_type}.meta.profile[{number}]"
            if profile is None:
                issues.append(
                    ProfileIssue(
                        "meta.profile",
                        where,
                        f"profile {url} is not loaded: not checked",
                        "warning",
                    )
                )
            elif profile.type != resource_type:
                issues.append(
                    ProfileIssue(
                        "meta.profile", where, f"profile {url} is for {profile.type} resources"
                    )
                )
            elif profile not in result:
                result.append(profile)
        return tuple(result)

    def _check_answers(self, response: dict[str, Any], issues: list[ProfileIssue]) -> None:
        canonical = response.get("questionnaire")
        if not isinstance(canonical, str):
            return  # a missing questionnaire is the StructureDefinition's to report
        questionnaire = self._questionnaires.get(strip_version(canonical))
        if questionnaire is None:
            issues.append(
                ProfileIssue(
                    "hub-QuestionnaireResponse: questionnaire is loaded",
                    "QuestionnaireResponse.questionnaire",
                    f"questionnaire {canonical} is not one of the hub's: answers not checked",
                    "warning",
                )
            )
            return
        questionnaire.check(response, issues)
