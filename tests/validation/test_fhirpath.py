"""The small FHIRPath subset the profiles' constraints are written in."""

from __future__ import annotations

import pytest

from hub.validation._fhirpath import UnsupportedExpression, compile_invariant


@pytest.mark.parametrize(
    ("expression", "focus", "result"),
    [
        ("value.matches('^[0-9]{10}$')", {"value": "9990000018"}, True),
        ("value.matches('^[0-9]{10}$')", {"value": "999 000 0018"}, False),
        ("value.matches('^[0-9]{10}$')", {}, None),  # empty: the invariant holds
        ("value.matches('^\\\\d{10}$')", {"value": "9990000018"}, True),
        ("matches('^https://')", "https://fhir.hub.example/source/RV5#slam-epr/adt", True),
        ("$this.matches('x')", 42, False),
        ("code.coding.system.matches('^http')", {"code": {"coding": [{"system": "urn:x"}]}}, False),
        ("policy.exists() or policyRule.exists()", {"policyRule": {}}, True),
        ("policy.exists() or policyRule.exists()", {}, False),
        ("a.exists() and b.empty()", {"a": 1}, True),
        ("a.exists() and b.empty()", {"a": 1, "b": [2]}, False),
        ("a.matches('x') or b.exists()", {}, None),  # empty or false is empty
        ("a.matches('x') or b.exists()", {"b": 1}, True),
        ("a.matches('x') and b.exists()", {"b": 1}, None),
    ],
)
def test_supported_invariants(expression: str, focus: object, result: bool | None) -> None:
    assert compile_invariant(expression)(focus) is result


@pytest.mark.parametrize(
    "expression",
    [
        "value.length() = 10",
        "identifier.where(system = 'x').exists()",
        "value.matches(x)",
        "exists() implies value.exists()",
        "value.exists(",
        "value",
        "value.matches('[')",
    ],
)
def test_anything_else_is_refused(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_invariant(expression)
