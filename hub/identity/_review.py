"""Review-queue entries: pairs of Patients that may be one person, for a person to decide."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.state import Transaction, now_ms

from ._demographics import Agreement

Status = Literal["open", "accepted", "rejected"]
STATUSES: tuple[Status, ...] = ("open", "accepted", "rejected")

_COLUMNS = (
    "id, patient_id, candidate_id, evidence, reason, source, status, created_ms,"
    " decided_by, decided_ms"
)


@dataclass(frozen=True)
class ReviewCandidate:
    """A pair to queue: the Patient a record was given and the existing one it resembles."""

    patient_id: str
    candidate_id: str
    evidence: dict[str, Agreement]
    """Which fields agreed, differed or were missing: no values, safe to log and show."""
    reason: str
    source: str


@dataclass(frozen=True)
class MatchEntry:
    """One entry of the review queue."""

    id: int
    patient_id: str
    candidate_id: str
    evidence: dict[str, Agreement]
    reason: str
    source: str
    status: Status
    created_ms: int
    decided_by: str | None
    decided_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_key(a: str, b: str) -> str:
    """One key for a pair, whichever way round it is named."""
    return "|".join(sorted((a, b)))


def enqueue(tx: Transaction, review: ReviewCandidate) -> bool:
    """Queue a pair unless it was ever queued: a rejected pair is never asked about again,
    and an open one is not asked about twice. True: newly queued."""
    cursor = tx.execute(
        "INSERT INTO identity_matches (patient_id, candidate_id, pair, evidence, reason, source,"
        " status, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)"
        " ON CONFLICT (pair) DO NOTHING",
        (
            review.patient_id,
            review.candidate_id,
            pair_key(review.patient_id, review.candidate_id),
            json.dumps(review.evidence, sort_keys=True),
            review.reason,
            review.source,
            now_ms(),
        ),
    )
    return cursor.rowcount == 1


def select_entries(tx: Transaction, status: Status | None) -> list[MatchEntry]:
    if status is None:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM identity_matches ORDER BY id").fetchall()
    else:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM identity_matches WHERE status = ? ORDER BY id", (status,)
        ).fetchall()
    return [_entry(row) for row in rows]


def select_entry(tx: Transaction, entry_id: int) -> MatchEntry | None:
    row = tx.execute(
        f"SELECT {_COLUMNS} FROM identity_matches WHERE id = ?", (entry_id,)
    ).fetchone()
    return _entry(row) if row else None


def decide(tx: Transaction, entry_id: int, status: Status, by: str) -> None:
    tx.execute(
        "UPDATE identity_matches SET status = ?, decided_by = ?, decided_ms = ? WHERE id = ?",
        (status, by, now_ms(), entry_id),
    )


def _entry(row: tuple[Any, ...]) -> MatchEntry:
    entry_id, patient_id, candidate_id, evidence, reason, source, status, created = row[:8]
    return MatchEntry(
        id=int(entry_id),
        patient_id=patient_id,
        candidate_id=candidate_id,
        evidence=json.loads(evidence),
        reason=reason,
        source=source,
        status=status,
        created_ms=int(created),
        decided_by=row[8],
        decided_ms=row[9],
    )
