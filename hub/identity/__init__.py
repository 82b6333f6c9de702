"""Identity: which person a record is about, one Patient per person across sources.

A record's Patient is found by, in order: (a) a valid NHS number (Modulus 11) the hub already
holds; (b) the record's own source key (EPR MRN, VCSE client reference); when (a) and (b) find
different Patients the source says they are one person and they are merged; (c) else
demographic matching (`_matching.RULES`): family, first given name, birth date and postcode
all agreeing (normalised), with no conflicting NHS number, in exactly one active Patient links
the record to it; family, given name and birth date alone, or several such Patients, give the
record a new Patient and queue the pair for a person (`hub matches`); anything weaker is a
new Patient. The Patient's elements come from the most trusted source (mappings/identity.yaml),
the newer record between equals (`_survivorship`).

The pipeline, holding the identity lock (no hub-state transaction open meanwhile):

    resolver = IdentityResolver(store, db, IdentityConfig.load(mappings_dir / "identity.yaml"))
    with db.exclusive(IDENTITY_LOCK):
        plan = resolver.resolve(
            patient, (key_system, key_value), source="slam-epr", source_time_ms=t,
            retired=[(mrg_system, mrg_value)],       # an A40's MRG-1, if any
        )
        entries = plan.entries_except(written)       # or plan.entries; before the others
        ...                                          # + the record's own entries, Provenance
        store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        with db.transaction() as tx:
            plan.record(tx)                          # clocks, review entries

`plan.patient_id`, `plan.matched_by` ("nhs-number" | "source-key" | "demographics" | "new"),
`plan.created`, `plan.merges` (MergePlan: retired_id, surviving_id, reason) and
`plan.reviews` say what happened. `resolve` only reads the store. `IdentityConflict` (422, a
dead letter) when a record contradicts the hub: two valid NHS numbers for one person.

A merge on its own: `resolver.merge_by_identifier(retired=(sys, val), surviving_id=...)` or
`resolver.plan_merge(retired_id, surviving_id, reason=...)`, each a `MergePlan` with `entries`
and `record(tx)`. `MatchQueue(db, store, config)` lists, accepts (merges at once) and rejects
(remembered for ever) review entries; `matches_command` is `hub matches`.
"""

from ._command import matches_command
from ._config import IdentityConfig, IdentityConfigError, source_name
from ._demographics import Demographics, demographics, nhs_numbers, normalise_name
from ._matching import RULES, Candidate, MatchLevel, Rule, compare
from ._merge import MergePlan
from ._queue import IDENTITY_LOCK, MatchQueue, ReviewError
from ._resolver import IdentityConflict, IdentityResolver, PatientPlan
from ._review import MatchEntry, ReviewCandidate
from ._survivorship import Clock

__all__ = [
    "IDENTITY_LOCK",
    "RULES",
    "Candidate",
    "Clock",
    "Demographics",
    "IdentityConfig",
    "IdentityConfigError",
    "IdentityConflict",
    "IdentityResolver",
    "MatchEntry",
    "MatchLevel",
    "MatchQueue",
    "MergePlan",
    "PatientPlan",
    "ReviewCandidate",
    "ReviewError",
    "Rule",
    "compare",
    "demographics",
    "matches_command",
    "nhs_numbers",
    "normalise_name",
    "source_name",
]
