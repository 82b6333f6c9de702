"""The writer the crash-safety test kills: transaction Bundles into an embedded store, forever.

usage: python _crash_writer.py STORE_FILE FIRST_TRANSACTION RESOURCES_PER_TRANSACTION

Transaction n holds Patients and Encounters (each Encounter's subject a `urn:uuid:` reference
to a Patient of the same Bundle), every one tagged with the identifier `https://hub.test/txn|n`.
Prints `ready`, then `begin n` just before each transaction is handed to the store and
`commit n` once the store has answered, each line flushed at once.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from hub.store import SQLiteStore

TXN_SYSTEM = "https://hub.test/txn"


def transaction(n: int, size: int) -> dict[str, Any]:
    tag = [{"system": TXN_SYSTEM, "value": str(n)}]
    entries: list[dict[str, Any]] = []
    for i in range(size // 2):
        patient_urn = f"urn:uuid:{uuid.uuid4()}"
        patient = {
            "resourceType": "Patient",
            "identifier": tag,
            "name": [{"family": f"Crashtest{n}", "given": [f"Number{i}"]}],
            "birthDate": f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        }
        encounter = {
            "resourceType": "Encounter",
            "identifier": tag,
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": patient_urn},
            "period": {"start": "2024-03-10T09:00:00Z", "end": "2024-03-10T10:00:00Z"},
        }
        entries.append(
            {
                "fullUrl": patient_urn,
                "resource": patient,
                "request": {"method": "POST", "url": "Patient"},
            }
        )
        entries.append({"resource": encounter, "request": {"method": "POST", "url": "Encounter"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def main() -> None:
    path, first, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = SQLiteStore(path)
    n = first
    bundle = transaction(n, size)
    print("ready", flush=True)
    while True:
        print(f"begin {n}", flush=True)
        store.transaction(bundle)
        bundle = transaction(n + 1, size)  # made before `commit n`: then `begin` follows at once
        print(f"commit {n}", flush=True)
        n += 1


if __name__ == "__main__":
    main()
