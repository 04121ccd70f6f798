"""Graph retrieval's query linking (names, embedded facts, embedded names) and its walk end to end:
hits carry the facts that support them, and a synonym edge carries a question across languages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval_corpus import EVERYONE, build_kb
from retrieval import GraphRetriever
from retrieval.graph import FACT_VECTORS
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.records import PUBLIC


def test_a_named_entity_is_linked_with_full_weight(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder, names_linked=0, facts_linked=0)
    assert retriever.link("Where is Acme Robotics headquartered?", retriever.graph()) == {"acme robotics": 1.0}


def test_the_closest_facts_link_their_ends_when_no_name_is_given(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder, names_linked=0)
    seeds = retriever.link("who is the founder of the robot maker", retriever.graph())
    assert {"acme robotics", "jane smith"} <= set(seeds)
    assert max(seeds, key=seeds.get) in {"acme robotics", "jane smith"}
    assert (small_kb.root / FACT_VECTORS).exists()  # fact sentences are embedded once and kept


def test_nothing_linked_means_no_hits(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder)
    assert retriever.link("xyzzy plugh", retriever.graph()) == {}
    assert retriever.retrieve("xyzzy plugh", 5, EVERYONE) == []


def test_hits_are_ranked_by_walk_mass_and_carry_the_facts_closest_to_the_question(small_kb, embedder):
    hits, facts = GraphRetriever(small_kb, embedder).retrieve_with_facts("Who founded Acme Robotics?", 3, EVERYONE)
    assert Path(hits[0].document.source).name == "handbook.md" and hits[0].chunk.position == 2
    assert (hits[0].facts[0].subject, hits[0].facts[0].relation) == ("Acme Robotics", "founded by")
    assert facts[0] == hits[0].facts[0]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


#: Shenzhen in an English document, 深圳 in a Chinese one: only a synonym edge joins the two.
CROSS_LANGUAGE = {
    "huawei.md": ((PUBLIC,), "en", [
        ("Huawei is headquartered in Shenzhen.", [("Huawei", "headquartered in", "Shenzhen")]),
    ]),
    "shenzhen-zh.md": ((PUBLIC,), "zh", [
        ("深圳位于广东省南部，毗邻香港。", [("深圳", "位于", "广东省")]),
    ]),
    "other.md": ((PUBLIC,), "en", [
        ("Beijing is the capital of China.", [("Beijing", "capital of", "China")]),
    ]),
}


@pytest.fixture(scope="module")
def multilingual_kb(tmp_path_factory):
    embedder = load_embedder("multilingual")
    root = build_kb(tmp_path_factory.mktemp("synonyms") / "kb", embedder, CROSS_LANGUAGE)
    with KnowledgeBase.open(root, embedder.name) as kb:
        yield kb, embedder


def test_the_multilingual_embedder_joins_shenzhen_and_its_chinese_name(multilingual_kb):
    kb, embedder = multilingual_kb
    retriever = GraphRetriever(kb, embedder)
    view = retriever.view(retriever.graph())
    pairs = {frozenset(view.pg.entities[int(i)] for i in pair[:2]) for pair in view.pg.synonym_pairs}
    assert frozenset({"shenzhen", "深圳"}) in pairs
    assert not any("beijing" in pair for pair in pairs)


def test_a_question_in_english_reaches_the_chinese_passage_through_the_synonym_edge(multilingual_kb):
    kb, embedder = multilingual_kb
    question = "Where is Shenzhen?"

    def sources(synonym_threshold: float) -> list[str]:
        retriever = GraphRetriever(kb, embedder, passage_share=0.0, facts_linked=0, names_linked=0,
                                   synonym_threshold=synonym_threshold, persist=False)
        return [Path(h.document.source).name for h in retriever.retrieve(question, 5, EVERYONE)]

    assert sources(0.8) == ["huawei.md", "shenzhen-zh.md"]
    assert sources(1.01) == ["huawei.md"]  # no synonym edge: the walk cannot cross


def test_vectors_of_names_and_facts_are_reused_across_instances(small_kb, embedder):
    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0
            self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens

        def count_tokens(self, texts):
            return self.inner.count_tokens(texts)

        def embed(self, texts):
            self.calls += len(texts) > 1
            return self.inner.embed(texts)

    GraphRetriever(small_kb, embedder).retrieve("Acme Robotics", 2, EVERYONE)
    counting = Counting(embedder)
    hits = GraphRetriever(small_kb, counting).retrieve("Acme Robotics", 2, EVERYONE)
    assert hits and counting.calls == 0
    assert np.isfinite([h.score for h in hits]).all()


def test_the_graphs_dense_seeds_reuse_the_vector_search_of_the_same_question(small_kb, embedder):
    from retrieval import VectorRetriever
    from retrieval_corpus import OUTSIDER

    dense = VectorRetriever(small_kb, embedder)
    vector = embedder.embed(["Who founded Acme Robotics?"])[0]
    ids, scores = dense.search(vector, 5, EVERYONE)
    calls = []
    real = dense._search
    dense._search = lambda *a: calls.append(a) or real(*a)
    assert dense.search(vector, 3, EVERYONE)[0].tolist() == ids[:3].tolist() and not calls  # a prefix: reused
    dense.search(vector, 8, EVERYONE)  # longer: searched again
    outsider = dense.search(vector, 5, OUTSIDER)[0]  # another user: searched for them
    assert len(calls) == 2 and set(outsider.tolist()) <= set(dense.search(vector, 8, EVERYONE)[0].tolist())


def test_ingest_embeds_the_graphs_names_and_facts_once(tmp_path, embedder):
    from retrieval.graph import ENTITY_VECTORS, embed_graph_texts

    root = build_kb(tmp_path / "kb", embedder)
    with KnowledgeBase.open(root, embedder.name) as kb:
        assert embed_graph_texts(kb, embedder) == 7  # the relations of retrieval_corpus
        assert (root / FACT_VECTORS).exists() and (root / ENTITY_VECTORS).exists()
