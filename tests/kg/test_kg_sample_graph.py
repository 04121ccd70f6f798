"""The graph of the bundled sample corpus: one node per name, and numbers stay attributes."""
from collections import Counter
from pathlib import Path

import pytest

from kg.graph import KnowledgeGraph, load_graph
from kg.resolve import canonical_key, is_literal, normalize
from zhiku.kb import KnowledgeBase


@pytest.fixture(scope="module")
def graph(sample_kb: Path, embedder) -> KnowledgeGraph:
    with KnowledgeBase.open(sample_kb, embedder.name) as kb:
        return load_graph(kb)


def _repeats(names):
    return sorted(name for name, n in Counter(names).items() if n > 1)


def test_no_two_nodes_share_a_normalised_name(graph):
    names = [data["name"] for _, data in graph.graph.nodes(data=True)]
    assert _repeats(map(normalize, names)) == []
    assert _repeats(map(canonical_key, names)) == []


def test_no_node_is_named_by_two_lines_or_a_doubled_name(graph):
    for _, data in graph.graph.nodes(data=True):
        words = normalize(data["name"]).split()
        half = len(words) // 2
        assert "\n" not in data["name"] and not (len(words) % 2 == 0 and words and words[:half] == words[half:])


def test_kestrel_robotics_is_one_node_in_the_neighbourhood_of_munich(graph):
    around = {graph.entity_key(name) for t in graph.neighbors("Munich") for name in (t.subject, t.object)}
    kestrel = [key for key in around if "kestrel robotics" in key]
    assert kestrel == [graph.require("Kestrel Robotics GmbH")]


def test_munich_has_no_number_as_a_neighbour_and_keeps_its_headcounts_as_attributes(graph):
    neighbours = {name for t in graph.neighbors("Munich") for name in (t.subject, t.object)}
    assert not [name for name in neighbours if is_literal(name)]
    values = {a.relation: a.object for a in graph.attributes("Munich")}
    assert values["Headcount 31 Dec 2025 (G&A)"] == "48"
    assert values["Open roles 1 Oct 2026 (G&A)"] == "0"


def test_label_fields_of_the_sample_corpus_reach_the_graph(graph):
    owners = {(t.subject, t.object) for t in graph.neighbors("Tomasz Nowak") if t.relation == "Owner"}
    assert ("IT Security Policy", "Tomasz Nowak") in owners
    assert "product owner" in {t.relation for t in graph.neighbors("K5 Lift")}
    assert ("Talon T7", "designed in", "Munich") in {(t.subject, t.relation, t.object) for t in graph.neighbors("Talon T7")}
    assert "7" in {a.object for a in graph.attributes("Talon T7") if a.relation == "payload kg"}
