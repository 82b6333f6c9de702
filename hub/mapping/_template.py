"""Templates: the `set:` of a mapping, shaped like the FHIR JSON, compiled into builders.

Element names are checked against the R4 models at load time; at run time each builder gives the
values of one element, converted to the element's JSON type, with empties left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.fhir._elements import ElementSpec, elements_of, unknown_element_message

from ._expr import CompileEnv, Ctx, ExpressionError, FieldError, compile_expression, truthy
from ._functions import _to_decimal, _to_int, to_boolean
from ._yaml import Loc, YamlDoc

Build = Callable[[Ctx, list[str]], list[Any]]
CONTROL_KEYS = frozenset({"$when", "$each", "$at", "$use"})


def _convert_one(value: Any, spec: ElementSpec | None) -> Any:
    if spec is None:
        return value
    kind = spec.kind
    if kind == "object":
        if isinstance(value, dict):
            return value
        raise FieldError(f"{value!r} is a single value, but this element needs an object")
    if isinstance(value, dict):
        raise FieldError(f"gave an object {value!r}, but this element needs a {kind}")
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise FieldError(f"{value!r} is a composite: name one of its components (e.g. PID-5.1)")
    if kind == "integer":
        return _to_int(value)
    if kind == "decimal":
        return _to_decimal(value)
    return to_boolean(value)


class TemplateCompiler:
    """Compiles one mapping's templates; `doc` is the file being compiled (for error lines)."""

    def __init__(self, env: CompileEnv, part: Callable[[str], tuple[YamlDoc, Loc]]) -> None:
        self.env = env
        self.part = part  # `$use:` name -> (the part's YAML document, the loc of its template)

    def expression(self, doc: YamlDoc, loc: Loc, text: str):
        try:
            return compile_expression(text, self.env)
        except ExpressionError as exc:
            raise doc.error(loc, str(exc)) from None

    def object(
        self,
        doc: YamlDoc,
        loc: Loc,
        template: Any,
        type_name: str | None,
        path: str,
        *,
        whole: bool = False,
    ) -> Build:
        """`whole`: a resource's own body, kept with its constants even when the source gave
        nothing else."""
        if not isinstance(template, dict):
            raise doc.error(loc, f"{path} needs an object here, got {template!r}")
        fields = self._fields_with_parts(doc, loc, template)
        builders: list[tuple[str, Build, bool]] = []
        if type_name == "Resource":
            type_name = self._contained_type(fields)
            builders.append(("resourceType", lambda ctx, errors, t=[type_name]: t, False))
        when = self._control(fields, "$when")
        each = self._control(fields, "$each") or self._control(fields, "$at")
        dynamic = [False] * len(builders)
        for key, (field_doc, field_loc, raw) in fields.items():
            if key in CONTROL_KEYS or (key == "resourceType" and builders):
                continue
            if isinstance(key, str) and key.startswith("$"):
                raise field_doc.error(field_loc, f"unknown control key {key!r}")
            spec = self._spec(field_doc, field_loc, type_name, key)
            build = self.field(field_doc, field_loc, raw, spec, f"{path}.{key}")
            builders.append((key, build, spec is not None and spec.is_list))
            dynamic.append(_from_source(build))
        # An object made only partly of constants (an extension's url, a coding's system) means
        # nothing when every value from the source is missing: it is left out as a whole.
        needs_source = any(dynamic) and not whole
        element = path
        plan = [(k, b, is_list, d) for (k, b, is_list), d in zip(builders, dynamic, strict=True)]
        if when is None and each is None and not any(dynamic):
            # Constants only (a fixed Coding, a fixed extension): made once, shared by every
            # resource; mapped resources are read-only.
            made = _assemble_constants(plan)
            return _constant(made)

        def assemble(ctx: Ctx, errors: list[str]) -> dict[str, Any] | None:
            if when is not None and not truthy(_evaluate(when, ctx, errors, element)):
                return None
            built: dict[str, Any] = {}
            sourced = False
            for key, build, is_list, from_source in plan:
                values = build(ctx, errors)
                if not values:
                    continue
                sourced = sourced or from_source
                if is_list:
                    built[key] = values
                elif len(values) == 1:
                    built[key] = values[0]
                else:
                    errors.append(
                        f"{element}.{key}: gave {len(values)} values where one is allowed"
                    )
            return built if built and (sourced or not needs_source) else None

        def build(ctx: Ctx, errors: list[str]) -> list[Any]:
            if each is None:
                made = assemble(ctx, errors)
                return [made] if made is not None else []
            saved, found = (ctx.item, ctx.index), []
            items = _evaluate(each, ctx, errors, element)
            for index, item in enumerate(items, 1):
                ctx.item, ctx.index = item, index
                failed_before = len(errors)
                made = assemble(ctx, errors)
                if made is not None:
                    found.append(made)
                if len(errors) > failed_before:
                    label = f"{each.text} #{index}" if len(items) > 1 else each.text
                    _name_item(errors, failed_before, element, label)
            ctx.item, ctx.index = saved
            return found

        return build

    @staticmethod
    def _contained_type(fields: dict[str, tuple[YamlDoc, Loc, Any]]) -> str:
        """A contained resource (`contained:`) says its type with a constant resourceType."""
        doc, loc, raw = fields.get("resourceType", (None, (), None))
        if doc is None:
            some_doc, some_loc, _ = next(iter(fields.values()))
            raise some_doc.error(some_loc[:-1], "a contained resource needs `resourceType: Type`")
        try:
            elements_of(str(raw))
        except KeyError:
            raise doc.error(loc, f"{raw!r} is not an R4 resource type") from None
        return str(raw)

    def _fields_with_parts(
        self, doc: YamlDoc, loc: Loc, template: dict[str, Any]
    ) -> dict[str, tuple[YamlDoc, Loc, Any]]:
        fields: dict[str, tuple[YamlDoc, Loc, Any]] = {}
        part_name = template.get("$use")
        if part_name is not None:
            if not isinstance(part_name, str):
                raise doc.error((*loc, "$use"), "$use names a part, e.g. hl7v2/xpn")
            try:
                part_doc, part_loc = self.part(part_name)
            except KeyError as exc:
                raise doc.error((*loc, "$use"), str(exc.args[0])) from None
            part_template = part_doc.data
            for key in part_loc:
                part_template = part_template[key]
            part_fields = self._fields_with_parts(part_doc, part_loc, part_template)
            fields.update(part_fields)
        for key, raw in template.items():
            if key != "$use":
                fields[key] = (doc, (*loc, key), raw)
        return fields

    def _control(self, fields: dict[str, tuple[YamlDoc, Loc, Any]], key: str):
        if key not in fields:
            return None
        doc, loc, raw = fields[key]
        if not isinstance(raw, str) or not raw.startswith("="):
            raise doc.error(loc, f"{key} takes an expression starting with '='")
        expr = self.expression(doc, loc, raw[1:])
        return expr

    @staticmethod
    def _spec(doc: YamlDoc, loc: Loc, type_name: str | None, key: Any) -> ElementSpec | None:
        if type_name is None:
            return None
        if key == "resourceType":
            raise doc.error(loc, "resourceType is set from `type:`; leave it out")
        spec = elements_of(type_name).get(key) if isinstance(key, str) else None
        if spec is None:
            raise doc.error(loc, unknown_element_message(type_name, str(key)))
        return spec

    def field(self, doc: YamlDoc, loc: Loc, raw: Any, spec: ElementSpec | None, path: str) -> Build:
        if isinstance(raw, list):
            if spec is not None and not spec.is_list:
                raise doc.error(loc, f"{path} takes one value, not a list")
            items = [self.item(doc, (*loc, i), x, spec, path) for i, x in enumerate(raw)]

            if not any(_from_source(build) for build in items):
                return _constant([v for build in items for v in build(Ctx(None, {}, {}), [])])

            def build_all(ctx: Ctx, errors: list[str]) -> list[Any]:
                return [value for build in items for value in build(ctx, errors)]

            return build_all
        return self.item(doc, loc, raw, spec, path)

    def item(self, doc: YamlDoc, loc: Loc, raw: Any, spec: ElementSpec | None, path: str) -> Build:
        if isinstance(raw, dict):
            if spec is not None and spec.kind != "object":
                raise doc.error(loc, f"{path} is a {spec.kind}, not an object")
            return self.object(doc, loc, raw, spec.type_name if spec else None, path)
        if isinstance(raw, str) and raw.startswith("="):
            return self._expression_build(doc, loc, raw[1:], spec, path)
        if raw is None:
            raise doc.error(loc, f"{path} has no value (leave the key out, or give a value)")
        try:
            constant = [_convert_one(raw, spec)]
        except FieldError as exc:
            raise doc.error(loc, f"{path}: {exc}") from None
        return _constant(constant)

    def _expression_build(
        self, doc: YamlDoc, loc: Loc, text: str, spec: ElementSpec | None, path: str
    ) -> Build:
        expr = self.expression(doc, loc, text)
        run, source = expr.run, expr.text
        if expr.constant is not None:  # literals, globals and what is made of them only
            try:
                return _constant([_convert_one(v, spec) for v in expr.constant if v != ""])
            except FieldError as exc:
                raise doc.error(loc, f"{path}: {exc}") from None
        text_ok = spec is None or spec.kind == "string"
        # Values that already have the element's JSON type (most) pass without conversion.
        ready = {"string": str, "integer": int, "object": dict}.get(spec.kind if spec else "string")

        def convert(v: Any) -> Any:
            return v if type(v) is ready else _convert_one(v, spec)

        def build(ctx: Ctx, errors: list[str]) -> list[Any]:
            try:
                values = run(ctx)
                if not values:
                    return values
                if len(values) == 1 and type(values[0]) is str and text_ok:
                    # One text for a string element, most elements: no new list.
                    return values if values[0] else []
                return [convert(v) for v in values if v is not None and v != ""]
            except FieldError as exc:
                errors.append(f"{path} from {source}: {exc}")
                return []

        return build


def _assemble_constants(plan: list[tuple[str, Build, bool, bool]]) -> list[dict[str, Any]]:
    no_record = Ctx(None, {}, {})
    built: dict[str, Any] = {}
    for key, build, is_list, _ in plan:
        values = build(no_record, [])
        if values:
            built[key] = values if is_list else values[0]
    return [built] if built else []


def _constant(values: list[Any]) -> Build:
    """A build that needs no record: worked out once, marked so objects know it."""

    def build(ctx: Ctx, errors: list[str]) -> list[Any]:
        return values

    build.from_source = False  # type: ignore[attr-defined]
    return build


def _from_source(build: Build) -> bool:
    """Whether a build takes anything from the source record."""
    return getattr(build, "from_source", True)


def _name_item(errors: list[str], start: int, element: str, label: str) -> None:
    """`CarePlan.contained.id ...` -> `CarePlan.contained[goals #2].id ...`: an error inside an
    object made per item says which item."""
    for i in range(start, len(errors)):
        if errors[i].startswith(element):
            errors[i] = f"{element}[{label}]{errors[i][len(element) :]}"


def _evaluate(expr, ctx: Ctx, errors: list[str], element: str) -> list[Any]:
    try:
        return expr.run(ctx)
    except FieldError as exc:
        errors.append(f"{element} from {expr.text}: {exc}")
        return []
