"""Identity configuration integrators may change: mappings/identity.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class IdentityConfigError(ValueError):
    """mappings/identity.yaml is missing, or not shaped as documented in it."""


@dataclass(frozen=True)
class IdentityConfig:
    demographics_precedence: tuple[str, ...] = ()
    """Source names, most trusted first (`slam-epr`, `gp`, `district-nursing`, `vcse`)."""

    @classmethod
    def load(cls, path: Path) -> IdentityConfig:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise IdentityConfigError(f"{path}: {exc}") from exc
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "identity configuration") -> IdentityConfig:
        if not isinstance(data, dict):
            raise IdentityConfigError(f"{where}: expected a mapping of settings")
        unknown = sorted(set(data) - {"demographics_precedence"})
        if unknown:
            raise IdentityConfigError(f"{where}: unknown settings {unknown}")
        precedence = data.get("demographics_precedence") or []
        if not isinstance(precedence, list) or not all(isinstance(s, str) for s in precedence):
            raise IdentityConfigError(f"{where}: demographics_precedence must list source names")
        if len(set(precedence)) != len(precedence):
            raise IdentityConfigError(f"{where}: demographics_precedence names a source twice")
        return cls(tuple(precedence))

    def rank(self, source: str) -> int:
        """0 for the most trusted source; every unlisted source shares the lowest rank."""
        name = source_name(source)
        if name in self.demographics_precedence:
            return self.demographics_precedence.index(name)
        return len(self.demographics_precedence)


def source_name(source: str) -> str:
    """`slam-epr/adt` -> `slam-epr`: the mapping name's first part names the source, so either
    may be passed."""
    return source.split("/", 1)[0]
