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
from alerts.types import AreaKind
from tests.conftest import NOW, SAMPLE

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


def test_every_district_has_towns_and_postcode_districts(gazetteer: Gazetteer) -> None:
    for district in KENT_DISTRICTS:
        kinds = {gazetteer.node(child).kind for child in gazetteer.descendants(district)}
        assert kinds == {AreaKind.TOWN, AreaKind.POSTCODE}, district


@pytest.mark.parametrize("code", [f"ME{n}" for n in range(1, 21)] + [f"CT{n}" for n in range(1, 22)])
def test_every_me_and_ct_postcode_district_maps_to_a_kent_district(gazetteer: Gazetteer, code: str) -> None:
    assert gazetteer.resolve(code) in KENT_DISTRICTS


def test_feed_areas_are_every_node_but_postcodes(gazetteer: Gazetteer) -> None:
    feed = gazetteer.feed_areas()
    assert feed[0].slug == "kent"
    assert {n.kind for n in feed} == {AreaKind.FORCE, AreaKind.DISTRICT, AreaKind.TOWN}
    assert len(feed) == len([n for n in gazetteer if n.kind is not AreaKind.POSTCODE])


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("ME4", "medway"),
        ("ME4 4TR", "medway"),
        ("me4 4tr", "medway"),
        ("ME44TR", "medway"),
        ("me144ab", "maidstone"),
        ("ME14TR", "medway"),  # ME1 4TR: the inward code is a digit and two letters
        (" ME4  ", "medway"),
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
def test_resolve_accepts_slugs_names_aliases_and_postcodes(gazetteer: Gazetteer, text: str, slug: str) -> None:
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
def test_tagging_ignores_substrings_common_words_and_institutions(gazetteer: Gazetteer, text: str) -> None:
    assert gazetteer.tag_text(text) == set()


@pytest.mark.parametrize(
    ("text", "slugs"),
    [
        ("a burglary in Deal", {"deal"}),
        ("a shop near Sandwich", {"sandwich"}),
        ("Officers IN DEAL", {"deal"}),
        ("a flat in Deal close to the sea", {"deal"}),
        ("a shop in Beach Street, Deal, was raided", {"deal"}),
        ("a car stolen in Hoo St Werburgh", {"hoo"}),
        ("across the Hoo Peninsula", {"hoo"}),
        ("in Royal Tunbridge Wells", {"tunbridge-wells"}),
        ("on the Isle of Sheppey", {"isle-of-sheppey"}),
        ("walkers in Wye", {"wye"}),
        ("Chatham and Gillingham", {"chatham", "gillingham"}),
        ("in Kent", {"kent"}),
        ("a Medway man", {"medway"}),
        ("Dover Road, Folkestone", {"folkestone"}),
        ("a Kent resident, not Kent Police", {"kent"}),
        ("call from ME4 4TR", {"medway"}),
        ("postcode CT14 area", {"dover"}),
        ("Herne  Bay", {"herne-bay"}),
    ],
)
def test_tagging_finds_places(gazetteer: Gazetteer, text: str, slugs: set[str]) -> None:
    assert gazetteer.tag_text(text) == slugs


def test_sample_is_tagged_kent_and_medway_and_concerns_medway(gazetteer: Gazetteer) -> None:
    tags = parse_advisory_file(SAMPLE, gazetteer, now=NOW).advisory.areas
    assert tags == {"kent", "medway"}
    assert gazetteer.most_specific(tags) == {"medway"}


@pytest.mark.parametrize(
    ("tags", "specific"),
    [
        ({"kent"}, {"kent"}),
        ({"kent", "medway"}, {"medway"}),
        ({"kent", "medway", "chatham"}, {"chatham"}),
        ({"chatham", "dover"}, {"chatham", "dover"}),
        ({"me4"}, {"medway"}),
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
        (["gillingham"], ["chatham"], False),
        (["kent"], ["deal"], True),
        (["dover", "chatham"], ["medway"], True),
        ([], ["kent"], False),
    ],
)
def test_matching_rule(gazetteer: Gazetteer, subscription: list[str], advisory: list[str], wanted: bool) -> None:
    assert gazetteer.wants(subscription, advisory) is wanted


def test_matching_areas_is_the_same_rule_as_wants(gazetteer: Gazetteer) -> None:
    slugs = [n.slug for n in gazetteer]
    for subscribed in slugs[::3]:
        matching = gazetteer.matching_areas([subscribed])
        for concerned in slugs:
            wanted = gazetteer.wants([subscribed], [concerned])
            assert wanted is (gazetteer.canonical(concerned) in matching), (subscribed, concerned)


def test_postcode_subscription_behaves_as_its_district(gazetteer: Gazetteer) -> None:
    assert gazetteer.matching_areas(["me4"]) == gazetteer.matching_areas(["medway"])


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
        ("force: {name: X}\ndistricts:\n  - {name: A}\n  - {name: B, aliases: [A]}\n", "names both"),
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
    assert tiny.tag_text("a theft in Leigh-on-Sea") == {"leigh-on-sea"}


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
    assert {node["kind"] for node in nodes} == {"force", "district", "town", "postcode"}
    by_slug = {node["slug"]: node for node in nodes}
    assert by_slug["medway"] == {**by_slug["medway"], "kind": "district", "parent": "kent", "name": "Medway"}
    assert by_slug["me4"]["parent"] == "medway"
    assert by_slug["chatham"]["parent"] == "medway"


def test_areas_text_is_an_indented_tree(run_cli: Callable[..., Result]) -> None:
    result = run_cli("areas")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Kent [kent]  (also: Kent and Medway, Kent & Medway)"
    assert "  Medway [medway]  (also: Medway Towns)" in lines
    assert "    Chatham [chatham]" in lines
    assert any(line.strip().startswith("postcodes: ME1 ME2 ME3 ME4") for line in lines)


def test_an_area_is_named_as_residents_know_it_and_an_unknown_slug_stays_as_it_is(gazetteer: Gazetteer) -> None:
    assert gazetteer.name_of("medway") == "Medway"
    assert gazetteer.name_of("tunbridge-wells") == "Tunbridge Wells"
    assert gazetteer.names_of(["chatham", "retired-area"]) == ["Chatham", "retired-area"]
