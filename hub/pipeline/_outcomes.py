"""How handling one inbox item can end, besides being applied."""

from __future__ import annotations


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
