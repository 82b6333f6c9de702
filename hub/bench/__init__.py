"""Benchmarks of the hub (`hub bench ...`) and the synthetic data they load."""

from ._ingest import ingest_bench_command
from ._mapping import mapping_bench_command
from ._mllp import mllp_bench_command
from ._store import store_bench_command
from ._synthetic import (
    NHS_NUMBER_CAPACITY,
    RESOURCES_PER_PATIENT,
    PatientFacts,
    is_valid_nhs_number,
    patient_entries,
    patient_facts,
    transaction_bundles,
)

__all__ = [
    "NHS_NUMBER_CAPACITY",
    "RESOURCES_PER_PATIENT",
    "PatientFacts",
    "ingest_bench_command",
    "is_valid_nhs_number",
    "mapping_bench_command",
    "mllp_bench_command",
    "patient_entries",
    "patient_facts",
    "store_bench_command",
    "transaction_bundles",
]
