"""Synthetic patients and their records, as FHIR transaction Bundles, for the store benchmark.

Everything here is invented: NHS numbers come from the 999 range reserved for test data, names
are made up from syllables, postcodes only look like UK ones. The data is deterministic for a
seed, and patient `i` can be regenerated on its own (`patient_facts(seed, i)`), so the benchmark
never keeps the loaded patients in memory to choose what to search for.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
MRN_SYSTEM = "https://fhir.hub.example/Id/RV5/mrn"
VISIT_NUMBER_SYSTEM = "https://fhir.hub.example/Id/RV5/visit-number"
CAREPLAN_SYSTEM = "https://fhir.hub.example/Id/RV5/careplan"

RELATED_PER_PATIENT = 5
"""2 Encounters, 1 CarePlan, 1 QuestionnaireResponse, 1 Provenance."""
RESOURCES_PER_PATIENT = 1 + RELATED_PER_PATIENT

# NHS numbers: "999" + a five-digit block + one free digit + the check digit. For each block, at
# least nine of the ten free digits give a valid number (Modulus 11 rejects at most one), so
# index -> (block, k-th valid free digit) is one-to-one over 100,000 * 9 numbers.
NHS_NUMBER_CAPACITY = 100_000 * 9
_NHS_STRIDE = 7_919  # prime, shares no factor with NHS_NUMBER_CAPACITY: a permutation

_FAMILY_STARTS = (
    "Abber", "Bran", "Carrow", "Dun", "Elmer", "Fenn", "Gorr", "Hallow", "Ivers", "Jarn",
    "Kell", "Lom", "Marl", "Nebb", "Orr", "Penn", "Quill", "Rath", "Sel", "Thorn",
    "Ulver", "Vane", "Wex", "Yarr",
)  # fmt: skip
_FAMILY_ENDS = (
    "by", "combe", "dale", "ford", "gate", "ham", "hurst", "ley", "mere", "ridge",
    "stow", "thwaite", "ton", "wick",
)  # fmt: skip
_GIVEN = (
    "Adaeze", "Alex", "Amrit", "Bea", "Callum", "Ceri", "Dara", "Eilidh", "Emre", "Farah",
    "Finn", "Gwen", "Hamza", "Iona", "Jai", "Kofi", "Lena", "Maya", "Niall", "Noor",
    "Oren", "Priya", "Rhys", "Rowan", "Sami", "Tegan", "Tomasz", "Uma", "Wren", "Zain",
)  # fmt: skip
_GENDERS = ("female", "male", "other", "unknown")
_GENDER_WEIGHTS = (49, 49, 1, 1)
_STREETS = ("Mill Lane", "Station Road", "Church Street", "Park View", "Canal Side", "Moor Road")
_TOWNS = (
    ("Leeds", "LS"), ("Bradford", "BD"), ("Halifax", "HX"), ("Wakefield", "WF"),
    ("Huddersfield", "HD"), ("York", "YO"), ("Harrogate", "HG"), ("Sheffield", "S"),
)  # fmt: skip
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # inward code letters never use C, I, K, M, O, V

_BIRTH_FROM = dt.date(1940, 1, 1)
_BIRTH_DAYS = (dt.date(2008, 12, 31) - _BIRTH_FROM).days + 1
_ENCOUNTER_FROM = dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)
_ENCOUNTER_DAYS = (dt.date(2026, 12, 31) - _ENCOUNTER_FROM.date()).days + 1
_FINISHED_BEFORE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_QUESTIONNAIRE = "https://fhir.hub.example/Questionnaire/wellbeing-check"


def nhs_check_digit(stem: str) -> int | None:
    """Modulus 11 check digit of a nine-digit stem; None when no check digit makes it valid."""
    return _check_digit(_weighted_sum(stem))


def _weighted_sum(digits: str) -> int:
    """Digits weighted 10, 9, 8, ... from the left."""
    return sum(int(d) * (10 - i) for i, d in enumerate(digits))


def _check_digit(weighted_sum: int) -> int | None:
    check = 11 - weighted_sum % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return nhs_check_digit(value[:9]) == int(value[9])


def nhs_number(seed: int, index: int) -> str:
    """The NHS number of patient `index`: in the 999 test range, valid, unique per index."""
    if not 0 <= index < NHS_NUMBER_CAPACITY:
        raise ValueError(f"patient index {index} outside 0..{NHS_NUMBER_CAPACITY - 1}")
    n = (seed * 104_729 + index * _NHS_STRIDE) % NHS_NUMBER_CAPACITY
    block, k = divmod(n, 9)
    prefix = f"999{block:05d}"
    total = _weighted_sum(prefix)
    for digit in range(10):  # the ninth digit weighs 2
        check = _check_digit(total + 2 * digit)
        if check is not None:
            if k == 0:
                return f"{prefix}{digit}{check}"
            k -= 1
    raise AssertionError("unreachable: Modulus 11 rejects at most one of the ten digits")


@cache
def _families() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Invented family names and their cumulative weights.

    336 single names (weight 1-3) and twice as many double-barrelled ones (weight 0.2-1): at
    100,000 patients a name is shared by some 20 to 300 of them.
    """
    singles = [start + end for start in _FAMILY_STARTS for end in _FAMILY_ENDS]
    rng = random.Random(20_240_101)  # fixed: the same names for every seed
    doubles = [f"{a}-{b}" for a in singles for b in rng.sample(singles, 2) if a != b]
    weights = [rng.uniform(1.0, 3.0) for _ in singles] + [rng.uniform(0.2, 1.0) for _ in doubles]
    return tuple(singles + doubles), tuple(accumulate(weights))


@dataclass(frozen=True)
class PatientFacts:
    """What the benchmark searches by, and what the Patient resource is built from."""

    index: int
    nhs_number: str
    mrn: str
    family: str
    given: str
    gender: str
    birth_date: str
    postcode: str
    town: str
    street: str


def _rng(seed: int, index: int) -> random.Random:
    return random.Random((seed << 32) | index)


def patient_facts(seed: int, index: int) -> PatientFacts:
    """Patient `index` of the data set `seed`, regenerated from scratch (cheap, no state)."""
    return _patient_facts(seed, index, _rng(seed, index))


def _patient_facts(seed: int, index: int, rng: random.Random) -> PatientFacts:
    names, cumulative = _families()
    town, area = rng.choice(_TOWNS)
    letters = rng.choices(_POSTCODE_LETTERS, k=2)
    postcode = f"{area}{rng.randint(1, 29)} {rng.randint(0, 9)}{letters[0]}{letters[1]}"
    return PatientFacts(
        index=index,
        nhs_number=nhs_number(seed, index),
        mrn=f"M{index:08d}",
        family=rng.choices(names, cum_weights=cumulative)[0],
        given=rng.choice(_GIVEN),
        gender=rng.choices(_GENDERS, weights=_GENDER_WEIGHTS)[0],
        birth_date=(_BIRTH_FROM + dt.timedelta(days=rng.randrange(_BIRTH_DAYS))).isoformat(),
        postcode=postcode,
        town=town,
        street=f"{rng.randint(1, 240)} {rng.choice(_STREETS)}",
    )


def _urn(rng: random.Random) -> str:
    """A random (version 4) UUID from `rng`, as a urn."""
    h = f"{rng.getrandbits(122):031x}"
    variant = "89ab"[int(h[15], 16) & 3]
    return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[12:15]}-{variant}{h[16:19]}-{h[19:31]}"


def _instant(value: dt.datetime) -> str:
    return f"{value.isoformat(timespec='seconds')[:19]}Z"


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def patient_entries(seed: int, index: int) -> list[dict[str, Any]]:
    """The transaction entries of one patient: the Patient first, then its 5 related resources,
    each a POST with a `urn:uuid` fullUrl; references point at those urns."""
    rng = _rng(seed, index)
    p = _patient_facts(seed, index, rng)
    patient_urn = _urn(rng)
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": NHS_NUMBER_SYSTEM, "value": p.nhs_number},
            {"system": MRN_SYSTEM, "value": p.mrn},
        ],
        "active": True,
        "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        "gender": p.gender,
        "birthDate": p.birth_date,
        "address": [{"line": [p.street], "city": p.town, "postalCode": p.postcode}],
    }
    subject = {"reference": patient_urn}
    entries = [_entry(patient_urn, patient)]

    encounters = []
    for k in range(2):
        start = _ENCOUNTER_FROM + dt.timedelta(
            days=rng.randrange(_ENCOUNTER_DAYS), minutes=15 * rng.randrange(40)
        )
        end = start + dt.timedelta(minutes=rng.choice((30, 45, 60, 90)))
        urn = _urn(rng)
        encounters.append((urn, start))
        entries.append(
            _entry(
                urn,
                {
                    "resourceType": "Encounter",
                    "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": f"V{index:08d}{k}"}],
                    "status": "finished" if start < _FINISHED_BEFORE else "planned",
                    "class": {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"},
                    "type": [{"text": "Community mental health appointment"}],
                    "subject": subject,
                    "period": {"start": _instant(start), "end": _instant(end)},
                },
            )
        )
    encounters.sort(key=lambda e: e[1])
    (first_urn, first_start), (second_urn, second_start) = encounters

    entries.append(
        _entry(
            _urn(rng),
            {
                "resourceType": "CarePlan",
                "identifier": [{"system": CAREPLAN_SYSTEM, "value": f"CP{index:08d}"}],
                "status": "active",
                "intent": "plan",
                "category": [{"text": "Neighbourhood mental health care plan"}],
                "title": "Care plan",
                "subject": subject,
                "encounter": {"reference": first_urn},
                "period": {"start": first_start.date().isoformat()},
            },
        )
    )
    entries.append(
        _entry(
            _urn(rng),
            {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": _QUESTIONNAIRE,
                "status": "completed",
                "subject": subject,
                "encounter": {"reference": second_urn},
                "authored": _instant(second_start),
                "item": [
                    {
                        "linkId": "wellbeing",
                        "text": "Overall wellbeing this week (0-10)",
                        "answer": [{"valueInteger": rng.randint(0, 10)}],
                    }
                ],
            },
        )
    )
    entries.append(
        _entry(
            _urn(rng),
            {
                "resourceType": "Provenance",
                "target": [subject],
                "recorded": _instant(second_start + dt.timedelta(hours=1)),
                "agent": [
                    {
                        "type": {"coding": [{"system": _PARTICIPANT_TYPE, "code": "author"}]},
                        "who": {"display": "Synthetic EPR feed (benchmark)"},
                    }
                ],
            },
        )
    )
    return entries


def transaction_bundles(
    seed: int, patients: int, batch: int, *, first: int = 0, share: tuple[int, int] = (0, 1)
) -> Iterator[dict[str, Any]]:
    """Transaction Bundles for patients `first` .. `first + patients - 1`, lazily.

    A patient and its related resources always travel in the same Bundle, so that their
    references can use the patient's urn:uuid: `batch` (resources per Bundle) is rounded down to
    a whole number of patients (`bundle_patients`). Only the last Bundle may be smaller.
    `share` = (k, n) yields only every n-th Bundle from the k-th: one writer's share of n.
    """
    per_bundle = bundle_patients(batch)
    end = first + patients
    writer, writers = share
    for start in range(first + writer * per_bundle, end, writers * per_bundle):
        entries = []
        for index in range(start, min(start + per_bundle, end)):
            entries.extend(patient_entries(seed, index))
        yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def bundle_patients(batch: int) -> int:
    """Patients per transaction Bundle of at most `batch` resources (at least one)."""
    return max(1, batch // RESOURCES_PER_PATIENT)
