"""A parsed `SearchQuery` as SQL over the resource and index tables.

Every condition is `rid IN (SELECT rid FROM idx_... WHERE pid = ? AND ...)`, so each is answered
from one covering index; conditions are ANDed, the values inside one condition ORed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import count
from typing import Any

from hub.store._query import (
    ANY,
    Condition,
    DateQuery,
    NumberQuery,
    ReferenceQuery,
    SearchQuery,
    SortKey,
    TokenQuery,
)
from hub.store._search_params import normalise_string

from ._indexer import IDENTIFIER_SUFFIX, RESOURCE_COLUMNS

_TABLE = {
    "token": "idx_token",
    "uri": "idx_token",
    "string": "idx_string",
    "date": "idx_date",
    "reference": "idx_ref",
    "number": "idx_number",
}
_PREFIX_END = "\U0010ffff"


def date_predicate(low: str, high: str, value: DateQuery) -> tuple[str, list[Any]]:
    """FHIR R4 search §3.1.1.4 prefixes on half-open ranges [low, high)."""
    eq = f"({low} >= ? AND {high} <= ? AND {low} < ?)"
    eq_args = [value.low, value.high, value.high]
    match value.prefix:
        case "eq":
            return eq, eq_args
        case "ne":
            return f"NOT {eq}", eq_args
        case "gt":
            return f"{high} > ?", [value.high]
        case "lt":
            return f"{low} < ?", [value.low]
        case "ge":
            return f"({high} > ? OR {eq})", [value.high, *eq_args]
        case "le":
            return f"({low} < ? OR {eq})", [value.low, *eq_args]
        case "sa":
            return f"{low} >= ?", [value.high]
        case "eb":
            return f"{high} <= ?", [value.low]
        case _:  # ap: overlaps
            return f"({low} < ? AND {high} > ?)", [value.high, value.low]


def _number_predicate(value: NumberQuery) -> tuple[str, list[Any]]:
    operator = {"eq": "=", "ne": "!=", "gt": ">", "lt": "<", "ge": ">=", "le": "<="}
    return f"value {operator.get(value.prefix, '=')} ?", [value.value]


def _token_predicate(value: TokenQuery) -> tuple[str, list[Any]]:
    if value.code is None:
        return "system = ?", [value.system]
    if value.system is ANY:
        return "code = ?", [value.code]
    if value.system is None:
        return "(code = ? AND system = '')", [value.code]
    return "(code = ? AND system = ?)", [value.code, value.system]


def token_rows_match(
    query: SearchQuery, rows: Collection[tuple[Any, ...]], pids: dict[str, int]
) -> bool | None:
    """Whether a resource with these `idx_token` rows (pid, code, system) meets `query`, as
    `_token_predicate` would find it; None when the query asks more than token equalities."""
    if not query.conditions:
        return None
    for condition in query.conditions:
        param = condition.param
        if (
            param.type != "token"
            or param.code in RESOURCE_COLUMNS
            or condition.modifier is not None
            or condition.chain is not None
        ):
            return None
        pid = pids[param.key]
        if not any(
            _token_row_matches(value, row)
            for value in condition.values
            for row in rows
            if row[0] == pid
        ):
            return False
    return True


def _token_row_matches(value: TokenQuery, row: tuple[Any, ...]) -> bool:
    _, code, system = row
    if value.code is None:
        return system == value.system
    if value.system is ANY:
        return code == value.code
    return code == value.code and system == (value.system or "")


def _string_predicate(value: str, modifier: str | None) -> tuple[str, list[Any]]:
    if modifier == "exact":
        return "(value = ? AND exact = ?)", [normalise_string(value), value]
    if modifier == "contains":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return "value LIKE ? ESCAPE '\\'", [f"%{escaped}%"]
    return "(value >= ? AND value < ?)", [value, value + _PREFIX_END]


# `url != ''` lets SQLite use the partial index on url (it cannot tell that a bound value
# is not '' by itself).
_URL = "(url != '' AND url = ?)"


def _reference_predicate(value: ReferenceQuery) -> tuple[str, list[Any]]:
    if value.url is not None:
        return _URL, [value.url]
    if value.resource_type is None:
        return "target_id = ?", [value.id]
    return "(target_id = ? AND target_type = ?)", [value.id, value.resource_type]


class SqlBuilder:
    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._aliases = count()

    def where(self, query: SearchQuery, alias: str = "r") -> tuple[str, list[Any]]:
        return self._where(query.resource_type, query.conditions, alias)

    def _where(
        self, resource_type: str, conditions: Sequence[Condition], alias: str
    ) -> tuple[str, list[Any]]:
        # `+` keeps SQLite from driving the search by the type index: the conditions'
        # indexes are far more selective.
        clauses = [f"+{alias}.type = ?", f"{alias}.deleted = 0"]
        args: list[Any] = [resource_type]
        for condition in conditions:
            sql, cond_args = self._condition(condition, alias)
            clauses.append(sql)
            args.extend(cond_args)
        return " AND ".join(clauses), args

    def _condition(self, condition: Condition, alias: str) -> tuple[str, list[Any]]:
        param = condition.param
        if param.code in RESOURCE_COLUMNS and condition.modifier == "missing":
            # Every stored resource has an id and a lastUpdated.
            return ("0" if condition.values[0] else "1"), []
        if param.code == "_id":
            return self._id_condition(condition, alias)
        if param.code == "_lastUpdated":
            return self._last_updated_condition(condition, alias)
        if condition.chain is not None:
            return self._chain_condition(condition, alias)
        key = param.key
        table = _TABLE[param.type]
        if param.type == "reference" and condition.modifier == "identifier":
            key, table = key + IDENTIFIER_SUFFIX, "idx_token"
        pid = self._pids[key]
        if condition.modifier == "missing":
            negate = "NOT " if condition.values[0] else ""
            return f"{alias}.rid {negate}IN (SELECT rid FROM {table} WHERE pid = ?)", [pid]
        # Each value ORed with `pid = ?` of its own: SQLite then answers every value from the
        # index (MULTI-INDEX OR); `pid = ? AND (a OR b)` would scan all values of the parameter.
        predicates, args = [], []
        for value in condition.values:
            sql, value_args = self._value_predicate(table, value, condition.modifier)
            predicates.append(f"(pid = ? AND {sql})")
            args.extend([pid, *value_args])
        negate = "NOT " if condition.modifier == "not" else ""
        sql = f"{alias}.rid {negate}IN (SELECT rid FROM {table} WHERE {' OR '.join(predicates)})"
        return sql, args

    @staticmethod
    def _value_predicate(table: str, value: Any, modifier: str | None) -> tuple[str, list[Any]]:
        if isinstance(value, TokenQuery):
            return _token_predicate(value)
        if isinstance(value, DateQuery):
            return date_predicate("low", "high", value)
        if isinstance(value, NumberQuery):
            return _number_predicate(value)
        if isinstance(value, ReferenceQuery):
            return _reference_predicate(value)
        if table == "idx_token":  # uri
            if modifier == "below":
                return "(code >= ? AND code < ?)", [value, value + _PREFIX_END]
            return "code = ?", [value]
        return _string_predicate(value, modifier)

    @staticmethod
    def _id_condition(condition: Condition, alias: str) -> tuple[str, list[Any]]:
        ids = [v.code for v in condition.values]
        marks = ", ".join("?" * len(ids))
        negate = "NOT " if condition.modifier == "not" else ""
        return f"{alias}.id {negate}IN ({marks})", ids

    @staticmethod
    def _last_updated_condition(condition: Condition, alias: str) -> tuple[str, list[Any]]:
        column = f"{alias}.last_updated"
        predicates, args = [], []
        for value in condition.values:
            sql, value_args = date_predicate(column, f"({column} + 1)", value)
            predicates.append(sql)
            args.extend(value_args)
        return f"({' OR '.join(predicates)})", args

    def _chain_condition(self, condition: Condition, alias: str) -> tuple[str, list[Any]]:
        assert condition.chain is not None
        pid = self._pids[condition.param.key]
        branches, args = [], []
        for target_type, inner in condition.chain.items():
            target = f"t{next(self._aliases)}"
            where, where_args = self._where(target_type, [inner], target)
            branches.append(
                f"(pid = ? AND target_type = ? AND target_id IN "
                f"(SELECT {target}.id FROM resource {target} WHERE {where}))"
            )
            args.extend([pid, target_type, *where_args])
        sql = f"{alias}.rid IN (SELECT rid FROM idx_ref WHERE {' OR '.join(branches)})"
        return sql, args

    def order_by(self, sort: Sequence[SortKey], alias: str = "r") -> tuple[str, list[Any]]:
        terms, args = [], []
        for key in sort:
            direction = "DESC" if key.descending else "ASC"
            if key.code == "_lastUpdated":
                terms.append(f"{alias}.last_updated {direction}")
                continue
            if key.code == "_id":
                terms.append(f"{alias}.id {direction}")
                continue
            table = _TABLE[key.param.type]
            column = {"idx_date": "low", "idx_token": "code"}.get(table, "value")
            aggregate = "MAX" if key.descending else "MIN"
            terms.append(
                f"(SELECT {aggregate}({column}) FROM {table} WHERE pid = ? AND rid = {alias}.rid)"
                f" {direction}"
            )
            args.append(self._pids[key.param.key])
        terms.append(f"{alias}.rid ASC")
        return "ORDER BY " + ", ".join(terms), args
