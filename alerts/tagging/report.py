"""What an area decision tells whoever runs the batch: one line per thing to look at."""

from __future__ import annotations

from alerts.areas import Gazetteer
from alerts.errors import UnknownArea
from alerts.types import AreaDecision

ALIAS_HINT = "to bring such advisories in, map the name under 'area_aliases:' in config.yaml (e.g. National: kent)"


def decision_warnings(decision: AreaDecision, where: str, gazetteer: Gazetteer) -> list[str]:
    """Unknown declared areas (outside coverage, or ignored beside a known one) and
    advisories that named no place and so went force-wide."""
    warnings: list[str] = []
    for name in decision.unknown:
        hint = _hint(gazetteer, name)
        if decision.outside_coverage:
            warnings.append(
                f"{where}: area {name!r} is not in the gazetteer, so the advisory is outside coverage:"
                f" stored, but never mailed and in no feed ({hint}; {ALIAS_HINT})"
            )
        else:
            warnings.append(f"{where}: area {name!r} is not in the gazetteer; ignored ({hint})")
    national = [d.words for d in decision.discounted if d.reason.startswith("a national warning")]
    if decision.outside_coverage and not decision.unknown and national:
        warnings.append(
            f"{where}: a national warning ({national[0]!r}) naming no place in"
            f" {gazetteer.root.name}, so it is outside coverage: stored, but never mailed and in"
            f" no feed ({ALIAS_HINT})"
        )
    elif decision.outside_coverage and not decision.unknown:
        named = ", ".join(
            sorted(
                {d.name for d in decision.discounted if d.area is None or "elsewhere" in d.reason}
            )
        )
        warnings.append(
            f"{where}: names no place in {gazetteer.root.name} but names {named or 'places elsewhere'},"
            f" so it is outside coverage: stored, but never mailed and in no feed"
            f" (declare 'area:' in its front matter, or retag it, to bring it in)"
        )
    if decision.no_place:
        warnings.append(f"{where}: no place found; treated as force-wide ({gazetteer.root.name})")
    return warnings


def _hint(gazetteer: Gazetteer, name: str) -> str:
    try:
        gazetteer.resolve(name)
    except UnknownArea as exc:
        return exc.hint or "run 'alerts areas' for the list"
    return "run 'alerts areas' for the list"


def explain(decision: AreaDecision, gazetteer: Gazetteer) -> list[str]:
    """The decision as ``alerts advisories show`` prints it: each area with the words that
    decided it, places mentioned inside a declared area, and the places discounted with
    the reason."""

    def name(slug: str | None) -> str:
        return (
            gazetteer.node(slug).name if slug is not None and slug in gazetteer else (slug or "?")
        )

    lines: list[str] = []
    if decision.outside_coverage:
        why = (
            f"declared area {', '.join(repr(u) for u in decision.unknown)} is not in the gazetteer"
            if decision.unknown
            else f"a national warning naming no place in {gazetteer.root.name}; {ALIAS_HINT}"
            if any(d.reason.startswith("a national warning") for d in decision.discounted)
            else f"it names no place in {gazetteer.root.name}, only places or forces elsewhere"
        )
        lines.append(
            f"Reaches:    nobody: outside coverage ({why}); stored, never mailed, in no feed"
        )
    else:
        reach = ", ".join(name(a) for a in sorted(decision.areas, key=name))
        if decision.force_wide:
            reach += " (force-wide" + (": no place found)" if decision.no_place else ")")
        lines.append(f"Reaches:    {reach}")
    if decision.overridden:
        lines.append(
            "            set by the operator ('alerts advisories retag'); kept when the source changes"
        )
    root = gazetteer.root.slug
    for evidence in decision.evidence:
        if evidence.part == "declared" and evidence.area == root and not decision.force_wide:
            continue  # said below: it let the text decide, it decided nothing itself
        lines.append(
            f"  {name(evidence.area)}: {evidence.how}: “{evidence.words}” ({evidence.part})"
        )
    at_root = [e.words for e in decision.evidence if e.part == "declared" and e.area == root]
    if at_root and not decision.force_wide:
        lines.append(f"Declared:   {', '.join(at_root)} (the force area, so the text decides)")
    if decision.mentioned:
        lines.append("Places mentioned inside the declared area:")
        for mentioned in decision.mentioned:
            lines.append(f"  {name(mentioned.area)}: “{mentioned.words}” ({mentioned.part})")
    if decision.discounted:
        lines.append("Places discounted:")
        for discounted in decision.discounted:
            lines.append(f"  {discounted.name}: {discounted.reason}: “{discounted.words}”")
    return lines
