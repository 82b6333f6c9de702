"""The names the care-model contract fixes (/tmp/hub/care-model-contract.md): identifier
systems, code systems and extensions of what the sources write and of what this step writes."""

from __future__ import annotations

from typing import Final

HUB_ID: Final = "https://fhir.hub.example/Id"
HUB_CODES: Final = "https://fhir.hub.example/CodeSystem"
HUB_EXTENSION: Final = "https://fhir.hub.example/StructureDefinition"
ODS_SYSTEM: Final = "https://fhir.nhs.uk/Id/ods-organization-code"
VCSE_ORGANISATION_SYSTEM: Final = f"{HUB_ID}/vcse-organisation"

# What this step writes.
CARE_TEAM_SYSTEM: Final = f"{HUB_ID}/care-team"
FLAG_SYSTEM: Final = f"{HUB_ID}/flag"
CARE_TEAM_ROLE_SYSTEM: Final = f"{HUB_CODES}/care-team-role"
FLAG_CODE_SYSTEM: Final = f"{HUB_CODES}/flag"
CARE_TEAM_SOURCE: Final = f"{HUB_EXTENSION}/care-team-source"
FLAG_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
CARE_TEAM_NAME: Final = "Team around the person"

# What the sources write.
EPISODE_TYPE_SYSTEM: Final = f"{HUB_CODES}/episode-type"
EPR_PLAN_TYPE_SYSTEM: Final = f"{HUB_CODES}/epr-plan-type"
CONTACT_ROLE_SYSTEM: Final = f"{HUB_CODES}/contact-role"
LEGAL_STATUS_PERIOD: Final = f"{HUB_EXTENSION}/legal-status-period"

# The organisations whose care plans name someone of the team (sources README): the trust's
# plans name the care coordinator, district nursing's the lead nurse. A VCSE organisation's
# support plan names its worker; VCSE organisations are recognised by the kind of identifier
# (`$hub_id/<org>/support-plan`), so a new one needs no line here.
TRUST: Final = "RV5"
DISTRICT_NURSING: Final = "RJ2"

ROLE_DISPLAYS: Final = {
    "care-coordinator": "Care coordinator",
    "mental-health-team": "Mental health team",
    "gp-practice": "GP practice",
    "lead-nurse": "Lead nurse",
    "vcse-worker": "VCSE worker",
    "carer": "Carer",
    "nominated-person": "Nominated person",
    "next-of-kin": "Next of kin",
}
"""The care-team-role codes, in the order the team is listed."""

FLAG_DISPLAYS: Final = {
    "crisis-plan": "Crisis plan in place",
    "member": "Member of the 24/7 centre",
    "detained": "Detained under the Mental Health Act",
}

NOT_DETAINED: Final = frozenset({"01", "98", "99"})
"""England legal status classification codes that are not a detention: informal, not
applicable, not known."""
