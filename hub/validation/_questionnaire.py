"""QuestionnaireResponse answers checked against the hub's Questionnaires.

The scores are recomputed from data in the Questionnaire itself: the SDC calculatedExpression
of each read-only total (only the one shape the hub writes is understood; anything else is
refused at load time) and the hub's score-conversion extension (SWEMWBS raw -> metric).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._issues import ProfileIssue, ProfileLoadError, Where, render

MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
CONVERSION = "https://fhir.hub.example/StructureDefinition/score-conversion"

_CALCULATION = re.compile(
    r"%resource\.item\.where\(linkId in \((?P<ids>'[^']+'(?:\s*\|\s*'[^']+')*)\)\)"
    r"\.answer\.value\.(?P<fn>sum|avg)\(\)"
)
# A sum of integers is exact; a mean or a converted score may be rounded to 2 decimals.
_TOLERANCE = {"sum": 1e-9, "avg": 0.005 + 1e-9, "convert": 0.005 + 1e-9}

_CHOICE_KEYS = frozenset(
    {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime", "valueReference"}
)
# The answer element each item type takes (R4 Questionnaire.item.type).
_ANSWER_KEYS: dict[str, frozenset[str]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
    "quantity": frozenset({"valueQuantity"}),
    "choice": _CHOICE_KEYS,
    "open-choice": _CHOICE_KEYS,
    "group": frozenset(),
    "display": frozenset(),
}
_NO_ANSWER = object()


@dataclass(frozen=True, slots=True)
class _Item:
    link_id: str
    type: str
    answer_keys: frozenset[str]
    required: bool
    repeats: bool
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class _Score:
    target: str
    kind: str  # sum | avg | convert
    sources: tuple[str, ...]
    table: Mapping[int, float] | None
    rule: str


def _number(value: Any) -> float | None:
    kind = type(value)  # not isinstance: a JSON true is no score
    return value if kind is int or kind is float else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _fmt_bound(value: float | None) -> str:
    return "" if value is None else _fmt(value)


class CompiledQuestionnaire:
    """One Questionnaire, indexed by linkId, with its scoring rules."""

    def __init__(self, url: str, items: dict[str, _Item], scores: list[_Score]) -> None:
        self.url = url
        self.name = url.rstrip("/").rsplit("/", 1)[-1]
        self.items = items
        self.scores = scores
        self.required = tuple(i for i in items.values() if i.required)

    def check(self, response: Mapping[str, Any], issues: list[ProfileIssue]) -> None:
        # linkId -> the value of its first answer (_NO_ANSWER for an item without one).
        answers: dict[str, Any] = {}
        items = response.get("item")
        if type(items) is list:
            self._walk(items, "QuestionnaireResponse", answers, issues)
        for item in self.required:
            if answers.get(item.link_id, _NO_ANSWER) is _NO_ANSWER:
                issues.append(
                    ProfileIssue(
                        f"{self.name}: {item.link_id} required",
                        "QuestionnaireResponse.item",
                        f"item {item.link_id} is required but not answered",
                    )
                )
        if self.scores:
            self._check_scores(answers, issues)

    def _walk(
        self, items: list[Any], parent: Where, answers: dict[str, Any], issues: list[ProfileIssue]
    ) -> None:
        # The hot loop of a response check: locals only, and a location is built only when an
        # issue is reported or nested items are walked.
        specs = self.items
        for number, item in enumerate(items):
            if type(item) is not dict:
                continue
            link_id = item.get("linkId")
            spec = specs.get(link_id) if type(link_id) is str else None
            if spec is None:
                self._unknown(link_id, (parent, "item", number), issues)
            else:
                if link_id in answers and not spec.repeats:
                    self._repeated(spec, (parent, "item", number), issues)
                first = _NO_ANSWER
                given = item.get("answer")
                if type(given) is list and given:
                    if len(given) > 1 and not spec.repeats:
                        self._too_many(spec, len(given), (parent, "item", number), issues)
                    keys, low, high = spec.answer_keys, spec.low, spec.high
                    for index, answer in enumerate(given):
                        if type(answer) is not dict:
                            continue
                        for key, value in answer.items():
                            if key in keys:
                                if first is _NO_ANSWER:
                                    first = value
                                kind = type(value)
                                if (kind is int or kind is float) and (
                                    (low is not None and value < low)
                                    or (high is not None and value > high)
                                ):
                                    where = (((parent, "item", number), "answer", index), key, None)
                                    self._out_of_range(spec, value, where, issues)
                            elif key == "item":
                                if type(value) is list:
                                    where = ((parent, "item", number), "answer", index)
                                    self._walk(value, where, answers, issues)
                            elif key.startswith("value"):
                                where = (((parent, "item", number), "answer", index), key, None)
                                self._wrong_type(spec, key, where, issues)
                if answers.get(link_id, _NO_ANSWER) is _NO_ANSWER:
                    answers[link_id] = first
            nested = item.get("item")
            if type(nested) is list:
                self._walk(nested, (parent, "item", number), answers, issues)

    # -- the issues (off the hot path) ----------------------------------------------------------

    def _unknown(self, link_id: Any, where: Where, issues: list[ProfileIssue]) -> None:
        issues.append(
            ProfileIssue(
                f"{self.name}: known linkId",
                render((where, "linkId", None)),
                f"linkId {link_id!r} is not an item of {self.url}",
            )
        )

    def _repeated(self, spec: _Item, where: Where, issues: list[ProfileIssue]) -> None:
        issues.append(
            ProfileIssue(
                f"{self.name}: {spec.link_id} appears once",
                render(where),
                f"item {spec.link_id} appears more than once",
            )
        )

    def _too_many(self, spec: _Item, count: int, where: Where, issues: list[ProfileIssue]) -> None:
        issues.append(
            ProfileIssue(
                f"{self.name}: {spec.link_id} has one answer",
                render((where, "answer", None)),
                f"item {spec.link_id} does not repeat but has {count} answers",
            )
        )

    def _wrong_type(self, spec: _Item, key: str, where: Where, issues: list[ProfileIssue]) -> None:
        expected = " or ".join(sorted(spec.answer_keys)) or "no answer"
        issues.append(
            ProfileIssue(
                f"{self.name}: {spec.link_id} answer type",
                render(where),
                f"item {spec.link_id} is of type {spec.type}: expected {expected}, found {key}",
            )
        )

    def _out_of_range(
        self, spec: _Item, value: float, where: Where, issues: list[ProfileIssue]
    ) -> None:
        bounds = f"{_fmt_bound(spec.low)}..{_fmt_bound(spec.high)}"
        issues.append(
            ProfileIssue(
                f"{self.name}: {spec.link_id} in {bounds}",
                render(where),
                f"answer {_fmt(value)} to {spec.link_id} is outside {bounds}",
            )
        )

    def _check_scores(self, answers: dict[str, Any], issues: list[ProfileIssue]) -> None:
        expected: dict[str, float] = {}
        for score in self.scores:
            value = _expected(score, answers, expected)
            if value is None:
                continue
            expected[score.target] = value
            actual = _number(answers.get(score.target))
            if actual is None or abs(actual - value) <= _TOLERANCE[score.kind]:
                continue
            what = {"sum": "the items sum to", "avg": "the mean of the items is"}.get(
                score.kind, "the conversion table gives"
            )
            issues.append(
                ProfileIssue(
                    score.rule,
                    "QuestionnaireResponse.item",
                    f"{score.target} is {_fmt(actual)} but {what} {round(value, 4):g}",
                )
            )


def _expected(
    score: _Score, answers: Mapping[str, Any], computed: Mapping[str, float]
) -> float | None:
    """The value `score.target` should have, or None when the answers do not settle it: a sum
    needs every item answered, a mean at least one, a conversion its source score."""
    if score.kind == "convert":
        source = score.sources[0]
        raw = computed.get(source)
        if raw is None:
            raw = _number(answers.get(source))
        if raw is None or score.table is None or not float(raw).is_integer():
            return None
        return score.table.get(int(raw))
    total = 0.0
    count = 0
    for link_id in score.sources:
        value = answers.get(link_id)
        kind = type(value)
        if kind is int or kind is float:
            total += value
            count += 1
        elif score.kind == "sum":
            return None
    if not count:
        return None
    return total if score.kind == "sum" else total / count


# -- compiling --------------------------------------------------------------------------------


def _questionnaire_items(items: Any) -> Iterator[Mapping[str, Any]]:
    for item in items or ():
        yield item
        yield from _questionnaire_items(item.get("item"))


def _bound(item: Mapping[str, Any], url: str, file: Path) -> float | None:
    for extension in item.get("extension", ()):
        if extension.get("url") == url:
            for key in ("valueInteger", "valueDecimal"):
                if key in extension:
                    return extension[key]
            raise ProfileLoadError(
                file, f"item {item['linkId']}: only integer and decimal {url} are supported"
            )
    return None


def _contiguous(sources: tuple[str, ...], order: list[str]) -> str:
    """`phq9-1..phq9-9` when the sources are a run of consecutive items, else a list."""
    if len(sources) > 2 and all(s in order for s in sources):
        start = order.index(sources[0])
        if tuple(order[start : start + len(sources)]) == sources:
            return f"{sources[0]}..{sources[-1]}"
    return ", ".join(sources)


def compile_questionnaire(file: Path, questionnaire: Mapping[str, Any]) -> CompiledQuestionnaire:
    url = questionnaire["url"]
    name = url.rstrip("/").rsplit("/", 1)[-1]
    items: dict[str, _Item] = {}
    scores: list[_Score] = []
    order: list[str] = []
    for item in _questionnaire_items(questionnaire.get("item")):
        link_id = item["linkId"]
        if link_id in items:
            raise ProfileLoadError(file, f"linkId {link_id} appears twice")
        if item.get("enableWhen"):
            raise ProfileLoadError(file, f"item {link_id}: enableWhen is not supported")
        type_ = item["type"]
        if type_ not in _ANSWER_KEYS:
            raise ProfileLoadError(file, f"item {link_id}: type {type_!r} is not supported")
        low, high = _bound(item, MIN_VALUE, file), _bound(item, MAX_VALUE, file)
        items[link_id] = _Item(
            link_id,
            type_,
            _ANSWER_KEYS[type_],
            bool(item.get("required")),
            bool(item.get("repeats")),
            low,
            high,
        )
        if type_ not in ("group", "display"):
            order.append(link_id)
        scores.extend(_item_scores(file, name, item))
    for score in scores:
        for source in score.sources:
            if source not in items:
                raise ProfileLoadError(
                    file, f"item {score.target}: the score refers to unknown linkId {source}"
                )
            if score.kind != "convert" and items[source].type not in ("integer", "decimal"):
                raise ProfileLoadError(
                    file, f"item {score.target}: {source} is not an integer or decimal item"
                )
    named = [_named(score, order) for score in scores]
    # A conversion reads the score it converts: compute that one first.
    named.sort(key=lambda s: s.kind == "convert")
    return CompiledQuestionnaire(url, items, named)


def _named(score: _Score, order: list[str]) -> _Score:
    sources = _contiguous(score.sources, order)
    verb = {"sum": "the sum of", "avg": "the mean of"}.get(score.kind, "the converted score of")
    rule = f"{score.rule}: {score.target} is {verb} {sources}"
    return _Score(score.target, score.kind, score.sources, score.table, rule)


def _item_scores(file: Path, name: str, item: Mapping[str, Any]) -> list[_Score]:
    link_id = item["linkId"]
    scores: list[_Score] = []
    for extension in item.get("extension", ()):
        if extension.get("url") == CALCULATED:
            expression = extension.get("valueExpression") or {}
            text = expression.get("expression", "")
            match = _CALCULATION.fullmatch(text.strip())
            if expression.get("language") != "text/fhirpath" or match is None:
                raise ProfileLoadError(
                    file,
                    f"item {link_id}: calculatedExpression {text!r} is not supported: the hub "
                    "checks only %resource.item.where(linkId in ('a' | 'b' ...))"
                    ".answer.value.sum() or .avg()",
                )
            sources = tuple(s.strip().strip("'") for s in match["ids"].split("|"))
            scores.append(_Score(link_id, match["fn"], sources, None, name))
        elif extension.get("url") == CONVERSION:
            source, table = _conversion(file, link_id, extension)
            scores.append(_Score(link_id, "convert", (source,), table, name))
    if scores and not item.get("readOnly"):
        raise ProfileLoadError(file, f"item {link_id}: a calculated score must be readOnly")
    return scores


def _conversion(file: Path, link_id: str, extension: Mapping[str, Any]) -> tuple[str, dict]:
    source = None
    table: dict[int, float] = {}
    for part in extension.get("extension", ()):
        if part.get("url") == "source" and isinstance(part.get("valueString"), str):
            source = part["valueString"]
        elif part.get("url") == "row":
            cells = {cell.get("url"): cell for cell in part.get("extension", ())}
            raw = cells.get("from", {}).get("valueInteger")
            score = cells.get("to", {}).get("valueDecimal")
            if raw is None or score is None:
                raise ProfileLoadError(file, f"item {link_id}: a conversion row needs from, to")
            table[raw] = score
        else:
            raise ProfileLoadError(file, f"item {link_id}: unexpected part {part.get('url')!r}")
    if source is None or not table:
        raise ProfileLoadError(file, f"item {link_id}: a conversion needs a source and rows")
    return source, table
