"""The declarative mapping engine: `mappings/` YAML turns source records into FHIR R4.

`MappingSet(folder).get("vcse/sessions")` compiles one mapping; `Mapping.read(stream, name)`
maps every record of an input file; `MappedRecord.transaction()` is what the store applies;
`merge_kept` combines a resource whose mapping keeps items with the stored one.
"""

from ._examples import ExampleOutcome, example_files, produce, run_example
from ._functions import hl7_datetime, nhs_number_is_valid, normalise_postcode
from ._keep import merge_kept
from ._mapping import SOURCE_BASE, Checker, Mapping, MappingSet
from ._records import Keep, MappedRecord, MappedResource
from ._valuemaps import ValueMap
from ._yaml import MappingConfigError

__all__ = [
    "SOURCE_BASE",
    "Checker",
    "ExampleOutcome",
    "Keep",
    "MappedRecord",
    "MappedResource",
    "Mapping",
    "MappingConfigError",
    "MappingSet",
    "ValueMap",
    "example_files",
    "hl7_datetime",
    "merge_kept",
    "nhs_number_is_valid",
    "normalise_postcode",
    "produce",
    "run_example",
]
