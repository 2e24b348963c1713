"""The area rule (DESIGN.md, "Decisions > Areas"): who an advisory reaches follows what
it says. Each trap a real release sets is a case named for the behaviour."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from alerts.areas import Gazetteer, load_gazetteer
from alerts.config import SourceConfig
from alerts.errors import GazetteerError
from alerts.ingest.entries import Fetched, parse_feed
from alerts.ingest.files import parse_advisory_bytes
from alerts.tagging import AdvisoryText, Declared, decide_areas
from alerts.types import AreaDecision
from tests.support import NOW, REPO


def advisory(
    title: str,
    *paragraphs: str,
    area: object = "Kent",
    areas: object = None,
    force: str | None = "Kent Police",
) -> bytes:
    front: dict[str, object] = {}
    if area is not None:
        front["area"] = area
    if areas is not None:
        front["areas"] = areas
    front["publish"] = {"date": "10:00 01/03/2024"}
    front["title"] = f"{title} | {force}" if force else title
    front["url"] = "https://www.kent.police.uk/news/example/"
    text = (
        "```yaml\n"
        + yaml.safe_dump(front, allow_unicode=True)
        + "```\n\n"
        + "\n\n".join(paragraphs)
        + "\n"
    )
    return text.encode()


def decide(
    gazetteer: Gazetteer, title: str, *paragraphs: str, **front: object
) -> tuple[AreaDecision, list[str]]:
    parsed = parse_advisory_bytes(
        advisory(title, *paragraphs, **front),  # type: ignore[arg-type]
        "test.md",
        gazetteer,
        now=NOW,
    )
    assert parsed.advisory.decision is not None
    return parsed.advisory.decision, parsed.warnings


def reasons(decision: AreaDecision) -> dict[str, str]:
    return {d.name: d.reason for d in decision.discounted}


# -- a. a declared area below the force is authoritative ------------------------------


def test_declared_area_is_not_narrowed_by_the_towns_its_text_names(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Rise in distraction burglaries in Chatham, Gillingham, Rainham, Rochester and Strood",
        "Officers are warning residents in Chatham, Gillingham, Rainham, Rochester and Strood.",
        area="Medway",
    )
    assert decision.areas == {"medway"}
    assert gazetteer.wants(["hoo"], decision.areas) and gazetteer.wants(
        ["walderslade"], decision.areas
    )
    assert {m.area for m in decision.mentioned} == {
        "chatham",
        "gillingham",
        "rainham",
        "rochester",
        "strood",
    }
    assert [e.words for e in decision.evidence] == ["area: Medway"]


def test_declared_area_is_not_widened_by_places_outside_it(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Man arrested",
        "A Gillingham man was arrested in Deal on Wednesday.",
        area="Dover",
    )
    assert decision.areas == {"dover"}
    assert gazetteer.wants(["walmer"], decision.areas)
    assert not gazetteer.wants(["medway"], decision.areas)
    assert reasons(decision)["Gillingham"] == "a suspect's home"


def test_a_yaml_list_or_a_comma_list_of_declared_areas_reaches_each(gazetteer: Gazetteer) -> None:
    for front in (
        {"area": None, "areas": ["Medway", "Swale"]},
        {"area": ["Medway", "Swale"]},
        {"area": "Medway, Swale"},
    ):
        decision, warnings = decide(gazetteer, "Dog thefts", "Keep dogs in sight.", **front)
        assert decision.areas == {"medway", "swale"}, front
        assert warnings == []


# -- b. declared force or nothing: the text decides, by evidence ------------------------


def test_the_seed_advisory_stays_medway_because_a_victims_home_counts(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Safety advice after telephone fraudster poses as Kent Police officer",
        "Fraud investigators are reminding residents of safety advice following a report a cold caller "
        "claimed to be from Kent Police and defrauded a Medway man of money.",
    )
    assert decision.areas == {"medway"}
    assert decision.evidence[0].how == "a victim's home"


def test_a_suspects_home_town_is_not_evidence(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Arrest after burglary",
        "Officers were called to a flat in Ramsgate after a burglary.",
        "A 35-year-old man from Sandwich was arrested. Lee Cole, 41, of Lowfield Street, Dartford, was charged.",
    )
    assert decision.areas == {"ramsgate"}
    assert reasons(decision)["Sandwich"] == "a suspect's home"
    assert reasons(decision)["Dartford"] == "a suspect's home"


def test_a_suspects_home_in_the_title_is_not_evidence(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer, "Dartford man jailed for burglaries in Gravesend", "He was jailed on Friday."
    )
    assert decision.areas == {"gravesend"}


@pytest.mark.parametrize("apostrophe", ["'", "’", ""])
def test_a_court_is_not_evidence_whatever_the_apostrophe(
    gazetteer: Gazetteer, apostrophe: str
) -> None:
    decision, _ = decide(
        gazetteer,
        "Man charged with theft",
        f"A man has been charged with theft from a shop in Faversham. He will appear at Medway Magistrates{apostrophe} Court.",
    )
    assert decision.areas == {"faversham"}
    assert reasons(decision)["Medway"] == "a court"


@pytest.mark.parametrize(
    ("text", "name", "reason"),
    [
        (
            "Talks by an Ashford-based charity for residents in Folkestone.",
            "Ashford",
            "an organisation's base",
        ),
        (
            "A charity based in Ashford will give talks in Folkestone.",
            "Ashford",
            "an organisation's base",
        ),
        (
            "A cyclist was hurt on Tonbridge Way in Folkestone.",
            "Tonbridge",
            "a road or street name",
        ),
        (
            "A man assaulted in Folkestone was taken to Maidstone Hospital.",
            "Maidstone",
            "a hospital",
        ),
        (
            "A man assaulted in Folkestone was taken to hospital in Ashford.",
            "Ashford",
            "a hospital",
        ),
        (
            "A man arrested in Folkestone was taken to Medway Police Station.",
            "Medway",
            "a police station",
        ),
        (
            "Officers from the Maidstone Community Safety Unit arrested a man in Folkestone.",
            "Maidstone",
            "an organisation",
        ),
        (
            "He appeared before magistrates in Sevenoaks after a theft in Folkestone.",
            "Sevenoaks",
            "a court",
        ),
    ],
)
def test_institutions_roads_and_bases_are_not_evidence(
    gazetteer: Gazetteer, text: str, name: str, reason: str
) -> None:
    decision, _ = decide(gazetteer, "Appeal", text)
    assert decision.areas == {"folkestone"}
    assert reasons(decision)[name] == reason


def test_charing_cross_is_not_charing(gazetteer: Gazetteer) -> None:
    decision, warnings = decide(
        gazetteer, "Commuters warned", "A purse was taken near Charing Cross station."
    )
    assert decision.force_wide and not decision.evidence[:-1]
    assert "no place found" in warnings[0]


@pytest.mark.parametrize(
    "qualified",
    [
        "Rainham, Essex",
        "Gillingham, Dorset",
        "Hythe, Hampshire",
        "Rainham, east London",
        "Gillingham (Dorset)",
        "Hythe in Hampshire",
        "the Essex town of Rainham",
    ],
)
def test_a_place_qualified_by_another_county_is_not_kent(
    gazetteer: Gazetteer, qualified: str
) -> None:
    decision, _ = decide(
        gazetteer, "Car recovered", f"A car stolen in Tonbridge was found in {qualified}."
    )
    assert decision.areas == {"tonbridge"}
    assert reasons(decision)[
        qualified.split(",")[0].split(" (")[0].split(" in ")[0].replace("the Essex town of ", "")
    ].startswith("a place of that name in")


def test_across_kent_is_force_wide_even_when_an_arrest_elsewhere_is_named(
    gazetteer: Gazetteer,
) -> None:
    decision, warnings = decide(
        gazetteer,
        "Warning to residents across Kent about rogue traders",
        "Residents across Kent are urged to be wary.",
        "It follows an arrest in Maidstone last week.",
    )
    assert decision.areas == {"kent"} and decision.force_wide
    assert reasons(decision)["Maidstone"] == "the advisory is for the whole force area"
    assert warnings == []  # force-wide on purpose: nothing to warn about


@pytest.mark.parametrize(
    "phrase",
    [
        "Kent residents are",
        "People across the county are",
        "Residents in Kent are",
        "A Kent-wide campaign:",
    ],
)
def test_county_wide_advice_is_force_wide(gazetteer: Gazetteer, phrase: str) -> None:
    decision, _ = decide(
        gazetteer,
        "Courier fraud",
        f"{phrase} urged to hang up on fake police.",
        "Victims in Sevenoaks lost £8,000.",
    )
    assert decision.areas == {"kent"}


def test_no_place_at_all_is_force_wide_with_a_warning(gazetteer: Gazetteer) -> None:
    decision, warnings = decide(
        gazetteer, "Spring clean your shed security", "Check the locks on your shed."
    )
    assert decision.areas == {"kent"} and decision.force_wide and decision.no_place
    assert warnings == ["test.md: no place found; treated as force-wide (Kent)"]


def test_places_below_the_first_paragraph_count_only_as_the_scene(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Appeal after burglary in Chatham",
        "A house in Chatham was broken into.",
        "The force's Rochester office and a Sevenoaks charity offer advice.",
    )
    assert decision.areas == {"chatham"}
    assert reasons(decision)["Sevenoaks"] == "named only in passing, below the first paragraph"


# -- c. an unknown declared area is outside coverage ------------------------------------


@pytest.mark.parametrize(
    "area", ["Essex", "Northumbria", "London", "National", "Medwya", ["Essex", "Suffolk"]]
)
def test_an_unknown_declared_area_is_outside_coverage_and_reported(
    gazetteer: Gazetteer, area: object
) -> None:
    decision, warnings = decide(
        gazetteer, "Appeal after assault in Chatham", "A man was hurt in Chatham.", area=area
    )
    assert decision.outside_coverage and decision.areas == frozenset()
    assert not gazetteer.wants(["kent"], decision.areas) and not gazetteer.wants(
        ["chatham"], decision.areas
    )
    assert any("outside coverage" in w and "never mailed" in w for w in warnings)


def test_a_typo_in_the_declared_area_is_outside_coverage_with_a_suggestion(
    gazetteer: Gazetteer,
) -> None:
    _, warnings = decide(gazetteer, "Appeal", "In Chatham.", area="Medwya")
    assert "did you mean 'medway'" in warnings[0]
    assert "area_aliases" in warnings[0]


def test_another_forces_release_without_an_area_is_outside_coverage(gazetteer: Gazetteer) -> None:
    decision, warnings = decide(
        gazetteer,
        "Appeal after cyclist hurt",
        "A cyclist was hurt in Chelmsford.",
        area=None,
        force="Essex Police",
    )
    assert decision.outside_coverage
    decision, warnings = decide(
        gazetteer,
        "Boat engines stolen",
        "Engines were taken from boats at Hythe, Hampshire.",
        area=None,
        force=None,
    )
    assert decision.outside_coverage
    assert "names no place in Kent" in warnings[0]


def test_an_operator_alias_brings_national_warnings_in_force_wide(gazetteer: Gazetteer) -> None:
    widened = gazetteer.with_aliases({"National": "kent"})
    decision = decide_areas(
        widened,
        AdvisoryText("Fake parcel texts", "", "Thousands of reports."),
        [Declared("area", "National")],
    )
    assert decision.areas == {"kent"} and not decision.outside_coverage


def test_area_aliases_in_config_are_used_and_a_bad_target_is_a_config_error(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    good = write_config(area_aliases={"National": "kent"})
    result = run_cli("areas", "--json", config=good)
    assert result.exit_code == 0 and '"National"' in result.output
    bad = write_config(area_aliases={"National": "Narnia"})
    result = run_cli("areas", config=bad)
    assert result.exit_code == 2
    assert "area_aliases" in result.output and "Narnia" in result.output


# -- d. names as they are written ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "area"),
    [
        ("Bikes stolen in King’s Hill", "kings-hill"),
        ("Bikes stolen in Kings Hill", "kings-hill"),
        ("Huts damaged at St Margaret’s Bay", "st-margarets-at-cliffe"),
        ("Huts damaged at Saint Margarets Bay", "st-margarets-at-cliffe"),
        ("Theft in Sutton at Hone", "sutton-at-hone"),
        ("Theft in Westgate on Sea", "westgate-on-sea"),
        ("A drinking ban in Chatham’s town centre", "chatham"),
        ("Residents in ME4 reported thefts", "chatham"),
        ("Residents in ME8 reported thefts", "medway"),
    ],
)
def test_names_match_whatever_the_apostrophes_hyphens_and_saints(
    gazetteer: Gazetteer, text: str, area: str
) -> None:
    decision, _ = decide(gazetteer, text, "Call 101.")
    assert decision.areas == {area}


def test_a_name_two_places_share_is_resolved_by_context(gazetteer: Gazetteer) -> None:
    sheppey, _ = decide(
        gazetteer,
        "Shed fire in Minster",
        "A shed was set alight.",
        "Crews from Sheerness attended.",
    )
    thanet, _ = decide(gazetteer, "Fuel theft in Minster", "It happened in Minster near Ramsgate.")
    assert sheppey.areas == {"minster"}
    assert thanet.areas == {"minster-in-thanet", "ramsgate"}


def test_a_name_two_places_share_without_context_decides_nothing(gazetteer: Gazetteer) -> None:
    decision, warnings = decide(gazetteer, "Burglary in Minster", "A laptop was taken.")
    assert decision.force_wide
    assert "names more than one place" in reasons(decision)["Minster"]
    assert "no place found" in warnings[0]


def test_a_name_better_known_elsewhere_needs_context(gazetteer: Gazetteer) -> None:
    elsewhere, _ = decide(gazetteer, "Phone thefts in Canterbury", "A man from Leeds was charged.")
    here, _ = decide(
        gazetteer, "Break-ins in Leeds and Langley", "Sheds near Maidstone were entered."
    )
    assert elsewhere.areas == {"canterbury"}
    assert here.areas == {"leeds", "langley"}  # both in Maidstone, which the text names


# -- the evaluation set -------------------------------------------------------------------


def test_the_evaluation_set_scores_f1_of_at_least_095_and_leaks_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "areas.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    f1 = float(re.search(r"F1 ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    leaks = int(re.search(r"leaks\): (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert f1 >= 0.95, result.stdout
    assert leaks == 0, result.stdout
    assert int(re.search(r"advisories: (\d+)", result.stdout).group(1)) >= 60  # type: ignore[union-attr]


# -- the run's report ---------------------------------------------------------------------


def test_ingest_reports_outside_coverage_and_force_wide_advisories(
    run_cli: Callable[..., Result], advisory_dir: Path
) -> None:
    (advisory_dir / "essex.md").write_bytes(
        advisory("Appeal", "A theft in Chelmsford.", area="Essex", force="Essex Police")
    )
    (advisory_dir / "sheds.md").write_bytes(advisory("Shed security", "Lock your shed."))
    result = run_cli("ingest", str(advisory_dir))
    assert (
        "area 'Essex' is not in the gazetteer, so the advisory is outside coverage" in result.output
    )
    assert "sheds.md: no place found; treated as force-wide (Kent)" in result.output


def test_a_person_named_like_a_place_is_not_evidence(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer,
        "Appeal after burglary",
        "A house in Folkestone was burgled.",
        "Inspector Mark Hythe said: 'Call us.' Mrs Ashford, a neighbour, heard nothing.",
    )
    assert decision.areas == {"folkestone"}
    assert reasons(decision)["Hythe"] == reasons(decision)["Ashford"] == "a person's name"


def test_the_river_medway_is_not_medway(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer, "Body found in the River Medway at Maidstone", "Officers were called at 9am."
    )
    assert decision.areas == {"maidstone"}


# -- feed sources -------------------------------------------------------------------------

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link><description>x</description>
<item><title>{title}</title><link>https://news.example/1</link><guid>https://news.example/1</guid>
<description>{text}</description><pubDate>Mon, 06 May 2024 10:00:00 GMT</pubDate>{category}</item>
</channel></rss>"""


def feed_decision(
    gazetteer: Gazetteer, title: str, text: str, *, area: str | None, category: str = ""
) -> AreaDecision:
    body = RSS.format(
        title=title, text=text, category=f"<category>{category}</category>" if category else ""
    ).encode()
    source = SourceConfig(feed="https://news.example/feed.rss", area=area)
    fetched = Fetched("https://news.example/feed.rss", 200, body, None, None, "application/rss+xml")
    slug = gazetteer.resolve(area) if area else None
    [(_, parse)] = parse_feed(fetched, source, gazetteer, now=NOW, force_area=slug)[0]
    decision = parse().advisory.decision
    assert decision is not None
    return decision


def test_a_feed_sources_area_below_the_force_is_authoritative(gazetteer: Gazetteer) -> None:
    decision = feed_decision(
        gazetteer,
        "Burglaries in Chatham",
        "A man from Dover was arrested in Chatham.",
        area="medway",
    )
    assert decision.areas == {"medway"}
    assert decision.evidence[0].words == "source: medway"


def test_a_feed_sources_force_area_lets_the_text_decide(gazetteer: Gazetteer) -> None:
    decision = feed_decision(
        gazetteer, "Burglaries in Chatham", "Houses in Chatham were entered.", area="kent"
    )
    assert decision.areas == {"chatham"}


def test_a_feed_category_naming_a_place_is_declared_and_a_topic_is_ignored(
    gazetteer: Gazetteer,
) -> None:
    assert feed_decision(
        gazetteer, "Scam warning", "Hang up.", area="kent", category="Swale"
    ).areas == {"swale"}
    topic = feed_decision(
        gazetteer, "Scam warning", "Hang up in Deal.", area="kent", category="Fraud"
    )
    assert topic.areas == {"deal"} and not topic.outside_coverage


def test_another_forces_feed_entry_without_a_source_area_is_outside_coverage(
    gazetteer: Gazetteer,
) -> None:
    decision = feed_decision(
        gazetteer, "Cyclist hurt | Essex Police", "A cyclist was hurt in Chelmsford.", area=None
    )
    assert decision.outside_coverage and decision.areas == frozenset()


def test_a_police_operation_named_like_a_place_is_not_evidence(gazetteer: Gazetteer) -> None:
    decision, _ = decide(
        gazetteer, "Arrests made in Operation Tonbridge", "Officers arrested three men in Margate."
    )
    assert decision.areas == {"margate"}


def test_a_person_who_did_the_deed_is_a_suspect_and_one_it_was_done_to_a_victim(
    gazetteer: Gazetteer,
) -> None:
    decision, _ = decide(
        gazetteer,
        "Man jailed",
        "A Dartford man who assaulted a woman in Gravesend has been jailed.",
        "In a separate case a Chatham man was assaulted in Gravesend.",
    )
    assert decision.areas == {"gravesend", "chatham"}  # a victim's home counts wherever it is said
    assert reasons(decision)["Dartford"] == "a suspect's home"


# -- another force's or a national release is outside coverage, not force-wide --------


def undeclared(gazetteer: Gazetteer, title: str, *paragraphs: str) -> AreaDecision:
    """No ``area:`` and no "| X Police" in the title: the text alone decides."""
    return decide_areas(gazetteer, AdvisoryText(title, "", "\n\n".join(paragraphs)))


def test_a_release_naming_only_another_forces_towns_is_outside_coverage(
    gazetteer: Gazetteer,
) -> None:
    decision, warnings = decide(
        gazetteer,
        "Burglaries in Chelmsford",
        "Sheds were broken into in Springfield and Great Baddow overnight.",
        area=None,
        force=None,
    )
    assert decision.outside_coverage and decision.areas == frozenset()
    assert reasons(decision)["Chelmsford"] == "a place outside the force area"
    assert "Chelmsford" in warnings[0] and "outside coverage" in warnings[0]


@pytest.mark.parametrize(
    "signed",
    [
        "Officers from the Met arrested a man on Friday.",
        "The PSNI is appealing for dashcam footage.",
        "Police Scotland said the machine was taken overnight.",
        "Anyone with information should call Sussex Police on 101.",
    ],
)
def test_a_release_signed_by_another_force_in_its_text_is_outside_coverage(
    gazetteer: Gazetteer, signed: str
) -> None:
    decision = undeclared(gazetteer, "Appeal after car stolen", signed)
    assert decision.outside_coverage
    assert "another police force" in reasons(decision).values()


def test_a_name_kent_shares_with_elsewhere_stays_kent_without_other_context(
    gazetteer: Gazetteer,
) -> None:
    assert undeclared(
        gazetteer, "Shop window smashed in Rainham", "Officers are appealing."
    ).areas == {"rainham"}
    # A suspect's home elsewhere does not make the scene elsewhere.
    decision = undeclared(
        gazetteer,
        "Robbery in Rainham",
        "A man from Croydon was arrested after a robbery in Rainham.",
    )
    assert decision.areas == {"rainham"}


@pytest.mark.parametrize(
    ("title", "text"),
    [
        (
            "Van thefts in Romford and Rainham",
            "Tools were stolen from vans in Romford and Rainham.",
        ),
        (
            "Robbery at a petrol station",
            "A shop was robbed in Rainham. The Metropolitan Police are investigating.",
        ),
        (
            "Livestock worrying",
            "Sheep were killed near Gillingham and Shaftesbury. Dorset Police are visiting farms.",
        ),
        (
            "Boat fire at Hythe marina",
            "Officers attended a fire in Hythe. Hampshire Constabulary said the cause is unknown.",
        ),
    ],
)
def test_a_name_kent_shares_with_elsewhere_is_outside_when_the_text_is_clearly_elsewhere(
    gazetteer: Gazetteer, title: str, text: str
) -> None:
    decision = undeclared(gazetteer, title, text)
    assert decision.outside_coverage
    assert any(
        r.startswith("also a place outside the force area") for r in reasons(decision).values()
    )


def test_a_longer_name_elsewhere_beats_a_shorter_kent_name(gazetteer: Gazetteer) -> None:
    decision = undeclared(
        gazetteer, "Car stolen", "A car was stolen in Stanford-le-Hope on Friday."
    )
    assert decision.outside_coverage
    assert "stanford" not in {d.area for d in decision.discounted}


@pytest.mark.parametrize(
    ("title", "text", "area"),
    [
        (
            "Man arrested after assault",
            "A man from Southend was arrested after an assault in Gravesend.",
            "gravesend",
        ),
        (
            "Stolen car recovered",
            "A car stolen in a burglary in Sevenoaks was found in Croydon.",
            "sevenoaks",
        ),
        (
            "Bike thieves targeted",
            "Kent Police and Essex Police officers targeted bike thieves in Dartford.",
            "dartford",
        ),
    ],
)
def test_a_kent_release_naming_elsewhere_in_passing_stays_kent(
    gazetteer: Gazetteer, title: str, text: str, area: str
) -> None:
    assert undeclared(gazetteer, title, text).areas == {area}


def test_a_kent_court_keeps_a_release_naming_a_home_elsewhere_force_wide(
    gazetteer: Gazetteer,
) -> None:
    decision = undeclared(
        gazetteer,
        "Burglar jailed",
        "John Smith, 34, of Croydon, was jailed at Maidstone Crown Court.",
    )
    assert decision.areas == {"kent"} and not decision.outside_coverage


def test_a_name_elsewhere_that_is_also_a_word_counts_only_as_a_place(gazetteer: Gazetteer) -> None:
    assert undeclared(
        gazetteer, "Reading the signs of a scam", "Reading the signs early helps."
    ).areas == {"kent"}
    assert undeclared(
        gazetteer, "Concern for missing girl", "A girl, 14, is missing from Reading."
    ).outside_coverage


@pytest.mark.parametrize(
    "national",
    [
        "Fake parcel delivery texts are being sent across the UK.",
        "The National Crime Agency is urging businesses to patch their systems.",
        "Action Fraud is warning the public about courier fraud.",
        "Reports of ticket fraud have risen nationally.",
    ],
)
def test_a_national_warning_with_no_declared_area_is_outside_coverage_and_reported(
    gazetteer: Gazetteer, national: str
) -> None:
    decision, warnings = decide(gazetteer, "Fraud warning", national, area=None, force=None)
    assert decision.outside_coverage and decision.areas == frozenset()
    assert "national warning" in warnings[0] and "area_aliases" in warnings[0]


def test_a_national_warning_goes_force_wide_when_the_operator_maps_national(
    gazetteer: Gazetteer,
) -> None:
    widened = gazetteer.with_aliases({"National": "kent"})
    decision = undeclared(
        widened, "Fraud warning", "Fake parcel delivery texts are being sent across the UK."
    )
    assert decision.areas == {"kent"} and decision.force_wide and not decision.no_place
    assert any("national warning" in e.how for e in decision.evidence)


def test_kent_police_republishing_a_national_warning_is_force_wide(gazetteer: Gazetteer) -> None:
    for front in ({"area": "Kent", "force": None}, {"area": None, "force": "Kent Police"}):
        decision, _ = decide(
            gazetteer, "Fraud warning", "Fake parcel texts are being sent across the UK.", **front
        )
        assert decision.areas == {"kent"} and not decision.outside_coverage


def test_action_fraud_as_where_to_report_does_not_make_a_kent_warning_national(
    gazetteer: Gazetteer,
) -> None:
    decision = undeclared(
        gazetteer,
        "Beware of fake tradesmen",
        "Never pay upfront. Report it to Action Fraud on 0300 123 2040.",
    )
    assert decision.areas == {"kent"} and not decision.outside_coverage


def test_a_kent_place_named_with_a_national_phrase_stays_kent(gazetteer: Gazetteer) -> None:
    decision = undeclared(
        gazetteer,
        "Herne Bay woman loses savings",
        "A Herne Bay woman was defrauded. Fraud is reported nationally.",
    )
    assert decision.areas == {"herne-bay"}


def test_the_gazetteer_rejects_a_malformed_outside_list(tmp_path: Path) -> None:
    data = yaml.safe_load(
        (REPO / "alerts" / "gazetteers" / "kent.yaml").read_text(encoding="utf-8")
    )
    data["outside"] = {"places": [{"common_word": True}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(GazetteerError, match="outside: places"):
        load_gazetteer(str(path))


@pytest.mark.parametrize(
    "url",
    [
        "https://www.essex.police.uk/news/essex/2024/ticket-fraud/",
        "https://www.actionfraud.police.uk/news/ticket-fraud",
        "https://www.nationalcrimeagency.gov.uk/news/ticket-fraud",
    ],
)
def test_a_release_naming_nowhere_on_another_forces_site_is_outside_coverage(
    gazetteer: Gazetteer, url: str
) -> None:
    text = AdvisoryText(
        "Festival ticket warning", "", "Fans lost an average of £600 each last summer.", url
    )
    decision = decide_areas(gazetteer, text)
    assert decision.outside_coverage
    assert reasons(decision)[url.split("/")[2]] == "published on another force's or a national site"


def test_a_release_naming_nowhere_on_the_forces_own_site_stays_force_wide(
    gazetteer: Gazetteer,
) -> None:
    url = "https://www.kent.police.uk/news/kent/2024/ticket-fraud/"
    decision = decide_areas(
        gazetteer, AdvisoryText("Festival ticket warning", "", "Fans lost £600 each.", url)
    )
    assert decision.areas == {"kent"} and decision.no_place
    # A place here decides whoever published it; the site is a hint only for text naming nowhere.
    elsewhere = "https://www.essex.police.uk/news/2024/dartford/"
    decision = decide_areas(
        gazetteer, AdvisoryText("Burglary in Dartford", "", "A house was burgled.", elsewhere)
    )
    assert decision.areas == {"dartford"}


@pytest.mark.parametrize(
    "person",
    [
        "John Lancaster, 45, was charged with three burglaries.",
        "Officers charged Paul Chester with three burglaries.",
        "Inspector Andy Hastings said patrols will continue.",
    ],
)
def test_a_surname_like_a_town_elsewhere_does_not_make_a_release_another_forces(
    gazetteer: Gazetteer, person: str
) -> None:
    decision = undeclared(gazetteer, "Man charged with burglary", person)
    assert decision.areas == {"kent"} and not decision.outside_coverage


def test_the_met_office_is_not_the_met(gazetteer: Gazetteer) -> None:
    decision = undeclared(
        gazetteer,
        "Drivers urged to take care",
        "The Met Office has issued a yellow warning for ice.",
    )
    assert decision.areas == {"kent"} and not decision.outside_coverage
    assert undeclared(
        gazetteer, "Man charged", "Officers from the Met charged a man."
    ).outside_coverage
