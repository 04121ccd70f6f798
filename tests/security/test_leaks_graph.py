"""Leak probes for the knowledge graph: every name, alias, type, count and relation a user gets from
the graph (queries, stats, export, graph retrieval's facts, the Graph explorer, ``zhiku graph``)
comes from the documents that user may read; what only the finance document says never shows."""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from leak_probe import FINANCE_ENTITY, FINANCE_PERSON, FINANCE_USER, HR_USER, PUBLIC_USER, assert_no_marker

from kg.graph import KnowledgeGraph, UnknownEntityError, load_graph
from retrieval.graph import GraphRetriever
from ui.views.graph import find_entities, neighbourhood_dot
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import PUBLIC, Chunk, Document, Triple, User

OUTSIDERS = [PUBLIC_USER, HR_USER]
FINANCE_NAMES = (FINANCE_ENTITY, FINANCE_PERSON)


@pytest.fixture(scope="module")
def kb(leak_kb: Path, embedder):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        yield kb


@pytest.fixture(scope="module")
def graph(kb: KnowledgeBase) -> KnowledgeGraph:
    return load_graph(kb)


def sees_finance(output: object) -> bool:
    return all(name.lower() in str(output).lower() for name in FINANCE_NAMES)


def everything_about_entities(graph: KnowledgeGraph, user: User) -> str:
    """Every entity of ``user``'s graph as the API gives it: key, name, aliases, type, counts, rank."""
    entities = [(graph.entity(k, user), degree) for k, degree in graph.top_entities(10_000, user=user)]
    return str([entities, graph.names(user), graph.top_entities(10_000, "pagerank", user)])


# ------------------------------------------------------------------ the library
@pytest.mark.parametrize("user", [PUBLIC_USER, HR_USER, FINANCE_USER], ids=lambda u: u.name)
def test_a_users_graph_is_exactly_the_graph_of_the_documents_they_may_read(graph, kb, user):
    readable = {d.id: d.groups for d in kb.documents(user)}
    own = KnowledgeGraph.from_triples([t for t in kb.triples() if t.doc_id in readable], readable)
    assert nx.utils.graphs_equal(graph.for_user(user).graph, own.graph)
    assert graph.for_user(user).forms == own.forms


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_entities_listed_searched_or_linked_never_name_a_finance_entity(graph, user):
    assert_no_marker(everything_about_entities(graph, user), user)
    for name in (*FINANCE_NAMES, "Rotterdam"):
        assert graph.entity_key(name, user) is None
        with pytest.raises(UnknownEntityError, match="no entity named .* in the knowledge graph$"):
            graph.require(name, user)
    assert graph.link(f"Did Kestrel Robotics buy {FINANCE_ENTITY} from {FINANCE_PERSON}?", user) == ["kestrel robotics"]
    assert graph.entities_of(next(d for d, g in graph.doc_groups.items() if g == ("finance",)), user) == []


def test_the_finance_user_does_see_the_finance_entities(graph):
    assert sees_finance(everything_about_entities(graph, FINANCE_USER))
    assert graph.link(f"Who leads {FINANCE_ENTITY}?", FINANCE_USER) == [graph.require(FINANCE_ENTITY, FINANCE_USER)]


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_neighbours_and_paths_of_kestrel_robotics_stay_inside_what_the_user_may_read(graph, user):
    facts = graph.neighbors("Kestrel Robotics", hops=3, user=user)
    assert facts and all(t.doc_id in graph.for_user(user).doc_groups for t in facts)
    assert_no_marker(facts, user)
    for key in graph.for_user(user).graph:
        assert_no_marker(graph.path("Kestrel Robotics", key, user), user)
    with pytest.raises(UnknownEntityError):
        graph.path("Kestrel Robotics", FINANCE_PERSON, user)
    kestrel = graph.entity(graph.require("Kestrel Robotics", user), user)
    assert kestrel.doc_ids == {t.doc_id for t in facts if "Kestrel Robotics" in (t.subject, t.object)}
    assert_no_marker(graph.subgraph(["Kestrel Robotics"], hops=3, user=user).nodes(data=True), user)


def test_the_finance_user_reaches_the_finance_entities_through_kestrel_robotics(graph):
    assert sees_finance(graph.neighbors("Kestrel Robotics", hops=2, user=FINANCE_USER))
    assert FINANCE_PERSON in str(graph.path("Anna Weber", FINANCE_PERSON, FINANCE_USER))
    public = graph.entity(graph.require("Kestrel Robotics", PUBLIC_USER), PUBLIC_USER)
    finance = graph.entity(graph.require("Kestrel Robotics", FINANCE_USER), FINANCE_USER)
    assert public.mentions < finance.mentions  # counts come from visible triples only


def test_stats_count_only_what_each_user_may_read(graph):
    public, finance, everything = graph.stats(PUBLIC_USER), graph.stats(FINANCE_USER), graph.stats()
    assert_no_marker(public, PUBLIC_USER)
    assert public["relations"] < finance["relations"] < everything["relations"]
    assert public["entities"] < finance["entities"] < everything["entities"]
    assert public["documents"] == 1 and finance["documents"] == 2


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_an_export_written_for_a_user_holds_only_their_graph(graph, tmp_path, suffix):
    graph.export(tmp_path / f"public{suffix}", user=PUBLIC_USER)
    graph.export(tmp_path / f"finance{suffix}", user=FINANCE_USER)
    assert_no_marker((tmp_path / f"public{suffix}").read_text(encoding="utf-8"), PUBLIC_USER)
    assert sees_finance((tmp_path / f"finance{suffix}").read_text(encoding="utf-8"))


def test_graph_retrieval_facts_and_hits_never_carry_a_finance_name(kb, embedder, graph):
    retriever = GraphRetriever(kb, embedder, graph=graph)
    question = f"Which company does Kestrel Robotics plan to acquire, and is {FINANCE_PERSON} its CFO?"
    hits, facts = retriever.retrieve_with_facts(question, 5, PUBLIC_USER)
    assert facts
    assert_no_marker([facts, [(h.chunk.text, h.facts) for h in hits]], PUBLIC_USER)
    hits, facts = retriever.retrieve_with_facts(question, 5, FINANCE_USER)
    assert sees_finance(facts) and sees_finance([h.facts for h in hits])


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_the_graph_explorer_finds_and_draws_only_the_users_entities(graph, user):
    view = graph.for_user(user)
    keys = find_entities(graph, "", user)
    assert_no_marker([(k, view.graph.nodes[k]) for k in keys], user)
    assert find_entities(graph, "vantorix", user) == [] and find_entities(graph, "merrowind", user) == []
    assert_no_marker(neighbourhood_dot("Kestrel Robotics", graph.neighbors("Kestrel Robotics", 2, user)), user)
    assert find_entities(graph, "vantorix", FINANCE_USER)
    assert sees_finance(neighbourhood_dot("Kestrel Robotics", graph.neighbors("Kestrel Robotics", 2, FINANCE_USER)))


# ----------------------------------------------------------------------- the CLI
def cli(capsys, leak_kb: Path, tmp_path: Path, *who: str) -> str:
    out = tmp_path / "export.graphml"
    texts = []
    for argv in (["entities"], ["stats"], ["neighbors", "Kestrel Robotics", "--hops", "2"], ["export", str(out)]):
        assert main(["graph", *argv, "--kb", str(leak_kb), "--json", *who]) == 0
        texts.append(capsys.readouterr().out)
    return "\n".join(texts) + out.read_text(encoding="utf-8")


def test_zhiku_graph_with_groups_prints_only_what_those_groups_may_read(leak_kb, capsys, tmp_path, graph):
    assert_no_marker(cli(capsys, leak_kb, tmp_path, "--groups", "eng"), PUBLIC_USER)
    assert sees_finance(cli(capsys, leak_kb, tmp_path, "--groups", "finance"))
    for name in FINANCE_NAMES:
        assert main(["graph", "neighbors", name, "--kb", str(leak_kb), "--groups", "eng"]) == 1
        assert f"no entity named {name!r}" in capsys.readouterr().err


# ------------------------------------------------- a restricted alias of a public name
@pytest.fixture
def alias_kb(tmp_path: Path):
    """Kestrel Robotics, as a public document names it, and as the finance one does (codename Bluejay)."""
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 8) as kb:
        for source, groups, triples in (
            ("/docs/public.md", (PUBLIC,), [("Kestrel Robotics", "headquartered in", "Munich", "ORG", "GPE")]),
            ("/docs/deal.md", ("finance",), [
                ("Kestrel Robotics", "also known as", "Bluejay", "ORG", "PROJECT"),
                ("Bluejay", "acquires", FINANCE_ENTITY, "PROJECT", "ORG"),
                ("Bluejay", "values", FINANCE_ENTITY, "PROJECT", "ORG"),
                (FINANCE_PERSON, "CFO of", FINANCE_ENTITY, "PERSON", "ORG"),
            ]),
        ):
            kb.put_document(
                Document(source=source, content_hash=source, title=Path(source).stem, groups=groups),
                [Chunk(text=" ".join(t[0] for t in triples), position=0, n_tokens=10)], np.zeros((1, 8), np.float32),
                [[Triple(s, r, o, subject_type=st, object_type=ot) for s, r, o, st, ot in triples]],
            )
        yield kb


def test_a_codename_alias_only_the_finance_document_gives_never_reaches_an_outsider(alias_kb, tmp_path, capsys):
    graph = load_graph(alias_kb)
    graph.export(tmp_path / "public.json", user=PUBLIC_USER)
    shown = [graph.neighbors("Kestrel Robotics", 3, PUBLIC_USER), find_entities(graph, "", PUBLIC_USER),
             graph.names(PUBLIC_USER), graph.top_entities(10, user=PUBLIC_USER),
             (tmp_path / "public.json").read_text(encoding="utf-8")]
    assert "bluejay" not in str(shown).lower()
    assert graph.entity_key("Bluejay", PUBLIC_USER) is None and graph.link("Is Bluejay real?", PUBLIC_USER) == []
    key = graph.require("Kestrel Robotics", PUBLIC_USER)
    kestrel = graph.entity(key, PUBLIC_USER)
    assert (key, kestrel.name, kestrel.aliases, kestrel.type) == ("kestrel robotics", "Kestrel Robotics",
                                                                  {"Kestrel Robotics"}, "ORG")
    shown = [everything_about_entities(graph, PUBLIC_USER), cli(capsys, alias_kb.root, tmp_path, "--groups", "eng")]
    assert "bluejay" not in str(shown).lower()
    assert_no_marker(shown, PUBLIC_USER)
    assert graph.entity(graph.require("Kestrel Robotics")).name == "Bluejay"  # the whole corpus's name
    assert "Bluejay" in graph.entity(graph.require("Kestrel Robotics", FINANCE_USER), FINANCE_USER).aliases
