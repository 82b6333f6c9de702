"""How handling one inbox item can end, besides being applied."""

from __future__ import annotations

import sqlite3

import httpx

from hub.fhir import FhirError

_TRANSIENT_STATUSES = frozenset({408, 409, 412, 423, 429, 500, 502, 503, 504})


class Waiting(Exception):
    """The record needs something that has not arrived yet (the Patient a care plan is for,
    the consent a VCSE row depends on). It is parked, woken when `key` is written, and tried
    again after a while in any case."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class Withheld(Exception):
    """The record must not reach the shared record (no consent to share): kept in the inbox,
    counted, nothing written. With `wait_key`, it is applied after all if that key is written
    (the consent it lacked is recorded later)."""

    def __init__(self, reason: str, wait_key: str | None = None) -> None:
        super().__init__(reason, wait_key)
        self.reason = reason
        self.wait_key = wait_key


class Rejected(Exception):
    """The record can never be applied as it is (ambiguous reference, invalid resource): a
    dead letter, to be replayed after the cause is fixed."""


class GroupRefused(Exception):
    """The store refused a transaction of several records: one of them is at fault, and
    applying them one by one finds out which."""


def is_transient(exc: BaseException) -> bool:
    """A failure that goes away by itself (the FHIR server down or busy, a concurrent change,
    a locked database): the record is tried again later, never dropped."""
    if isinstance(exc, FhirError):
        return exc.status in _TRANSIENT_STATUSES
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return type(exc).__module__.startswith("psycopg") and type(exc).__name__ in {
        "OperationalError",
        "SerializationFailure",
        "DeadlockDetected",
    }
