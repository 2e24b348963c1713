"""The gazetteer: the Kent area tree, names and postcodes, tagging text without false
alarms, and the one matching rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alerts.areas import Gazetteer, load_gazetteer
from alerts.errors import GazetteerError, UnknownArea
from alerts.ingest.files import parse_advisory_file
from alerts.tagging import AdvisoryText, decide_areas
from alerts.types import AreaKind
from tests.support import NOW, SAMPLE

KENT_DISTRICTS = {
    "ashford", "canterbury", "dartford", "dover", "folkestone-and-hythe", "gravesham", "maidstone",
    "medway", "sevenoaks", "swale", "thanet", "tonbridge-and-malling", "tunbridge-wells",
}  # fmt: skip


# -- the tree ------------------------------------------------------------------------


def test_kent_is_the_root_with_13_districts(gazetteer: Gazetteer) -> None:
    assert gazetteer.root.slug == "kent"
    assert gazetteer.root.kind is AreaKind.FORCE
    districts = {n.slug for n in gazetteer if n.kind is AreaKind.DISTRICT}
    assert districts == KENT_DISTRICTS
    assert all(gazetteer.node(d).parent == "kent" for d in districts)


@pytest.mark.parametrize("town", ["chatham", "gillingham", "rochester", "strood", "rainham"])
def test_medway_towns_are_under_medway(gazetteer: Gazetteer, town: str) -> None:
    assert gazetteer.node(town).kind is AreaKind.TOWN
    assert gazetteer.ancestors(town) == ["medway", "kent"]


def test_every_district_has_towns_villages_and_postcode_districts(gazetteer: Gazetteer) -> None:
    for district in KENT_DISTRICTS:
        kinds = {gazetteer.node(child).kind for child in gazetteer.descendants(district)}
        assert kinds == {AreaKind.TOWN, AreaKind.VILLAGE, AreaKind.POSTCODE}, district


def test_the_gazetteer_knows_about_300_parishes_and_villages_each_in_its_district(
    gazetteer: Gazetteer,
) -> None:
    villages = [n for n in gazetteer if n.kind is AreaKind.VILLAGE]
    assert len(villages) >= 300
    assert all(gazetteer.district_of(n.slug) in KENT_DISTRICTS for n in villages)
    assert gazetteer.district_of("cuxton") == "medway"
    assert gazetteer.district_of("lordswood") == "medway"
    assert gazetteer.ancestors("lordswood") == ["chatham", "medway", "kent"]


@pytest.mark.parametrize(
    "code", [f"ME{n}" for n in range(1, 21)] + [f"CT{n}" for n in range(1, 22)]
)
def test_every_me_and_ct_postcode_district_lies_in_a_kent_district(
    gazetteer: Gazetteer, code: str
) -> None:
    assert gazetteer.district_of(gazetteer.resolve(code)) in KENT_DISTRICTS


@pytest.mark.parametrize(
    ("code", "stands_for"),
    [("ME4", "chatham"), ("ME7", "gillingham"), ("ME1", "rochester"), ("CT5", "whitstable"), ("TN9", "tonbridge"),
     ("ME2", "medway"), ("ME3", "medway"), ("CT14", "dover"), ("TN12", "tunbridge-wells")],
)  # fmt: skip
def test_a_postcode_district_stands_for_its_town_or_else_its_district(
    gazetteer: Gazetteer, code: str, stands_for: str
) -> None:
    assert gazetteer.resolve(code) == stands_for
    assert gazetteer.node(code.lower()).parent == gazetteer.district_of(stands_for)


def test_feed_areas_are_the_force_districts_and_towns(gazetteer: Gazetteer) -> None:
    feed = gazetteer.feed_areas()
    assert feed[0].slug == "kent"
    assert {n.kind for n in feed} == {AreaKind.FORCE, AreaKind.DISTRICT, AreaKind.TOWN}
    assert len(feed) == len(
        [n for n in gazetteer if n.kind not in (AreaKind.POSTCODE, AreaKind.VILLAGE)]
    )


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("ME4", "chatham"),
        ("ME4 4TR", "chatham"),
        ("me4 4tr", "chatham"),
        ("ME44TR", "chatham"),
        ("me144ab", "maidstone"),
        ("ME14TR", "rochester"),  # ME1 4TR: the inward code is a digit and two letters
        (" ME4  ", "chatham"),
        ("ME8", "medway"),
        ("King’s Hill", "kings-hill"),
        ("Saint Margarets Bay", "st-margarets-at-cliffe"),
        ("Sutton at Hone", "sutton-at-hone"),
        ("westgate on sea", "westgate-on-sea"),
        ("CT14", "dover"),
        ("TN23 1AA", "ashford"),
        ("Medway", "medway"),
        ("medway", "medway"),
        ("Chatham", "chatham"),
        ("Royal Tunbridge Wells", "tunbridge-wells"),
        ("tunbridge_wells", "tunbridge-wells"),
        ("Shepway", "folkestone-and-hythe"),
        ("Kent & Medway", "kent"),
    ],
)
def test_resolve_accepts_slugs_names_aliases_and_postcodes(
    gazetteer: Gazetteer, text: str, slug: str
) -> None:
    assert gazetteer.resolve(text) == slug


@pytest.mark.parametrize("text", ["Narnia", "ME99", "SW1A 1AA", "", "ME4 4TRX"])
def test_resolve_rejects_unknown_areas_with_a_hint(gazetteer: Gazetteer, text: str) -> None:
    with pytest.raises(UnknownArea) as info:
        gazetteer.resolve(text)
    assert info.value.hint is not None
    assert "alerts areas" in info.value.hint


def test_resolve_suggests_close_names(gazetteer: Gazetteer) -> None:
    with pytest.raises(UnknownArea, match="did you mean 'chatham'"):
        gazetteer.resolve("Chathm")


def test_a_name_two_places_share_must_say_which(gazetteer: Gazetteer) -> None:
    with pytest.raises(UnknownArea, match="names more than one place") as info:
        gazetteer.resolve("Minster")
    assert "minster-in-thanet" in (info.value.hint or "")
    assert gazetteer.resolve("Minster-on-Sea") == "minster"
    assert gazetteer.resolve("Minster in Thanet") == "minster-in-thanet"


def test_operator_aliases_add_names_for_areas(gazetteer: Gazetteer) -> None:
    widened = gazetteer.with_aliases({"National": "kent", "Medway Council": "medway"})
    assert widened.resolve("national") == "kent"
    assert widened.resolve("Medway Council") == "medway"
    with pytest.raises(UnknownArea):
        gazetteer.resolve("National")
    with pytest.raises(GazetteerError, match="already names"):
        gazetteer.with_aliases({"Chatham": "dover"})


# -- tagging -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Dealer arrested",
        "a man in a Hoodie",
        "Wyevale garden centre",
        "it was a good deal",
        "Deal with it. Deal with the fraudster by hanging up.",
        "he was eating a sandwich",
        "How To Deal With Cold Callers",
        "Kent Police said",
        "KENT POLICE said",
        "Kent Police's Economic Crime Unit",
        "at Maidstone Crown Court",
        "at Maidstone Magistrates' Court",
        "on Dover Road",
        "in Sandwich Road",
        "Kent County Council",
        "the Wye Valley in Wales",
        "Charing Cross station",
        "a hoo-ha",
        "the Minster bells",
        "Hythe Street",
        "Lydd",
    ],
)
def test_tagging_ignores_substrings_common_words_and_institutions(
    gazetteer: Gazetteer, text: str
) -> None:
    assert evidence_areas(gazetteer, text) == set()


@pytest.mark.parametrize(
    ("text", "slugs"),
    [
        ("a burglary in Deal", {"deal"}),
        ("a shop near Sandwich", {"sandwich"}),
        ("Officers IN DEAL", {"deal"}),
        ("a flat in Deal close to the sea", {"deal"}),
        ("a shop in Beach Street, Deal, was raided", {"deal"}),
        ("a car stolen in Hoo St Werburgh", {"hoo"}),
        ("across the Hoo Peninsula", {"hoo-peninsula"}),
        ("in Royal Tunbridge Wells", {"tunbridge-wells"}),
        ("on the Isle of Sheppey", {"isle-of-sheppey"}),
        ("walkers in Wye", {"wye"}),
        ("Chatham and Gillingham", {"chatham", "gillingham"}),
        ("in Kent", {"kent"}),
        ("a Medway man", {"medway"}),
        ("Dover Road, Folkestone", {"folkestone"}),
        ("a Kent resident, not Kent Police", {"kent"}),
        ("call from ME4 4TR", {"chatham"}),
        ("postcode CT14 area", {"dover"}),
        ("Herne  Bay", {"herne-bay"}),
    ],
)
def test_tagging_finds_places(gazetteer: Gazetteer, text: str, slugs: set[str]) -> None:
    assert evidence_areas(gazetteer, text) == slugs


def evidence_areas(gazetteer: Gazetteer, text: str) -> set[str]:
    """The areas the words of ``text`` (as an advisory's title) are evidence for."""
    decision = decide_areas(gazetteer, AdvisoryText(text))
    return {evidence.area for evidence in decision.evidence}


def test_sample_concerns_medway(gazetteer: Gazetteer) -> None:
    decision = parse_advisory_file(SAMPLE, gazetteer, now=NOW).advisory.decision
    assert decision is not None
    assert decision.areas == {"medway"}
    assert [(e.area, e.how) for e in decision.evidence] == [
        ("medway", "a victim's home"),
        ("kent", "declared force area; the text decides"),
    ]
    assert "defrauded a Medway man" in decision.evidence[0].words


@pytest.mark.parametrize(
    ("tags", "specific"),
    [
        ({"kent"}, {"kent"}),
        ({"kent", "medway"}, {"medway"}),
        ({"kent", "medway", "chatham"}, {"chatham"}),
        ({"chatham", "dover"}, {"chatham", "dover"}),
        ({"me4"}, {"chatham"}),
        ({"me8"}, {"medway"}),
    ],
)
def test_most_specific_drops_areas_that_contain_another(
    gazetteer: Gazetteer, tags: set[str], specific: set[str]
) -> None:
    assert gazetteer.most_specific(tags) == specific


# -- the matching rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription", "advisory", "wanted"),
    [
        (["chatham"], ["medway"], True),
        (["chatham"], ["kent"], True),
        (["medway"], ["chatham"], True),
        (["medway"], ["medway"], True),
        (["dover"], ["medway"], False),
        (["dover"], ["chatham"], False),
        (["dover"], ["kent"], True),
        (["me4"], ["medway"], True),
        (["me4"], ["chatham"], True),
        (["me4"], ["dover"], False),
        (["me4"], ["gillingham"], False),
        (["me8"], ["gillingham"], True),
        (["chatham"], ["lordswood"], True),
        (["lordswood"], ["chatham"], True),
        (["lordswood"], ["medway"], True),
        (["cuxton"], ["chatham"], False),
        (["dover"], [], False),
        (["gillingham"], ["chatham"], False),
        (["kent"], ["deal"], True),
        (["dover", "chatham"], ["medway"], True),
        ([], ["kent"], False),
    ],
)
def test_matching_rule(
    gazetteer: Gazetteer, subscription: list[str], advisory: list[str], wanted: bool
) -> None:
    assert gazetteer.wants(subscription, advisory) is wanted


def test_matching_areas_is_the_same_rule_as_wants(gazetteer: Gazetteer) -> None:
    slugs = [n.slug for n in gazetteer]
    for subscribed in slugs[::3]:
        matching = gazetteer.matching_areas([subscribed])
        for concerned in slugs:
            wanted = gazetteer.wants([subscribed], [concerned])
            assert wanted is (gazetteer.canonical(concerned) in matching), (subscribed, concerned)


def test_postcode_subscription_behaves_as_the_town_it_stands_for(gazetteer: Gazetteer) -> None:
    assert gazetteer.matching_areas(["me4"]) == gazetteer.matching_areas(["chatham"])
    assert gazetteer.matching_areas(["me8"]) == gazetteer.matching_areas(["medway"])


# -- the data file -----------------------------------------------------------------------


def test_unknown_builtin_gazetteer_names_the_choices() -> None:
    with pytest.raises(GazetteerError, match="no built-in gazetteer 'essex'") as info:
        load_gazetteer("essex")
    assert info.value.hint is not None
    assert "kent" in info.value.hint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("districts: []\n", "expected top-level keys"),
        (
            "force: {name: X}\ndistricts:\n  - {name: A}\n  - {name: B, aliases: [A]}\n",
            "names both",
        ),
        ("force: {name: X}\ndistricts:\n  - {slug: a}\n", "needs a 'name'"),
        ("force: [unclosed\n", "invalid YAML"),
        ("force: {name: X}\ndistricts: 5\n", "must be a list"),
        ("force: {name: X, aliases: Kent}\ndistricts: []\n", "must be a list"),
        ("force: {name: X}\ndistricts:\n  - {name: A, towns: Chatham}\n", "must be lists"),
    ],
)
def test_bad_gazetteer_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GazetteerError, match=message):
        load_gazetteer(str(path))


def test_another_force_is_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "force: {slug: essex, name: Essex}\n"
        "districts:\n  - name: Southend-on-Sea\n    towns: [{name: Leigh-on-Sea}]\n    postcodes: [SS1]\n",
        encoding="utf-8",
    )
    tiny = load_gazetteer(str(path))
    assert tiny.resolve("SS1 1AA") == "southend-on-sea"
    assert evidence_areas(tiny, "a theft in Leigh-on-Sea") == {"leigh-on-sea"}


# -- alerts areas ------------------------------------------------------------------------


def test_areas_json_is_a_flat_array_of_nodes(run_cli: Callable[..., Result]) -> None:
    result = run_cli("areas", "--json")
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.output)
    assert isinstance(nodes, list)
    assert all({"slug", "name", "kind", "parent"} <= set(node) for node in nodes)
    roots = [node["slug"] for node in nodes if node["parent"] is None]
    assert roots == ["kent"]
    slugs = {node["slug"] for node in nodes}
    assert all(node["parent"] in slugs for node in nodes if node["parent"] is not None)
    assert {node["kind"] for node in nodes} == {"force", "district", "town", "village", "postcode"}
    by_slug = {node["slug"]: node for node in nodes}
    assert by_slug["medway"] == {
        **by_slug["medway"],
        "kind": "district",
        "parent": "kent",
        "name": "Medway",
    }
    assert by_slug["me4"]["parent"] == "medway"
    assert by_slug["me4"]["stands_for"] == "chatham"
    assert by_slug["chatham"]["parent"] == "medway"


def test_areas_text_is_an_indented_tree(run_cli: Callable[..., Result]) -> None:
    result = run_cli("areas")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Kent [kent]  (also: Kent and Medway, Kent & Medway, County of Kent)"
    assert "  Medway [medway]  (also: Medway Towns)" in lines
    assert "    Chatham [chatham]" in lines
    assert any(line.strip().startswith("postcodes: ME1 ME2 ME3 ME4") for line in lines)


def test_an_area_is_named_as_residents_know_it_and_an_unknown_slug_stays_as_it_is(
    gazetteer: Gazetteer,
) -> None:
    assert gazetteer.name_of("medway") == "Medway"
    assert gazetteer.name_of("tunbridge-wells") == "Tunbridge Wells"
    assert gazetteer.names_of(["chatham", "retired-area"]) == ["Chatham", "retired-area"]
