"""Literal values are attributes of their entity: never nodes, always with the passage they came from."""
import json

import networkx as nx
import pytest

from kg.graph import GRAPH_FILE, KnowledgeGraph, load_graph
from kg.resolve import is_attribute, is_description, is_literal, resolve
from zhiku.records import Triple, User

MUNICH_FACTS = [
    [("Munich", "Department", "G&A"), ("Munich", "Headcount 31 Dec 2025 (G&A)", "48"),
     ("Munich", "Open roles 1 Oct 2026 (G&A)", "0")],
    [("Anna Weber", "Office", "Munich"), ("Munich", "Opened", "15 March 2017")],
]
SECRET_FACTS = [[("Munich", "Budget 2027", "EUR 4.2 million")]]


@pytest.mark.parametrize("value", [
    "48", "0", "EUR 21.4 million", "+31%", "31 Dec 2025", "15 January 2027", "2026-10-15", "Q3", "Q3 2027",
    "$2.1M", "2 h 47 min", "version 4.1", "Up to 2,000 EUR", "Tuesday 27 October, 10:00 CET", "1,000 kg",
    "人民币5,200万元", "12件", "74%", "2026年10月8日", "每小时48托",
])
def test_numbers_amounts_percentages_and_dates_are_literals(value):
    assert is_literal(value)


@pytest.mark.parametrize("name", [
    "Munich", "Li Na", "K5 Lift", "Nest 4.2", "40 K2 Courier robots", "ISO 3691-4", "Suite 1500", "KR-K5-LIFT",
    "Leopoldstrasse 210", "5G网络", "红隼机器人", "",
])
def test_names_even_with_digits_are_not_literals(name):
    assert not is_literal(name)


def test_the_extractor_type_decides_when_it_is_a_value_type():
    assert is_literal("last year", "DATE") and is_literal("a third", "CARDINAL")
    assert not is_literal("Berlin", "GPE")


def test_descriptions_are_attributes_too_but_addresses_and_names_are_not():
    assert is_description("Based on a 5-day week; part-time pro rata.")
    assert is_description("Management, product management, Nest cloud, sales EMEA, customer support, Test Hall B")
    assert not is_description("Leopoldstraße 210, 80807 München, Germany")
    assert not is_description("St. Louis") and not is_description("Nest 4.2")


def test_an_alias_is_never_an_attribute():
    assert not is_attribute(Triple("Kestrel Robotics", "also known as", "KR 2"))
    assert is_attribute(Triple("Munich", "Headcount", "48"))


def test_literal_objects_are_not_resolved_into_entities():
    resolution = resolve([Triple("Munich", "Headcount", "48"), Triple("Anna Weber", "Office", "Munich")])
    assert set(resolution.entities) == {"munich", "anna weber"}
    assert resolution.entities["munich"].mentions == 2


@pytest.fixture
def kb(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/headcount.md", MUNICH_FACTS)
    put(kb, "/docs/budget.md", SECRET_FACTS, groups=("finance",))
    return kb


def test_literals_make_no_nodes_and_no_edges(kb):
    g = load_graph(kb)
    assert set(g.graph.nodes) == {"munich", "g a", "anna weber"}
    assert [d["relation"] for _, _, d in g.graph.edges(data=True)] == ["Department", "Office"]
    assert {t.object for t in g.neighbors("Munich")} == {"G&A", "Munich"}


def test_attributes_stay_with_their_entity_in_source_order_with_provenance(kb):
    g = load_graph(kb)
    values = g.attributes("Munich")
    assert [(a.subject, a.relation, a.object) for a in values] == [
        ("Munich", "Headcount 31 Dec 2025 (G&A)", "48"), ("Munich", "Open roles 1 Oct 2026 (G&A)", "0"),
        ("Munich", "Opened", "15 March 2017"), ("Munich", "Budget 2027", "EUR 4.2 million")]
    chunks = {c.id: c for d in (1, 2) for c in kb.chunks_of(d)}
    assert all(a.chunk_id in chunks and chunks[a.chunk_id].doc_id == a.doc_id for a in values)
    assert g.graph.nodes["munich"]["attributes"] == tuple(values)
    assert g.stats()["attributes"] == 4


def test_attributes_come_only_from_the_documents_a_user_may_read(kb):
    g = load_graph(kb)
    outsider, finance = User("pat", ("eng",)), User("finn", ("finance",))
    assert "EUR 4.2 million" not in {a.object for a in g.attributes("Munich", outsider)}
    assert "EUR 4.2 million" in {a.object for a in g.attributes("Munich", finance)}
    assert all(a.doc_id == 1 for a in g.attributes("Munich", outsider))


def test_an_entity_known_only_by_its_attributes_is_a_node_without_edges(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/k5.md", [[("K5 Lift", "Rated payload", "1,000 kg")]])
    g = load_graph(kb)
    assert list(g.graph.nodes) == ["k5 lift"] and g.graph.number_of_edges() == 0
    assert [a.object for a in g.attributes("K5 Lift")] == ["1,000 kg"]


def test_attributes_survive_saving_and_loading(kb):
    built = load_graph(kb)
    saved = json.loads((kb.root / GRAPH_FILE).read_text())
    assert len(saved["attribute"]["data"]) > 0
    loaded = KnowledgeGraph.read(kb.root / GRAPH_FILE, built.epoch)
    assert nx.utils.graphs_equal(loaded.graph, built.graph)
    assert loaded.attributes("Munich") == built.attributes("Munich")


def test_an_export_lists_attributes_with_their_entity(kb, tmp_path):
    load_graph(kb).export(tmp_path / "g.json")
    nodes = {n["id"]: n for n in json.loads((tmp_path / "g.json").read_text())["nodes"]}
    assert "Headcount 31 Dec 2025 (G&A): 48" in nodes["munich"]["attributes"]
