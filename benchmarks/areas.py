"""How well does the area rule send advisories to the right districts?

    .venv/bin/python benchmarks/areas.py [--folder tests/fixtures/areas-eval] [--gazetteer kent] [--verbose]

Reads every advisory in the folder as ``alerts ingest`` would, and compares the districts
its area decision reaches with the label in the folder's ``labels.yaml`` (a list of
district slugs, ``force-wide`` for every district, ``outside`` for none). Prints each
mismatch with the decision's evidence, then micro precision, recall and F1 over
(advisory, district) pairs, and the number of outside advisories that would reach a
subscriber here (a leak: another force's news in a resident's inbox).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.areas import Gazetteer, load_gazetteer
from alerts.ingest.files import parse_advisory_file
from alerts.types import AreaDecision, AreaKind

NOW = datetime(2024, 6, 1, tzinfo=UTC)
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "areas-eval"


def districts_of(gazetteer: Gazetteer, areas: frozenset[str] | set[str]) -> set[str]:
    """The districts a set of areas reaches: every district for the force."""
    every = {n.slug for n in gazetteer if n.kind is AreaKind.DISTRICT}
    found: set[str] = set()
    for area in areas:
        if area == gazetteer.root.slug:
            found |= every
        elif (district := gazetteer.district_of(area)) is not None:
            found.add(district)
    return found


def expected_districts(gazetteer: Gazetteer, label: object) -> set[str]:
    if label == "outside":
        return set()
    if label == "force-wide":
        return districts_of(gazetteer, {gazetteer.root.slug})
    if not isinstance(label, list):
        raise SystemExit(
            f"labels.yaml: {label!r} is not a list of districts, force-wide or outside"
        )
    return {str(slug) for slug in label}


def describe(decision: AreaDecision) -> str:
    lines = [f"    areas: {', '.join(sorted(decision.areas)) or '(none: outside coverage)'}"]
    lines += [f"    + {e.area}: {e.how}: {e.words!r}" for e in decision.evidence]
    lines += [f"    - {d.name}: {d.reason}: {d.words!r}" for d in decision.discounted]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--gazetteer", default="kent")
    parser.add_argument(
        "--verbose", action="store_true", help="print every decision, not only mismatches"
    )
    args = parser.parse_args()
    gazetteer = load_gazetteer(args.gazetteer)
    labels = yaml.safe_load((args.folder / "labels.yaml").read_text(encoding="utf-8"))
    true_pos = false_pos = false_neg = 0
    leaks = outside = exact = 0
    started = time.perf_counter()
    for name, label in sorted(labels.items()):
        decision = parse_advisory_file(args.folder / name, gazetteer, now=NOW).advisory.decision
        assert decision is not None
        got = districts_of(gazetteer, decision.areas)
        want = expected_districts(gazetteer, label)
        true_pos += len(got & want)
        false_pos += len(got - want)
        false_neg += len(want - got)
        if label == "outside":
            outside += 1
            leaks += bool(got)
        if got == want:
            exact += 1
            if args.verbose:
                print(f"ok   {name}\n{describe(decision)}")
            continue
        shown = label if isinstance(label, str) else ", ".join(label)
        print(f"MISS {name}: expected {shown}; got {', '.join(sorted(got)) or 'outside'}")
        print(describe(decision))
    elapsed = time.perf_counter() - started
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 1.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print()
    print(
        f"advisories: {len(labels)}  exactly right: {exact}  ({elapsed * 1000 / max(len(labels), 1):.1f} ms each)"
    )
    print(f"(advisory, district) pairs: tp {true_pos}  fp {false_pos}  fn {false_neg}")
    print(f"micro precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}")
    print(f"outside advisories: {outside}  reaching a subscriber here (leaks): {leaks}")


if __name__ == "__main__":
    main()
