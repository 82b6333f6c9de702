"""StructureDefinitions compiled, at load time, into closures that check resources.

Checking walks only the elements a profile speaks about, never the whole resource, and every
attribute a check needs is bound into its closure when the profiles are loaded: that is what
keeps a check on the mapping hot path in the tens of microseconds.

Every rule in a differential is either compiled here or refused with a ProfileLoadError: a rule
that looks enforced but is not would be a false promise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._fhirpath import UnsupportedExpression, compile_invariant
from ._issues import ProfileIssue, ProfileLoadError, Where, render
from ._terminology import CompiledValueSet, strip_version

Check = Callable[[Any, Where, list[ProfileIssue]], None]
ElementCheck = Callable[[dict[str, Any], Where, list[ProfileIssue]], None]

# Element properties that carry rules this checker does not implement.
_REFUSED = ("maxLength", "minValue", "maxValue", "contentReference")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _contains(pattern: Any, value: Any) -> bool:
    """FHIR pattern[x]: everything in the pattern is in the value (which may have more)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _contains(p, value[k]) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(_contains(p, v) for v in items) for p in pattern)
    return _equal(pattern, value)


def _never(value: Any) -> bool:
    return False


class _Node:
    """What the differential says about one element (or one slice of it), while compiling."""

    def __init__(self, profile: str, name: str, element_id: str) -> None:
        self.profile = profile
        self.name = name
        self.element_id = element_id
        self.choice_prefix: str | None = name[:-3] if name.endswith("[x]") else None
        self.choice_keys: frozenset[str] | None = None
        self.min = 0
        self.max: int | None = None
        self.min_rule = self.max_rule = ""
        self.checks: list[Check] = []
        self.children: dict[str, _Node] = {}
        self.slices: dict[str, _Node] = {}
        self.discriminators: list[dict[str, Any]] | None = None
        self.closed = False
        self.value: tuple[Any, bool] | None = None  # fixed[x]/pattern[x], is_pattern
        self.matcher: Callable[[Any], bool] = _never

    def child(self, name: str) -> _Node:
        if name not in self.children:
            self.children[name] = _Node(self.profile, name, f"{self.element_id}.{name}")
        return self.children[name]

    def slice(self, slice_name: str) -> _Node:
        if slice_name not in self.slices:
            node = _Node(self.profile, self.name, f"{self.element_id}:{slice_name}")
            node.choice_prefix = self.choice_prefix
            self.slices[slice_name] = node
        return self.slices[slice_name]


# -- the checks a node compiles to ------------------------------------------------------------


def _counter(node: _Node) -> Callable[[int, Where, list[ProfileIssue]], None]:
    """Reports a count outside min..max (called only when it is)."""
    element_id, low, high = node.element_id, node.min, node.max
    min_rule, max_rule = node.min_rule, node.max_rule

    def report(count: int, where: Where, issues: list[ProfileIssue]) -> None:
        path = render(where)
        if count < low:
            if count == 0:
                message = f"{element_id} is required (min {low}) but missing"
            else:
                message = f"{element_id} needs at least {low} values, found {count}"
            issues.append(ProfileIssue(min_rule, path, message))
        if high is not None and count > high:
            if high == 0:
                message = f"{element_id} is not allowed here (max 0)"
            else:
                message = f"{element_id} allows at most {high}, found {count}"
            issues.append(ProfileIssue(max_rule, path, message))

    return report


def _value_check(node: _Node) -> Check | None:
    """The checks of one value of `node`: its own rules, then its children's."""
    checks = tuple(node.checks)
    children = tuple(c for c in (_element_check(child) for child in node.children.values()) if c)
    if not checks and not children:
        return None
    if len(checks) == 1 and not children:
        return checks[0]

    def check_value(value: Any, where: Where, issues: list[ProfileIssue]) -> None:
        for check in checks:
            check(value, where, issues)
        if children and type(value) is dict:
            for child in children:
                child(value, where, issues)

    return check_value


def _element_check(node: _Node) -> ElementCheck | None:
    """Checks `node`'s values in one instance of its parent; None when it has no rules."""
    if node.choice_prefix is not None:
        return _choice_check(node)
    name, low, high = node.name, node.min, node.max
    each = _value_check(node)
    sliced = _slices_check(node)
    report = _counter(node)
    if each is None and sliced is None:
        if low == 0 and high is None:
            return None

        def count_only(parent: dict[str, Any], where: Where, issues: list[ProfileIssue]) -> None:
            raw = parent.get(name)
            count = 0 if raw is None else len(raw) if type(raw) is list else 1
            if count < low or (high is not None and count > high):
                report(count, (where, name, None), issues)

        return count_only

    def check_element(parent: dict[str, Any], where: Where, issues: list[ProfileIssue]) -> None:
        raw = parent.get(name)
        if raw is None:
            if low:
                report(0, (where, name, None), issues)
            return
        if type(raw) is list:
            count = len(raw)
            if count < low or (high is not None and count > high):
                report(count, (where, name, None), issues)
            if each is not None:
                for index, value in enumerate(raw):
                    each(value, (where, name, index), issues)
            if sliced is not None:
                sliced(raw, [(where, name, i) for i in range(count)], where, issues)
            return
        if low > 1 or high == 0:
            report(1, (where, name, None), issues)
        if each is not None:
            each(raw, (where, name, None), issues)
        if sliced is not None:
            sliced([raw], [(where, name, None)], where, issues)

    return check_element


def _choice_check(node: _Node) -> ElementCheck:
    prefix, low, high = node.choice_prefix or "", node.min, node.max
    allowed = node.choice_keys
    type_rule = f"{node.profile}: {node.element_id} type"
    each = _value_check(node)
    report = _counter(node)
    cut = len(prefix)

    def check_choice(parent: dict[str, Any], where: Where, issues: list[ProfileIssue]) -> None:
        found = [k for k in parent if k.startswith(prefix) and k[cut : cut + 1].isupper()]
        if len(found) < low or (high is not None and len(found) > high):
            report(len(found), (where, node.name, None), issues)
        for key in found:
            if allowed is not None and key not in allowed:
                issues.append(
                    ProfileIssue(
                        type_rule,
                        render((where, key, None)),
                        f"{key} is not allowed here: use {', '.join(sorted(allowed))}",
                    )
                )
            elif each is not None:
                each(parent[key], (where, key, None), issues)

    return check_choice


def _slices_check(
    node: _Node,
) -> Callable[[list[Any], list[Where], Where, list[ProfileIssue]], None] | None:
    if not node.slices:
        return None
    slices = [
        (slice_node.matcher, _counter(slice_node), slice_node.min, slice_node.max,
         _value_check(slice_node))
        for slice_node in node.slices.values()
    ]  # fmt: skip
    closed = node.closed
    closed_rule = f"{node.profile}: {node.element_id} slicing closed"
    names = ", ".join(node.slices)
    name = node.name

    def check_slices(
        values: list[Any], wheres: list[Where], parent: Where, issues: list[ProfileIssue]
    ) -> None:
        matched: list[list[int]] = [[] for _ in slices]
        for index, value in enumerate(values):
            for number, (matches, *_) in enumerate(slices):
                if matches(value):
                    matched[number].append(index)
                    break
            else:
                if closed:
                    issues.append(
                        ProfileIssue(
                            closed_rule,
                            render(wheres[index]),
                            f"the value matches none of the allowed slices ({names})",
                        )
                    )
        for (_, report, low, high, each), indexes in zip(slices, matched, strict=True):
            count = len(indexes)
            if count < low or (high is not None and count > high):
                report(count, (parent, name, None), issues)
            if each is not None:
                for index in indexes:
                    each(values[index], wheres[index], issues)

    return check_slices


class CompiledProfile:
    """A StructureDefinition ready to check resources of its type."""

    __slots__ = ("_check", "name", "type", "url")

    def __init__(self, url: str, type_: str, root: _Node) -> None:
        self.url = url
        self.name = url.rstrip("/").rsplit("/", 1)[-1]
        self.type = type_
        self._check = _value_check(root)

    def check(self, resource: dict[str, Any], issues: list[ProfileIssue]) -> None:
        if self._check is not None:
            self._check(resource, self.type, issues)


# -- compiling --------------------------------------------------------------------------------


class _Compiler:
    def __init__(
        self, file: Path, sd: Mapping[str, Any], value_sets: Mapping[str, CompiledValueSet]
    ) -> None:
        self.file = file
        self.sd = sd
        self.value_sets = value_sets
        self.profile = str(sd["url"]).rstrip("/").rsplit("/", 1)[-1]

    def fail(self, message: str) -> ProfileLoadError:
        return ProfileLoadError(self.file, message)

    def compile(self) -> CompiledProfile:
        sd = self.sd
        if sd.get("derivation") != "constraint":
            raise self.fail("only constraint StructureDefinitions (derivation: constraint) apply")
        type_ = sd.get("type")
        if not type_:
            raise self.fail("StructureDefinition.type is missing")
        root = _Node(self.profile, type_, type_)
        for element in (sd.get("differential") or {}).get("element", ()):
            self.apply(element, self.locate(root, element))
        self.finish(root)
        return CompiledProfile(sd["url"], type_, root)

    def locate(self, root: _Node, element: Mapping[str, Any]) -> _Node:
        element_id = element.get("id")
        if not element_id:
            raise self.fail(f"a differential element has no id (path {element.get('path')})")
        segments = element_id.split(".")
        if segments[0] != root.name:
            raise self.fail(f"element {element_id} is not part of {root.name}")
        path = ".".join(segment.split(":", 1)[0] for segment in segments)
        if element.get("path") != path:
            raise self.fail(f"element {element_id} has path {element.get('path')}, not {path}")
        node = root
        for segment in segments[1:]:
            name, _, slice_name = segment.partition(":")
            node = node.child(name)
            if slice_name:
                if "/" in slice_name:
                    raise self.fail(f"{element_id}: re-slicing is not supported")
                node = node.slice(slice_name)
        if element.get("sliceName") and not element_id.endswith(":" + element["sliceName"]):
            raise self.fail(f"{element_id}: sliceName {element['sliceName']} does not match id")
        return node

    def apply(self, element: Mapping[str, Any], node: _Node) -> None:
        eid = element["id"]
        rule = f"{self.profile}: {eid}"
        for key in element:
            if key.startswith(_REFUSED):
                raise self.fail(f"{eid}: {key} is not supported by the hub checker")
        if "min" in element:
            node.min = int(element["min"])
            node.min_rule = f"{rule} min {node.min}"
        if "max" in element:
            node.max = None if element["max"] == "*" else int(element["max"])
            node.max_rule = f"{rule} max {element['max']}"
        self.apply_types(element, node)
        for key, value in element.items():
            if key.startswith("fixed") and key[5:6].isupper():
                node.value = (value, False)
                node.checks.append(_fixed(f"{rule} fixed", value))
            elif key.startswith("pattern") and key[7:8].isupper():
                node.value = (value, True)
                node.checks.append(_pattern(f"{rule} pattern", value))
        binding = element.get("binding")
        if binding:
            check = self.binding(binding, rule)
            if check is not None:
                node.checks.append(check)
        for constraint in element.get("constraint", ()):
            node.checks.append(self.constraint(constraint, eid))
        if "slicing" in element:
            self.apply_slicing(element["slicing"], node, eid)

    def apply_types(self, element: Mapping[str, Any], node: _Node) -> None:
        types = element.get("type") or []
        for type_ in types:
            if type_.get("profile") or type_.get("targetProfile"):
                raise self.fail(f"{element['id']}: type profiles are not supported")
        if node.choice_prefix is not None and types:
            node.choice_keys = frozenset(
                node.choice_prefix + t["code"][:1].upper() + t["code"][1:] for t in types
            )

    def apply_slicing(self, slicing: Mapping[str, Any], node: _Node, eid: str) -> None:
        if slicing.get("ordered"):
            raise self.fail(f"{eid}: ordered slicing is not supported")
        rules = slicing.get("rules")
        if rules not in ("open", "closed"):
            raise self.fail(f"{eid}: slicing rules {rules!r} are not supported (open, closed)")
        discriminators = slicing.get("discriminator") or []
        if not discriminators:
            raise self.fail(f"{eid}: slicing needs a discriminator")
        for discriminator in discriminators:
            if discriminator.get("type") not in ("value", "pattern"):
                raise self.fail(
                    f"{eid}: discriminator type {discriminator.get('type')!r} is not supported "
                    "(value, pattern)"
                )
        node.discriminators = list(discriminators)
        node.closed = rules == "closed"

    def binding(self, binding: Mapping[str, Any], rule: str) -> Check | None:
        strength = binding.get("strength")
        url = binding.get("valueSet")
        if strength not in ("required", "extensible") or not url:
            return None  # preferred and example bindings are advice, not rules
        value_set = self.value_sets.get(strip_version(url))
        if value_set is None:
            return None  # a ValueSet not loaded here (a base FHIR one): no way to check
        return _binding(f"{rule} binding ({strength})", value_set, strength == "required")

    def constraint(self, constraint: Mapping[str, Any], eid: str) -> Check:
        key = constraint.get("key", "?")
        expression = constraint.get("expression")
        if not expression:
            raise self.fail(f"{eid}: constraint {key} has no expression the hub can check")
        try:
            invariant = compile_invariant(expression)
        except UnsupportedExpression as exc:
            raise self.fail(
                f"{eid}: constraint {key} expression {expression!r} is not supported: {exc}"
            ) from None
        rule = f"{self.profile}: {key}"
        message = constraint.get("human") or f"constraint {key} failed"
        severity = "warning" if constraint.get("severity") == "warning" else "error"

        def check(value: Any, where: Where, issues: list[ProfileIssue]) -> None:
            if invariant(value) is False:
                issues.append(ProfileIssue(rule, render(where), message, severity))

        return check

    def finish(self, node: _Node) -> None:
        if node.slices and node.discriminators is None:
            raise self.fail(f"{node.element_id} has slices but no slicing")
        if node.slices and node.choice_prefix is not None:
            raise self.fail(f"{node.element_id}: slicing a choice element is not supported")
        for slice_node in node.slices.values():
            slice_node.matcher = self.matcher(node, slice_node)
        for child in (*node.children.values(), *node.slices.values()):
            self.finish(child)

    def matcher(self, sliced: _Node, slice_node: _Node) -> Callable[[Any], bool]:
        tests: list[tuple[tuple[str, ...], Any, bool]] = []
        for discriminator in sliced.discriminators or ():
            path = discriminator.get("path", "$this")
            names = () if path == "$this" else tuple(path.split("."))
            target: _Node | None = slice_node
            for name in names:
                target = target.children.get(name) if target is not None else None
            if target is None or target.value is None:
                raise self.fail(
                    f"{slice_node.element_id}: no fixed or pattern value at discriminator "
                    f"path {path!r}"
                )
            tests.append((names, *target.value))
        if len(tests) == 1 and len(tests[0][0]) == 1 and not tests[0][2]:
            # The usual case (identifier by system, extension by url): one dictionary look-up.
            (key,), expected, _ = tests[0]
            return lambda value: type(value) is dict and value.get(key) == expected

        def matches(value: Any) -> bool:
            for names, expected, is_pattern in tests:
                actual = value
                for name in names:
                    actual = actual.get(name) if isinstance(actual, dict) else None
                if not (_contains(expected, actual) if is_pattern else _equal(expected, actual)):
                    return False
            return True

        return matches


def _fixed(rule: str, fixed: Any) -> Check:
    def check(value: Any, where: Where, issues: list[ProfileIssue]) -> None:
        if not _equal(fixed, value):
            issues.append(ProfileIssue(rule, render(where), f"is {value!r} but must be {fixed!r}"))

    return check


def _pattern(rule: str, pattern: Any) -> Check:
    def check(value: Any, where: Where, issues: list[ProfileIssue]) -> None:
        if not _contains(pattern, value):
            issues.append(ProfileIssue(rule, render(where), f"must contain {pattern!r}"))

    return check


def _describe(codings: list[Any]) -> str:
    shown = [
        f"{c.get('system', '(no system)')}|{c.get('code', '(no code)')}"
        for c in codings
        if isinstance(c, dict)
    ]
    return ", ".join(shown) or "no coding"


def _binding(rule: str, value_set: CompiledValueSet, required: bool) -> Check:
    url = value_set.url
    codes = value_set.codes
    whole_systems = value_set.whole_systems

    def check(value: Any, where: Where, issues: list[ProfileIssue]) -> None:
        if type(value) is str:
            if required and value_set.has_code(value) is False:
                issues.append(ProfileIssue(rule, render(where), f"code {value!r} is not in {url}"))
            return
        if type(value) is not dict:
            return
        is_concept = "coding" in value or ("text" in value and "code" not in value)
        codings = (value.get("coding") or []) if is_concept else [value]
        if type(codings) is not list:
            return
        if required:
            for coding in codings:
                if type(coding) is dict and (
                    value_set.has_coding(coding.get("system"), coding.get("code")) is not False
                ):
                    return
            issues.append(ProfileIssue(rule, render(where), f"{_describe(codings)}: not in {url}"))
            return
        # Extensible: other systems are welcome, but a code that claims a CodeSystem this
        # ValueSet includes whole must be one of its codes (a typo in a kebab-case code).
        for coding in codings:
            if type(coding) is not dict:
                continue
            system = coding.get("system")
            if system in whole_systems and (system, coding.get("code")) not in codes:
                issues.append(
                    ProfileIssue(
                        rule,
                        render(where),
                        f"code {coding.get('code')!r} is not a code of {system} (in {url})",
                    )
                )

    return check


def compile_structure(
    file: Path, sd: Mapping[str, Any], value_sets: Mapping[str, CompiledValueSet]
) -> CompiledProfile:
    """Compile one StructureDefinition; ProfileLoadError names the file and the element."""
    return _Compiler(file, sd, value_sets).compile()
