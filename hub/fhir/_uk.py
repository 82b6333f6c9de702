"""UK identifiers and codes shared by mapping and identity: NHS numbers and postcodes."""

from __future__ import annotations

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def nhs_number_is_valid(digits: str) -> bool:
    """The Modulus 11 check of the NHS Data Dictionary (10 digits, check digit last)."""
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits, _NHS_WEIGHTS, strict=False)) % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


_POSTCODE = re.compile(r"([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})\Z")


def normalise_postcode(text: str) -> str:
    """se64ru, 'SE6  4RU', 'se6 4ru' -> 'SE6 4RU'; anything not shaped like a UK postcode is
    only upper-cased and its spaces collapsed (kept, never guessed)."""
    packed = re.sub(r"\s+", "", text.upper())
    match = _POSTCODE.match(packed)
    if match:
        return f"{match.group(1)} {match.group(2)}"
    return " ".join(text.upper().split())
