"""`hub record NHS_NUMBER`: one person's shared record on one screen, read through the store API.

`record_summary(store, nhs_number)` is the record as data (what `--json` prints);
`time_record(store, nhs_numbers)` measures it for the store benchmark.
"""

from ._bench import RecordTimings, time_record
from ._command import record_command, record_summary
from ._read import RecordError
from ._text import render

__all__ = [
    "RecordError",
    "RecordTimings",
    "record_command",
    "record_summary",
    "render",
    "time_record",
]
