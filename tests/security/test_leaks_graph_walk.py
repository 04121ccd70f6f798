"""Leak probes for graph-mode retrieval's walk: the passage graph a user's question walks holds only
nodes and edges of documents that user may read, so no restricted name, fact or passage comes out and
no relevance flows through them, including when a document was hidden after the graph was built."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from leak_probe import (
    FINANCE_ENTITY, FINANCE_MARKER, FINANCE_PERSON, FINANCE_USER, HR_MARKER, HR_USER, PUBLIC_USER, assert_no_marker,
)

import retrieval.graph
from kg.graph import load_graph
from retrieval.graph import GraphRetriever
from retrieval.passage_graph import HiddenWalk, PassageGraph, personalized_pagerank
from zhiku.kb import KnowledgeBase
from zhiku.records import PUBLIC, Chunk, Document, Triple, User

OUTSIDERS = [PUBLIC_USER, HR_USER]
PROBES = [
    f"Which company does Kestrel Robotics plan to acquire under the codename {FINANCE_MARKER}?",
    f"Who is the CFO of {FINANCE_ENTITY}?",
    f"Where is {FINANCE_ENTITY} headquartered?",
    f"{FINANCE_PERSON}",
    f"What does the {HR_MARKER} band L5 pay?",
    "Kestrel Robotics acquisition Rotterdam 240 million",
]


@pytest.fixture(scope="module")
def kb(leak_kb: Path, embedder):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        yield kb


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_the_walked_graph_holds_only_the_users_documents(kb, embedder, user):
    retriever = GraphRetriever(kb, embedder, persist=False)
    pg = retriever.view(retriever.graph().for_user(user)).pg
    readable = {d.id for d in kb.documents(user)}
    assert set(pg.chunk_docs.tolist()) <= readable and set(pg.fact_docs.tolist()) <= readable
    assert_no_marker([pg.entities, pg.names, pg.fact_relations, pg.fact_objects], user)


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_graph_mode_never_returns_a_restricted_passage_name_or_fact(kb, embedder, user):
    retriever = GraphRetriever(kb, embedder, persist=False)
    readable = {d.id for d in kb.documents(user)}
    for question in PROBES:
        hits, facts = retriever.retrieve_with_facts(question, 10, user)
        assert {h.document.id for h in hits} <= readable, question
        seeds = retriever.link(question, retriever.graph().for_user(user))
        assert_no_marker([facts, [(h.chunk.text, h.facts) for h in hits], seeds], user)


def test_the_finance_user_is_walked_to_the_finance_passage(kb, embedder):
    hits = GraphRetriever(kb, embedder, persist=False).retrieve(f"Who is the CFO of {FINANCE_ENTITY}?", 3, FINANCE_USER)
    assert FINANCE_PERSON in hits[0].chunk.text


def test_a_document_hidden_after_the_graph_was_built_is_cut_out_before_the_walk(tmp_path, embedder, monkeypatch):
    """The graph lags the catalog (built while the deal memo was public): the walk still never enters it."""
    texts = {
        "/docs/public.md": ("Kestrel Robotics is headquartered in Munich.",
                            [("Kestrel Robotics", "headquartered in", "Munich")]),
        "/docs/deal.md": (f"Kestrel Robotics acquires {FINANCE_ENTITY}; {FINANCE_PERSON} is its CFO.",
                          [("Kestrel Robotics", "acquires", FINANCE_ENTITY),
                           (FINANCE_PERSON, "CFO of", FINANCE_ENTITY)]),
    }
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        for source, (text, triples) in texts.items():
            kb.put_document(Document(source=source, content_hash=source, title=Path(source).stem, groups=(PUBLIC,)),
                            [Chunk(text=text, position=0, n_tokens=12)], embedder.embed([text]),
                            [[Triple(s, r, o) for s, r, o in triples]])
        stale = load_graph(kb)
        assert kb.set_groups("/docs/deal.md", ["finance"])
        monkeypatch.setattr(retrieval.graph, "load_graph", lambda kb, current=None: stale)
        retriever = GraphRetriever(kb, embedder, persist=False)
        reader = User("pat", ("eng",))
        for question in (f"Who is the CFO of {FINANCE_ENTITY}?", "What does Kestrel Robotics acquire?"):
            hits, facts = retriever.retrieve_with_facts(question, 5, reader)
            assert [Path(h.document.source).name for h in hits] in ([], ["public.md"])
            assert_no_marker([facts, [(h.chunk.text, h.facts) for h in hits]], reader)
        deal = next(d.id for d in kb.documents() if d.source == "/docs/deal.md")
        pg = retriever.view(stale.for_user(reader)).pg
        walk = HiddenWalk.of(pg, retriever.catalog.document_mask(reader))
        assert deal in pg.chunk_docs
        reset = np.zeros(pg.n_nodes)
        reset[pg.entities.index("kestrel robotics")] = 1.0
        rank = personalized_pagerank(walk, reset, 0.3, epsilon=0)
        assert rank[pg.entities.index(FINANCE_ENTITY.lower())] == 0
        assert rank[pg.chunk_nodes(np.array([c.id for c in kb.chunks_of(deal)]))].sum() == 0


def test_searches_with_documents_hidden_keep_no_copy_of_the_passage_graph(tmp_path, embedder, monkeypatch):
    """Each set of visible documents used to keep a restricted passage graph (at 1M chunks, gigabytes
    each); the walk around hidden documents now runs on the view's own graph, so the passage graphs
    alive after many users' searches are the views' own, one per user graph."""
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        for i, (head, tail) in enumerate([("Kestrel Robotics", "Munich"), ("Kestrel Robotics", FINANCE_ENTITY),
                                          (FINANCE_PERSON, FINANCE_ENTITY), ("Kestrel Robotics", "Rotterdam")]):
            text = f"{head} works with {tail}."
            kb.put_document(Document(source=f"/docs/{i}.md", content_hash=str(i), title=str(i), groups=(PUBLIC,)),
                            [Chunk(text=text, position=0, n_tokens=6)], embedder.embed([text]),
                            [[Triple(head, "works with", tail)]])
        stale = load_graph(kb)
        for i, group in enumerate(["finance", "hr", "board"]):
            assert kb.set_groups(f"/docs/{i + 1}.md", [group])
        monkeypatch.setattr(retrieval.graph, "load_graph", lambda kb, current=None: stale)
        retriever = GraphRetriever(kb, embedder, persist=False)
        readers = [User(f"u{i}", groups) for i, groups in enumerate([(), ("finance",), ("hr",), ("board", "hr")])]
        for reader in readers:
            assert retriever.retrieve("Who works with Kestrel Robotics?", 3, reader)
        gc.collect()
        alive = [o for o in gc.get_objects() if type(o) is PassageGraph]
        assert sorted(map(id, alive)) == sorted(id(view.pg) for view in retriever._views.values())
