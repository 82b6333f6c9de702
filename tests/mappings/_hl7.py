"""Synthetic HL7 v2.4 ADT messages for the slam-epr/adt tests (sources README 1a)."""

from __future__ import annotations

OKAFOR_IDS = "9990000018^^^NHS^NH~RV5A000123^^^RV5^MR"
CLINICIAN = "C1234567^MENSAH^KWAME^^^DR"


def fields(segment: str, values: dict[int, str]) -> str:
    """A segment with the given fields (by number) set and the others empty."""
    parts = [segment] + [""] * max(values)
    for number, value in values.items():
        parts[number] = value
    return "|".join(parts)


def message(
    event: str = "A04",
    *,
    control: str = "RV5-1",
    made: str = "20260412093000",
    recorded: str | None = "20260412093000",
    pid: dict[int, str] | None = None,
    pd1: str | None = "PD1|||LADYWELL MEDICAL CENTRE^^G85901|G8123456^PATEL^RAJ",
    pv1: dict[int, str] | None = None,
    extra: tuple[str, ...] = (),
    mrg: str | None = None,
) -> list[str]:
    """One ADT message as segments: Adaeze Okafor's A04 at the centre unless told otherwise."""
    structure = {"A03": "ADT_A03", "A28": "ADT_A05", "A31": "ADT_A05", "A40": "ADT_A39"}
    segments = [
        f"MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|{made}||ADT^{event}^"
        f"{structure.get(event, 'ADT_A01')}|{control}|P|2.4|||AL|NE||UNICODE UTF-8",
        f"EVN|{event}|{recorded or ''}",
        fields(
            "PID",
            {
                1: "1",
                3: OKAFOR_IDS,
                5: "OKAFOR^ADAEZE^NGOZI^^MS",
                7: "19850314",
                8: "F",
                11: "Flat 3^12 Brockley Rise^LONDON^^SE4 2AB^GBR^H",
                13: "07700 900123^PRN^CP",
                22: "N",
                **(pid or {}),
            },
        ),
    ]
    if pd1:
        segments.append(pd1)
    if mrg:
        segments.append(f"MRG|{mrg}")
    if pv1 is not None:
        segments.append(
            fields(
                "PV1",
                {
                    1: "1",
                    2: "O",
                    3: "HEATHER-CLOSE^^^RV5",
                    7: CLINICIAN,
                    10: "MHC",
                    19: "V0000501^^^RV5^VN",
                    44: "20260412093000",
                    **pv1,
                },
            )
        )
    segments.extend(extra)
    return segments
