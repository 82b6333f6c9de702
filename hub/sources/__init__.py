"""Source feeds: bytes -> source records, and the path language each format's mappings use.

`source_format(name).read(stream, file)` yields a `SourceRecord` per record (or a
`SourceError` for one that cannot be read, then goes on); `compile_path(text)` turns a path
written in a mapping into a `SourcePath` whose `get(record.data, current_item)` gives a list.
"""

from ._formats import FORMATS, source_format
from ._hl7v2 import Hl7Composite, Hl7Message, Hl7Segment
from ._hl7v2_paths import message_header
from ._records import PathSyntaxError, SourceError, SourceFormat, SourcePath, SourceRecord
from ._stu3 import Stu3Bundle

__all__ = [
    "FORMATS",
    "Hl7Composite",
    "Hl7Message",
    "Hl7Segment",
    "PathSyntaxError",
    "SourceError",
    "SourceFormat",
    "SourcePath",
    "SourceRecord",
    "Stu3Bundle",
    "message_header",
    "source_format",
]
