"""Profile checks driven by the conformance resources in profiles/.

`Profiles.load(directory)` reads and compiles the StructureDefinitions, ValueSets,
CodeSystems and Questionnaires once; `Profiles.check(resource)` lists the rules a produced
resource breaks (fast enough for the mapping hot path). `hub validate FILE...` is
`validate_command`.
"""

from ._command import validate_command
from ._issues import ProfileIssue, ProfileLoadError
from ._profiles import HUB_CANONICAL_BASE, Profiles, default_profiles_dir

__all__ = [
    "HUB_CANONICAL_BASE",
    "ProfileIssue",
    "ProfileLoadError",
    "Profiles",
    "default_profiles_dir",
    "validate_command",
]
