"""Loading the `mappings/` folder and running one mapping over source records."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from hub.fhir._elements import elements_of
from hub.sources import SourceError, SourceFormat, SourceRecord, source_format

from ._expr import CompileEnv, Ctx, Expr, FieldError, truthy
from ._functions import PIPE, TERM
from ._model import MappingFile, PartFile, ResourceRule
from ._records import Keep, MappedRecord, MappedResource
from ._tables import Table, TableFile
from ._template import Build, TemplateCompiler
from ._valuemaps import ValueMap, ValueMapFile
from ._yaml import Loc, MappingConfigError, YamlDoc, format_loc, load_yaml

SOURCE_BASE = "https://fhir.hub.example/source/"
M = TypeVar("M", bound=BaseModel)
Checker = Callable[[dict[str, Any]], list[str]]


def _validated(doc: YamlDoc, model: type[M]) -> M:
    if not isinstance(doc.data, dict):
        raise doc.error((), "the file must be a YAML mapping of keys to values")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        # An unknown key explains a "missing" one better (organization: vs organisation:).
        first = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc: Loc = tuple(first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif first["type"] == "missing":
            message = f"{format_loc(loc)} is required"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise doc.error(loc, message + more) from None


def _folder_stamp(root: Path) -> tuple[int, int]:
    """Changes whenever a YAML file under `root` is added, removed or written."""
    files = list(root.rglob("*.yaml"))
    return len(files), max((f.stat().st_mtime_ns for f in files), default=0)


class MappingSet:
    """Every mapping, part, value map and global under one folder, compiled on first use.

    With `recheck_seconds`, a long-running hub sees a mapping fixed on disk: `get` looks at the
    folder at most that often and, when a YAML file was added, removed or written, compiles
    everything again from then on. `refresh()` looks at once.
    """

    def __init__(self, root: Path, *, recheck_seconds: float | None = None) -> None:
        self.root = root
        self._recheck = recheck_seconds
        self._stamp = _folder_stamp(root) if recheck_seconds is not None else None
        self._checked = time.monotonic()
        self._forget()

    def _forget(self) -> None:
        self._mappings: dict[str, Mapping] = {}
        self._parts: dict[str, tuple[YamlDoc, Loc]] = {}
        self._maps: dict[Path, ValueMap] = {}
        self._tables: dict[Path, Table] = {}
        self._globals: dict[str, list[Any]] | None = None

    def refresh(self) -> bool:
        """Compile again from now on if the folder changed since it was last looked at;
        whether it had."""
        self._checked = time.monotonic()
        stamp = _folder_stamp(self.root)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self._forget()
        return True

    def names(self) -> list[str]:
        """Every mapping's name: its path under the folder without `.yaml`."""
        found = []
        for path in self.root.rglob("*.yaml"):
            relative = path.relative_to(self.root)
            parts = relative.parts
            if len(parts) < 2 or any(p.startswith(("_", ".")) for p in parts):
                continue
            if parts[0] in ("maps", "parts", "tables") or {"maps", "tables", "examples"} & set(
                parts[:-1]
            ):
                continue
            found.append(relative.with_suffix("").as_posix())
        return sorted(found)

    def get(self, name: str) -> Mapping:
        if self._recheck is not None and time.monotonic() - self._checked >= self._recheck:
            self.refresh()
        if name not in self._mappings:
            path = self.root / f"{name}.yaml"
            if name not in self.names():
                known = ", ".join(self.names())
                raise MappingConfigError(f"{name}", None, "", f"no such mapping (known: {known})")
            self._mappings[name] = Mapping(self, name, path)
        return self._mappings[name]

    def display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root.parent).as_posix()
        except ValueError:
            return str(path)

    def globals(self) -> dict[str, list[Any]]:
        if self._globals is None:
            path = self.root / "globals.yaml"
            data = load_yaml(path, self.display(path)).data if path.exists() else {}
            if not isinstance(data, dict):
                raise MappingConfigError(self.display(path), 1, "", "must map names to values")
            self._globals = {str(k): [v] for k, v in data.items()}
        return self._globals

    def part(self, name: str) -> tuple[YamlDoc, Loc]:
        if name not in self._parts:
            path = self.root / "parts" / f"{name}.yaml"
            if not path.is_file():
                raise KeyError(f"no part {name!r} (looked for {self.display(path)})")
            doc = load_yaml(path, self.display(path))
            _validated(doc, PartFile)
            self._parts[name] = (doc, ("template",))
        return self._parts[name]

    def value_map(self, mapping_name: str, name: str) -> ValueMap:
        source = mapping_name.split("/")[0]
        for path in (
            self.root / source / "maps" / f"{name}.yaml",
            self.root / "maps" / f"{name}.yaml",
        ):
            if path.is_file():
                return self._load_map(path)
        raise KeyError(f"no value map {name!r} in {source}/maps/ or maps/")

    def _map_paths(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.yaml") if p.parent.name == "maps")

    def table(self, mapping_name: str, name: str) -> Table:
        source = mapping_name.split("/")[0]
        for path in (
            self.root / source / "tables" / f"{name}.yaml",
            self.root / "tables" / f"{name}.yaml",
        ):
            if path.is_file():
                return self._load_table(path)
        raise KeyError(f"no table {name!r} in {source}/tables/ or tables/")

    def _table_paths(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.yaml") if p.parent.name == "tables")

    def tables(self) -> list[Table]:
        """Every lookup table in the folder."""
        return [self._load_table(path) for path in self._table_paths()]

    def _load_table(self, path: Path) -> Table:
        if path not in self._tables:
            doc = load_yaml(path, self.display(path))
            rows = doc.data.get("rows") if isinstance(doc.data, dict) else None
            for index, row in enumerate(rows if isinstance(rows, list) else ()):
                for column, value in row.items() if isinstance(row, dict) else ():
                    if not isinstance(value, str):
                        # YAML reads W1: 1 as a number and yes as true; a table holds text.
                        raise doc.error(("rows", index, column), f"{value!r} must be quoted text")
            spec = _validated(doc, TableFile)
            self._tables[path] = Table(path.stem, spec)
        return self._tables[path]

    def _load_map(self, path: Path) -> ValueMap:
        if path not in self._maps:
            doc = load_yaml(path, self.display(path))
            codes = doc.data.get("map") if isinstance(doc.data, dict) else None
            for code in codes if isinstance(codes, dict) else ():
                if not isinstance(code, str):
                    # YAML reads 01: as the number 1 and Y: as true; a local code is text.
                    raise doc.error(("map", code), f"code {code!r} must be quoted text ('{code}')")
            spec = _validated(doc, ValueMapFile)
            label = path.relative_to(self.root).with_suffix("").as_posix().replace("/maps/", "/")
            self._maps[path] = ValueMap(label.removeprefix("maps/"), spec)
        return self._maps[path]

    def value_maps(self) -> list[ValueMap]:
        """Every value map in the folder (also those no mapping uses yet)."""
        return [self._load_map(path) for path in self._map_paths()]

    def check(self) -> list[MappingConfigError]:
        """Compile every mapping and value map; the problems found, one per file at most."""
        problems = []
        for name in self.names():
            try:
                self.get(name)
            except MappingConfigError as exc:
                problems.append(exc)
        for path in self._map_paths():
            try:
                self._load_map(path)
            except MappingConfigError as exc:
                problems.append(exc)
        for path in self._table_paths():
            try:
                self._load_table(path)
            except MappingConfigError as exc:
                problems.append(exc)
        return problems


@dataclass(slots=True)
class _ResourcePlan:
    rule: ResourceRule
    when: Expr | None
    each: Expr | None
    system: Expr
    value: Expr
    body: Build
    keep: tuple[Keep, ...]


class Mapping:
    """One compiled mapping: `map_record` turns a source record into a `MappedRecord`."""

    def __init__(self, mappings: MappingSet, name: str, path: Path) -> None:
        self.name = name
        self.file = mappings.display(path)
        doc = load_yaml(path, self.file)
        self.spec = spec = _validated(doc, MappingFile)
        self.format: SourceFormat = source_format(spec.format)
        used: list[bytes] = [path.read_bytes()]
        env = CompileEnv(
            fmt=self.format,
            variables={*mappings.globals(), *spec.let},
            constants={k: v for k, v in mappings.globals().items() if k not in spec.let},
            value_map=lambda n: self._value_map(mappings, n, used),
            table=lambda n: self._table(mappings, n, used),
            resources={rule.id: rule.each is None for rule in spec.resources},
            private=frozenset(spec.private),
            pipe_functions=PIPE,
            term_functions=TERM,
        )

        def part(name: str) -> tuple[YamlDoc, Loc]:
            found = mappings.part(name)
            used.append(found[0].file.encode() + repr(found[0].data).encode())
            return found

        compiler = TemplateCompiler(env, part)
        self._globals = mappings.globals()
        self._lets = [
            (
                name,
                compiler.expression(doc, ("let", name), _expression_text(doc, ("let", name), text)),
            )
            for name, text in spec.let.items()
        ]
        self._organisation = self._expression_or_constant(
            compiler, doc, ("organisation",), spec.organisation
        )
        self._record_id = self._optional(compiler, doc, ("record_id",), spec.record_id)
        self._order_by = self._optional(compiler, doc, ("order_by",), spec.order_by)
        self._timestamp = self._optional(compiler, doc, ("timestamp",), spec.timestamp)
        self._withhold = (
            self._optional(compiler, doc, ("withhold", "when"), spec.withhold.when)
            if spec.withhold
            else None
        )
        self._plans = [self._plan(compiler, doc, i, rule) for i, rule in enumerate(spec.resources)]
        self._warnings = [
            (
                self._optional(compiler, doc, ("warnings", i, "when"), warning.when),
                self._expression_or_constant(
                    compiler, doc, ("warnings", i, "message"), warning.message
                ),
            )
            for i, warning in enumerate(spec.warnings)
        ]
        self._instructions = [
            self._instruction(compiler, doc, i, inst) for i, inst in enumerate(spec.instructions)
        ]
        self.columns = frozenset(env.columns)
        self.paths = frozenset(env.paths)
        for text in sorted(self.paths):
            problem = self.format.check_path(text)
            if problem:
                raise MappingConfigError(self.file, None, "", f"{text}: {problem}")
        self.version = hashlib.sha256(b"\0".join(used)).hexdigest()[:12]

    def _value_map(self, mappings: MappingSet, name: str, used: list[bytes]) -> ValueMap:
        from ._expr import ExpressionError

        try:
            value_map = mappings.value_map(self.name, name)
        except KeyError as exc:
            raise ExpressionError(str(exc.args[0])) from None
        used.append(value_map.name.encode() + repr(value_map.spec).encode())
        return value_map

    def _table(self, mappings: MappingSet, name: str, used: list[bytes]) -> Table:
        from ._expr import ExpressionError

        try:
            table = mappings.table(self.name, name)
        except KeyError as exc:
            raise ExpressionError(str(exc.args[0])) from None
        used.append(table.name.encode() + repr(table.spec).encode())
        return table

    def _expression_or_constant(
        self, compiler: TemplateCompiler, doc: YamlDoc, loc: Loc, text: str
    ) -> Expr:
        if text.startswith("="):
            return compiler.expression(doc, loc, text[1:])
        return Expr(text, lambda ctx, v=[text]: v, [text])

    def _optional(
        self, compiler: TemplateCompiler, doc: YamlDoc, loc: Loc, text: str | None
    ) -> Expr | None:
        if text is None:
            return None
        return compiler.expression(doc, loc, _expression_text(doc, loc, text))

    def _plan(
        self, compiler: TemplateCompiler, doc: YamlDoc, index: int, rule: ResourceRule
    ) -> _ResourcePlan:
        loc: Loc = ("resources", index)
        try:
            elements_of(rule.type)
        except KeyError:
            raise doc.error((*loc, "type"), f"{rule.type!r} is not an R4 resource type") from None
        if rule.placeholder and (rule.type == "Patient" or rule.keep):
            # Patients are identity's to create; kept items accumulate onto what is stored.
            raise doc.error(
                (*loc, "placeholder"),
                f"a {rule.type} with `keep` cannot be a placeholder"
                if rule.keep
                else "a Patient cannot be a placeholder",
            )
        template: dict[str, Any] = dict(rule.set)
        if rule.use:
            template = {"$use": rule.use, **template}
        body = compiler.object(doc, (*loc, "set"), template, rule.type, rule.type, whole=True)
        for number, kept in enumerate(rule.keep):
            spec = elements_of(rule.type).get(kept.element)
            if spec is None or not spec.is_list:
                raise doc.error(
                    (*loc, "keep", number, "element"),
                    f"{kept.element!r} is not a list element of {rule.type}",
                )
        return _ResourcePlan(
            rule=rule,
            when=self._optional(compiler, doc, (*loc, "when"), rule.when),
            each=self._optional(compiler, doc, (*loc, "each"), rule.each),
            system=self._expression_or_constant(
                compiler, doc, (*loc, "key", "system"), rule.key.system
            ),
            value=self._expression_or_constant(
                compiler, doc, (*loc, "key", "value"), rule.key.value
            ),
            body=body,
            keep=tuple(Keep(k.element, k.timeline) for k in rule.keep),
        )

    def _instruction(self, compiler: TemplateCompiler, doc: YamlDoc, index: int, inst: Any):
        loc: Loc = ("instructions", index)
        fields = {k: v for k, v in inst.model_dump().items() if k not in ("kind", "when")}
        body = compiler.object(doc, loc, fields, None, inst.kind, whole=True)
        when = self._optional(compiler, doc, (*loc, "when"), inst.when)
        return inst.kind, when, body

    # -- running ---------------------------------------------------------------------------

    def read(
        self, stream: BinaryIO, file: str, *, check: Checker | None = None
    ) -> Iterator[MappedRecord]:
        """Map every record of one input file, streaming; unreadable records come out as
        records with errors, and the others go on."""
        for record in self.format.read(stream, file, columns=self.columns):
            if isinstance(record, SourceError):
                locator = f"{record.file} line {record.line}" if record.line else record.file
                yield MappedRecord(locator, b"", errors=[record.reason])
                continue
            yield self.map_record(record, check=check)

    def order_key(self, record: SourceRecord) -> str | None:
        """The record's `order_by` value: records with the same one are applied in the order
        they arrived; None (no `order_by`, or no value) orders it with the whole source."""
        if self._order_by is None:
            return None
        errors: list[str] = []
        ctx = Ctx(record.data, dict(self._globals), {})
        for name, expr in self._lets:
            ctx.vars[name] = _run(expr, ctx, errors, f"let {name}")
        return _first_text(_run(self._order_by, ctx, errors, "order_by")) or None

    def map_record(self, record: SourceRecord, *, check: Checker | None = None) -> MappedRecord:
        outcome = MappedRecord(record.locator, record.raw)
        errors = outcome.errors
        ctx = Ctx(record.data, dict(self._globals), {})
        for name, expr in self._lets:
            ctx.vars[name] = _run(expr, ctx, errors, f"let {name}")
        outcome.record_id = _first_text(_run(self._record_id, ctx, errors, "record_id"))
        outcome.timestamp = _first_text(_run(self._timestamp, ctx, errors, "timestamp"))
        if self._withhold is not None and truthy(_run(self._withhold, ctx, errors, "withhold")):
            outcome.withheld = self.spec.withhold.reason  # type: ignore[union-attr]
            return outcome
        organisation = _first_text(_run(self._organisation, ctx, errors, "organisation"))
        source = f"{SOURCE_BASE}{organisation}#{self.name}"
        for plan in self._plans:
            self._produce(plan, ctx, source, outcome)
        for kind, when, body in self._instructions:
            if when is None or truthy(_run(when, ctx, errors, f"instruction {kind}")):
                outcome.instructions.extend({"kind": kind, **made} for made in body(ctx, errors))
        for when, message in self._warnings:
            if truthy(_run(when, ctx, errors, "warning")):
                text = _first_text(_run(message, ctx, errors, "warning message"))
                if text and text not in outcome.warnings:
                    outcome.warnings.append(text)
        if check is not None and not errors:
            for made in outcome.resources:
                errors.extend(f"{made.type}: {problem}" for problem in check(made.resource))
        if errors:
            outcome.resources.clear()
            outcome.instructions.clear()
            outcome.warnings.clear()
        return outcome

    def _produce(self, plan: _ResourcePlan, ctx: Ctx, source: str, outcome: MappedRecord) -> None:
        rule, errors = plan.rule, outcome.errors
        # With `each:`, `when:` tests each item (`@`); without, the record.
        when_each = plan.each is not None and plan.when is not None
        if not when_each and not self._wanted(plan, ctx, errors):
            return
        items = (
            [ctx.item] if plan.each is None else _run(plan.each, ctx, errors, f"{rule.type} each")
        )
        saved = (ctx.item, ctx.index)
        for index, item in enumerate(items, 1):
            ctx.item, ctx.index = item, index
            if when_each and not self._wanted(plan, ctx, errors):
                continue
            system = _first_text(_run(plan.system, ctx, errors, f"{rule.type} key system"))
            value = _first_text(_run(plan.value, ctx, errors, f"{rule.type} key value"))
            if not system or not value:
                if errors:
                    continue  # the reason it is empty is already said
                errors.append(
                    f"{rule.type} key: {plan.value.text if system else plan.system.text} is empty"
                    " (every resource needs its business identifier; use `when:` to skip it)"
                )
                continue
            if plan.each is None:
                ctx.keys[rule.id] = (rule.type, system, value)
            body = plan.body(ctx, errors)
            resource = _finish(rule.type, body[0] if body else {}, system, value, source)
            made = MappedResource(rule.type, system, value, resource, plan.keep, rule.placeholder)
            _add(outcome.resources, made)
        ctx.item, ctx.index = saved

    @staticmethod
    def _wanted(plan: _ResourcePlan, ctx: Ctx, errors: list[str]) -> bool:
        return plan.when is None or truthy(_run(plan.when, ctx, errors, f"{plan.rule.type} when"))


def _add(resources: list[MappedResource], made: MappedResource) -> None:
    """One resource per key in a record: a second one with the same key (two NK1 segments
    for one person) is combined with the first, never written twice."""
    for index, earlier in enumerate(resources):
        if (earlier.type, earlier.system, earlier.value) == (made.type, made.system, made.value):
            resources[index] = replace(earlier, resource=_combine(earlier.resource, made.resource))
            return
    resources.append(made)


def _combine(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """List elements gain the second's items they lack; any other element keeps the first's."""
    combined = dict(first)
    for key, value in second.items():
        if key not in combined:
            combined[key] = value
        elif isinstance(combined[key], list) and isinstance(value, list):
            combined[key] = combined[key] + [v for v in value if v not in combined[key]]
    return combined


def _finish(
    resource_type: str, body: dict[str, Any], system: str, value: str, source: str
) -> dict[str, Any]:
    key = {"system": system, "value": value}
    meta = {**body.pop("meta", {}), "source": source}
    if not elements_of(resource_type)["identifier"].is_list:
        # QuestionnaireResponse (and a few others) have one identifier: the key is it.
        body.pop("identifier", None)
        return {"resourceType": resource_type, "meta": meta, "identifier": key, **body}
    identifiers = body.pop("identifier", [])
    if not any(i.get("system") == system and i.get("value") == value for i in identifiers):
        identifiers = [key, *identifiers]
    return {"resourceType": resource_type, "meta": meta, "identifier": identifiers, **body}


def _run(expr: Expr | None, ctx: Ctx, errors: list[str], what: str) -> list[Any]:
    if expr is None:
        return []
    try:
        return expr.run(ctx)
    except FieldError as exc:
        errors.append(f"{what} from {expr.text}: {exc}")
        return []


def _first_text(values: list[Any]) -> str | None:
    return str(values[0]) if values and values[0] not in (None, "") else None


def _expression_text(doc: YamlDoc, loc: Loc, text: str) -> str:
    if not isinstance(text, str) or not text.startswith("="):
        raise doc.error(loc, f"takes an expression starting with '=', got {text!r}")
    return text[1:]
