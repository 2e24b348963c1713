"""The area rule's reasons are data (issue 18): each piece of evidence carries a
:class:`Basis` and each discounted place a :class:`Why`, with words only for display.
Rewording a reason changes nobody's mail, and decisions stored before the codes were
(words only) still read back, as data and as 'alerts advisories show' prints them."""

from __future__ import annotations

import pytest
import yaml

from alerts.areas import Gazetteer
from alerts.ingest.files import parse_advisory_file
from alerts.tagging import explain
from alerts.types import AreaDecision, Basis, Discounted, Evidence, Why
from tests.support import NOW, REPO

EVAL = REPO / "tests" / "fixtures" / "areas-eval"


def decisions(gazetteer: Gazetteer) -> dict[str, AreaDecision]:
    labels = yaml.safe_load((EVAL / "labels.yaml").read_text(encoding="utf-8"))
    found: dict[str, AreaDecision] = {}
    for name in sorted(labels):
        decision = parse_advisory_file(EVAL / name, gazetteer, now=NOW).advisory.decision
        assert decision is not None
        found[name] = decision
    return found


def test_rewording_every_reason_changes_no_decision(
    gazetteer: Gazetteer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {
        name: (d.areas, d.outside_coverage, d.force_wide)
        for name, d in decisions(gazetteer).items()
    }
    import alerts.types as types

    monkeypatch.setattr(types, "_WHY_WORDS", {why: f"reworded {why.value} {{}}" for why in Why})
    monkeypatch.setattr(
        types, "_BASIS_WORDS", {basis: f"reworded {basis.value}" for basis in Basis}
    )
    after = decisions(gazetteer)
    assert {
        name: (d.areas, d.outside_coverage, d.force_wide) for name, d in after.items()
    } == before
    assert any(
        d.reason.startswith("reworded suspect-home") for a in after.values() for d in a.discounted
    )


def test_a_decision_round_trips_through_its_stored_form_with_its_codes(
    gazetteer: Gazetteer,
) -> None:
    for decision in decisions(gazetteer).values():
        stored = decision.as_json()
        assert all(d["why"] in {w.value for w in Why} for d in stored["discounted"])
        assert AreaDecision.from_json(stored) == decision


# As an older version stored them: words only, no codes.
OLD_ROW = {
    "areas": ["deal"],
    "evidence": [
        {
            "area": "deal",
            "words": "Arrest after burglary in Deal",
            "part": "title",
            "how": "where it happened",
        }
    ],
    "discounted": [
        {
            "name": "Sandwich",
            "area": "sandwich",
            "words": "A man from Sandwich was arrested",
            "reason": "a suspect's home",
        },
        {
            "name": "Medway",
            "area": "medway",
            "words": "He will appear at Medway Magistrates",
            "reason": "a court",
        },
        {
            "name": "Rainham",
            "area": None,
            "words": "in Rainham, Essex",
            "reason": "a place of that name in Essex, not here",
        },
        {
            "name": "Chelmsford",
            "area": None,
            "words": "from Chelmsford",
            "reason": "a place outside the force area (a suspect's home)",
        },
        {
            "name": "Leeds",
            "area": "leeds",
            "words": "Leeds",
            "reason": "reworded since by a later version",
        },
    ],
    "mentioned": [],
    "declared": ["area: Kent"],
    "unknown": [],
    "outside_coverage": False,
    "force_wide": False,
    "no_place": False,
    "overridden": False,
}


def test_a_decision_stored_as_words_only_reads_back_as_data() -> None:
    decision = AreaDecision.from_json(OLD_ROW)
    assert decision.evidence == (
        Evidence("deal", "Arrest after burglary in Deal", "title", Basis.SCENE),
    )
    assert [(d.why, d.detail) for d in decision.discounted] == [
        (Why.SUSPECT_HOME, ""),
        (Why.COURT, ""),
        (Why.OTHER_COUNTY, "Essex"),
        (Why.OUTSIDE_PLACE, "a suspect's home"),
        (Why.UNKNOWN, "reworded since by a later version"),
    ]


def test_show_prints_an_old_stored_decision_with_its_words_as_stored(gazetteer: Gazetteer) -> None:
    shown = explain(AreaDecision.from_json(OLD_ROW), gazetteer)
    assert "  Deal: where it happened: “Arrest after burglary in Deal” (title)" in shown
    assert "  Sandwich: a suspect's home: “A man from Sandwich was arrested”" in shown
    assert "  Rainham: a place of that name in Essex, not here: “in Rainham, Essex”" in shown
    assert (
        "  Chelmsford: a place outside the force area (a suspect's home): “from Chelmsford”"
        in shown
    )
    assert "  Leeds: reworded since by a later version: “Leeds”" in shown
    # Read once more, and stored again: the words an old row carried are kept.
    again = AreaDecision.from_json(AreaDecision.from_json(OLD_ROW).as_json())
    old_reasons = [d["reason"] for d in OLD_ROW["discounted"]]  # type: ignore[attr-defined]
    assert [d.reason for d in again.discounted] == old_reasons


def test_a_stored_code_wins_over_stored_words() -> None:
    stored = Discounted("Dover", "dover", "…", Why.STOPPED_AT).as_json() | {"reason": "old words"}
    assert Discounted.from_json(stored).why is Why.STOPPED_AT


def test_every_reason_and_basis_has_words_to_show() -> None:
    assert all(why.words for why in Why if why is not Why.UNKNOWN)
    assert all(basis.words for basis in Basis if basis is not Basis.UNKNOWN)
