"""Which answers of an outcome measure are its scores: the items its Questionnaire in
profiles/ marks read-only (the totals, means and converted scores the hub checks), so a new
measure needs no change here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class ScoreItem:
    measure: str
    """The Questionnaire's short name: PHQ9, DIALOG ..."""
    link_id: str
    label: str


@lru_cache(maxsize=4)
def score_items(profiles_dir: Path) -> dict[str, tuple[ScoreItem, ...]]:
    """Per Questionnaire URL, its score items in the order it lists them."""
    found: dict[str, tuple[ScoreItem, ...]] = {}
    for file in sorted((profiles_dir / "Questionnaire").glob("*.json")):
        questionnaire = json.loads(file.read_text(encoding="utf-8-sig"))
        name = questionnaire.get("name") or questionnaire.get("id") or file.stem
        items = tuple(
            ScoreItem(name, item["linkId"], item.get("text") or item["linkId"])
            for item in questionnaire.get("item", [])
            if item.get("readOnly") and item.get("linkId")
        )
        if questionnaire.get("url") and items:
            found[questionnaire["url"]] = items
    return found
