"""A shared record summary drawn as one screen of text, flags first."""

from __future__ import annotations

from datetime import date
from typing import Any


def render(summary: dict[str, Any]) -> str:
    sections = [
        ("FLAGS", _flags(summary["flags"]), "none"),
        ("LEGAL STATUS (Mental Health Act)", _legal(summary["legal_status"]), "none recorded"),
        ("EPISODES OF CARE", [_episode(e) for e in summary["episodes"]], "none"),
        ("TEAM AROUND THE PERSON", _team(summary["team"]), "nobody recorded"),
        ("CURRENT PLANS", [_plan(p) for p in summary["plans"]], "none"),
        ("RECENT ENCOUNTERS", _encounters(summary["encounters"]), "none"),
        ("OUTCOME SCORES (latest; change since the first)", _scores(summary["scores"]), "none"),
    ]
    drawn = [_section(title, lines, empty) for title, lines, empty in sections]
    return "\n\n".join([_who(summary["patient"]), *drawn])


def _who(person: dict[str, Any]) -> str:
    head = [person["name"] or "(no name)", f"NHS {_nhs(person['nhs_number'])}"]
    if person["birth_date"]:
        head.append(f"born {when(person['birth_date'])}")
    if person["gender"]:
        head.append(person["gender"])
    if person["deceased"] is True:
        head.append("DECEASED")
    elif person["deceased"]:
        head.append(f"died {when(person['deceased'])}")
    lines = ["   ".join(head)]
    contact = [person["address"], person["phone"] and f"phone {person['phone']}"]
    if any(contact):
        lines.append("   ".join(c for c in contact if c))
    practices = [f"{p['name'] or p['code']} ({p['code']})" for p in person["gp_practices"]]
    lines.append(f"GP: {', '.join(practices) if practices else 'not recorded'}")
    return "\n".join(lines)


def _flags(flags: list[dict[str, Any]]) -> list[str]:
    return [f"! {f['text']}   since {when(f['since'])}" for f in flags if f["status"] == "active"]


def _legal(legal: dict[str, Any] | None) -> list[str]:
    if legal is None:
        return []
    stay = legal["stay"]
    where = f" at {stay['location']}" if stay["location"] else ""
    lines = []
    current = legal["current"]
    if current:
        state = "DETAINED" if legal["detained"] else "not detained"
        lines.append(f"now: {_status(current)} since {when(current['since'])} ({state})")
    lines.append(f"stay{where}: {_span(stay['start'], stay['end'])} ({stay['status']})")
    lines.extend(f"  {_status(s)}   {_span(s['since'], s['until'])}" for s in legal["statuses"])
    return lines


def _episode(episode: dict[str, Any]) -> str:
    parts = [
        f"{episode['status']:<9}",
        f"{episode['type'] or '?':<15}",
        episode["team"] or episode["organisation"] or "",
        _span(episode["start"], episode["end"]),
    ]
    if episode["care_manager"]:
        parts.append(f"care coordinator {episode['care_manager']}")
    return "   ".join(p for p in parts if p)


def _team(team: list[dict[str, Any]]) -> list[str]:
    current = [m for m in team if not m["until"]]
    lines = [
        f"{m['role'] or '?':<18}   {m['name'] or '?':<28}   {m['organisation'] or '':<9}"
        f"   since {when(m['since'])}"
        for m in current
    ]
    if len(team) > len(current):
        lines.append(f"({len(team) - len(current)} earlier, ended: see --json)")
    return lines


def _plan(plan: dict[str, Any]) -> str:
    title = plan["title"] or plan["category"] or plan["id"] or "?"
    parts = [f"{plan['organisation'] or '?':<9}", title]
    if plan["status"] != "active":
        parts.append(plan["status"])
    parts.append(f"since {when(plan['start'])}")
    if plan["review_due"]:
        parts.append(f"review due {when(plan['review_due'])}")
    if plan["based_on"]:
        parts.append(f"based on {', '.join(plan['based_on'])}")
    return "   ".join(parts)


def _encounters(by_source: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        "   ".join(
            p
            for p in (
                f"{source:<9}",
                f"{when(e['date']):<11}",
                e["type"] or e["class"] or "",
                e["location"] or "",
                e["status"] or "",
            )
            if p
        )
        for source, encounters in by_source.items()
        for e in encounters
    ]


def _scores(scores: list[dict[str, Any]]) -> list[str]:
    lines = []
    for score in scores:
        latest, first = score["latest"], score["first"]
        value = _number(latest["value"])
        line = f"{score['measure']:<9}{score['label']:<56}{value:>6}  {when(latest['date'])}"
        if score["change"] is not None:
            since = f"first {_number(first['value'])} {when(first['date'])}"
            line += f"   {since}, change {score['change']:+g}"
        lines.append(line)
    return lines


def _section(title: str, lines: list[str], empty: str) -> str:
    return "\n".join([title, *(f"  {line}" for line in lines or [empty])])


def _status(status: dict[str, Any]) -> str:
    return " ".join(p for p in (status["code"], status["display"]) if p)


def _span(start: str | None, end: str | None) -> str:
    return f"{when(start)} - {when(end)}" if end else f"since {when(start)}"


def _number(value: float) -> str:
    return f"{value:g}"


def _nhs(number: str | None) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}" if number else "not recorded"


def when(value: str | None) -> str:
    """A FHIR date or dateTime as people read it: `2026-04-09T04:00:00+01:00` -> 9 Apr 2026."""
    if not value:
        return "?"
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return value  # a year or a month alone: as sent
    return f"{day.day} {day:%b %Y}"
