"""Derived resources: what summarises a person across sources, recomputed for each patient a
message touches, in that message's transaction, so that it never drifts from its sources.

`derive(patient, resources, at)` is pure: given a patient's sources and the stored CareTeam
and Flags, it returns those to write (only what changed). `INPUTS` lists the searches that
gather its input for one patient; `overlay` puts the transaction's own resources in place of
the stored ones; `conditional_url` says where each result is PUT.
"""

from ._derive import derive
from ._flags import flag_identifier
from ._inputs import INPUTS, Input, affects, conditional_url, overlay
from ._names import (
    CARE_TEAM_ROLE_SYSTEM,
    CARE_TEAM_SOURCE,
    CARE_TEAM_SYSTEM,
    FLAG_CODE_SYSTEM,
    FLAG_DISPLAYS,
    FLAG_SYSTEM,
    LEGAL_STATUS_PERIOD,
    NOT_DETAINED,
    ROLE_DISPLAYS,
)
from ._resources import identifier_scope

__all__ = [
    "CARE_TEAM_ROLE_SYSTEM",
    "CARE_TEAM_SOURCE",
    "CARE_TEAM_SYSTEM",
    "FLAG_CODE_SYSTEM",
    "FLAG_DISPLAYS",
    "FLAG_SYSTEM",
    "INPUTS",
    "LEGAL_STATUS_PERIOD",
    "NOT_DETAINED",
    "ROLE_DISPLAYS",
    "Input",
    "affects",
    "conditional_url",
    "derive",
    "flag_identifier",
    "identifier_scope",
    "overlay",
]
