"""ValueSets made into sets of codes once, at load time, for binding checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._issues import ProfileLoadError


@dataclass(frozen=True, slots=True)
class CompiledValueSet:
    """The codes of a ValueSet. `undecided` holds systems included whole whose CodeSystem is
    not loaded here (or is not complete): a code from one of those can be neither accepted
    nor refused, so it is let through."""

    url: str
    codes: frozenset[tuple[str, str]]
    bare_codes: frozenset[str]
    whole_systems: frozenset[str]
    undecided: frozenset[str]
    open: bool  # includes another ValueSet that is not loaded: nothing can be refused

    def has_coding(self, system: Any, code: Any) -> bool | None:
        """True, False, or None when this ValueSet cannot decide."""
        if (system, code) in self.codes:
            return True
        if self.open or system in self.undecided:
            return None
        return False

    def has_code(self, code: Any) -> bool | None:
        """For a `code` element, whose system is implied by the binding."""
        if code in self.bare_codes:
            return True
        return None if self.open or self.undecided else False


def strip_version(canonical: str) -> str:
    return canonical.split("|", 1)[0]


def _concepts(concepts: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _concepts(concept.get("concept", ()))


def code_system_codes(code_system: Mapping[str, Any]) -> frozenset[str] | None:
    """Every code of a complete CodeSystem; None when it is not complete (a fragment or an
    example), because then a code missing from it may still exist."""
    if code_system.get("content") != "complete":
        return None
    return frozenset(_concepts(code_system.get("concept", ())))


def compile_value_sets(
    value_sets: Mapping[str, tuple[Path, Mapping[str, Any]]],
    code_systems: Mapping[str, Mapping[str, Any]],
) -> dict[str, CompiledValueSet]:
    """Compile every ValueSet (`url -> (file, resource)`); an include the checker cannot
    evaluate (a filter, an exclude) is a load error naming the file."""
    compiled: dict[str, CompiledValueSet] = {}

    def build(url: str, stack: tuple[str, ...]) -> CompiledValueSet:
        if url in compiled:
            return compiled[url]
        file, value_set = value_sets[url]
        if url in stack:
            raise ProfileLoadError(file, f"ValueSet {url} includes itself")
        compose = value_set.get("compose") or {}
        if compose.get("exclude"):
            raise ProfileLoadError(file, "compose.exclude is not supported by the hub checker")
        codes: set[tuple[str, str]] = set()
        whole: set[str] = set()
        undecided: set[str] = set()
        is_open = False
        for include in compose.get("include", ()):
            if include.get("filter"):
                raise ProfileLoadError(file, "compose.include.filter is not supported")
            for imported in include.get("valueSet", ()):
                imported = strip_version(imported)
                if imported not in value_sets:
                    is_open = True
                    continue
                other = build(imported, (*stack, url))
                codes |= other.codes
                whole |= other.whole_systems
                undecided |= other.undecided
                is_open = is_open or other.open
            system = include.get("system")
            if system is None:
                continue
            if include.get("concept"):
                codes.update((system, c["code"]) for c in include["concept"])
                continue
            all_codes = code_system_codes(code_systems[system]) if system in code_systems else None
            if all_codes is None:
                undecided.add(system)
            else:
                whole.add(system)
                codes.update((system, code) for code in all_codes)
        result = CompiledValueSet(
            url,
            frozenset(codes),
            frozenset(code for _, code in codes),
            frozenset(whole),
            frozenset(undecided),
            is_open,
        )
        compiled[url] = result
        return result

    for url in value_sets:
        build(url, ())
    return compiled
