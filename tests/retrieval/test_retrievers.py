"""Each retriever finds the obvious passage in a small real knowledge base, and behaves on bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval_corpus import EVERYONE, build_kb
from retrieval import (
    MODES, FusedRetriever, GraphRetriever, KeywordRetriever, QueryError, Tokenizer, VectorRetriever,
    as_llama_index, build_retriever, check_query,
)
from retrieval.keyword import INDEX_FILE
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Document, User
from zhiku.settings import Settings, SettingsError

SINGLE = [
    ("vector", lambda kb, e: VectorRetriever(kb, e)),
    ("keyword", lambda kb, e: KeywordRetriever(kb)),
    ("graph", lambda kb, e: GraphRetriever(kb, e)),
]


def top(hits) -> tuple[str, int]:
    return Path(hits[0].document.source).name, hits[0].chunk.position


@pytest.mark.parametrize("name,make", SINGLE, ids=[s[0] for s in SINGLE])
def test_each_retriever_finds_the_founding_passage(small_kb, embedder, name, make):
    hits = make(small_kb, embedder).retrieve("Who founded Acme Robotics?", 3, EVERYONE)
    assert top(hits) == ("handbook.md", 2)
    assert hits[0].found_by == {name: 1}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(hits) <= 3


def test_vector_finds_a_paraphrase(small_kb, embedder):
    hits = VectorRetriever(small_kb, embedder).retrieve("How much paid time off do staff get?", 2, EVERYONE)
    assert top(hits) == ("handbook.md", 0)
    assert 0 < hits[0].score <= 1.0001  # cosine similarity


def test_keyword_finds_a_chinese_passage(small_kb):
    hits = KeywordRetriever(small_kb).retrieve("年假可以顺延吗", 2, EVERYONE)
    assert top(hits) == ("zh-handbook.md", 0)


def test_keyword_matches_stems_not_only_exact_words(small_kb):
    hits = KeywordRetriever(small_kb).retrieve("register visitor badges", 1, EVERYONE)
    assert top(hits) == ("handbook.md", 1)


def test_tokenizer_handles_english_chinese_and_mixed_text():
    tokenize = Tokenizer()
    assert tokenize("The Policies of the company") == ["polici", "compani"]
    assert tokenize("员工年假政策 for Employees") == ["员工", "年", "假", "政策", "employe"]
    assert tokenize("Acme Robotics在上海设立研发中心") == ["acm", "robot", "上海", "设立", "研发", "中心"]
    assert "的" not in tokenize("公司的年假")  # Chinese stop word
    assert tokenize("  ,.!? ") == []


def test_graph_hits_carry_their_supporting_facts(small_kb, embedder):
    hits = GraphRetriever(small_kb, embedder).retrieve("Where is Acme Robotics headquartered?", 2, EVERYONE)
    facts = {(f.subject, f.relation, f.object) for f in hits[0].facts}
    assert ("Acme Robotics", "headquartered in", "Berlin") in facts
    assert all(f.chunk_id == hits[0].chunk.id for f in hits[0].facts)


def test_graph_ranks_the_relation_the_question_asks_about_first(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder)
    sees_both = User("hana", ("hr",))
    for question, expected in (("Which project is led by Jane Smith?", ("salaries.md", 0)),
                               ("What company was founded by Jane Smith?", ("handbook.md", 2))):
        hits = retriever.retrieve(question, 2, sees_both)
        assert top(hits) == expected and hits[0].score > hits[1].score


def test_graph_links_entities_by_embedding_when_the_name_is_not_exact(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder)
    seeds = retriever.link("Acme robot company", retriever.graph())
    assert any("acme" in key for key in seeds)


def test_hybrid_fuses_all_three_and_says_who_found_what(small_kb, embedder, tmp_path):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), "hybrid")
    assert isinstance(retriever, FusedRetriever)
    hits = retriever.retrieve("Who founded Acme Robotics?", 3, EVERYONE)
    assert top(hits) == ("handbook.md", 2)
    assert set(hits[0].found_by) == {"vector", "keyword", "graph"}
    assert hits[0].facts


@pytest.mark.parametrize("mode", [m for m in MODES if m != "hybrid+rerank"])
def test_every_mode_returns_nothing_for_an_empty_query_or_k(small_kb, embedder, tmp_path, mode):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), mode)
    assert retriever.retrieve("   ", 5, EVERYONE) == []
    assert retriever.retrieve("vacation", 0, EVERYONE) == []
    if mode in ("keyword", "graph"):  # nothing to match: no words known to the index, or only stop words
        assert retriever.retrieve("xyzzy plugh", 5, EVERYONE) == []
        assert retriever.retrieve("the of and", 5, EVERYONE) == []


@pytest.mark.parametrize("mode", [m for m in MODES if m != "hybrid+rerank"])
def test_an_empty_knowledge_base_gives_empty_lists(tmp_path, embedder, mode):
    with KnowledgeBase.open(tmp_path / "empty", embedder.name, embedder.dimension) as kb:
        assert build_retriever(kb, embedder, Settings(kb=tmp_path), mode).retrieve("vacation", 5, EVERYONE) == []


def test_unknown_modes_and_a_missing_reranker_are_explained(small_kb, embedder, tmp_path):
    with pytest.raises(SettingsError, match="vector, keyword, graph, hybrid, hybrid\\+rerank"):
        build_retriever(small_kb, embedder, Settings(kb=tmp_path), "semantic")
    with pytest.raises(SettingsError, match="ZHIKU_RERANKER"):
        build_retriever(small_kb, embedder, Settings(kb=tmp_path), "hybrid+rerank")


def test_questions_are_checked():
    assert check_query("  vacation? ") == "vacation?"
    with pytest.raises(QueryError, match="empty"):
        check_query(" \n")
    with pytest.raises(QueryError, match="characters"):
        check_query("x" * 10_000)


def test_bm25_index_is_saved_reused_and_rebuilt_when_the_corpus_changes(tmp_path, embedder):
    root = build_kb(tmp_path / "kb", embedder)
    with KnowledgeBase.open(root, embedder.name) as kb:
        first = KeywordRetriever(kb)
        assert first.retrieve("vacation", 1, EVERYONE)
        saved = (root / INDEX_FILE).stat().st_mtime_ns
        second = KeywordRetriever(kb)
        assert second.index().signature == first.index().signature
        assert (root / INDEX_FILE).stat().st_mtime_ns == saved  # loaded, not rebuilt
        kb.query("SELECT 1")  # an unrelated read changes nothing
        text = "Parking permits are issued by the facilities desk."
        kb.put_document(Document(source="/corpus/parking.md", content_hash="p"),
                        [Chunk(text=text, position=0, n_tokens=8)], embedder.embed([text]))
        assert top(first.retrieve("parking permits", 1, EVERYONE)) == ("parking.md", 0)


def test_llama_index_adapter_returns_nodes_with_scores(small_kb, embedder):
    from llama_index.core.schema import NodeWithScore

    adapter = as_llama_index(VectorRetriever(small_kb, embedder), EVERYONE, k=2)
    nodes = adapter.retrieve("How many vacation days do employees get?")
    assert len(nodes) == 2 and all(isinstance(n, NodeWithScore) for n in nodes)
    assert nodes[0].node.metadata == {"source": "/corpus/handbook.md", "page": 1, "section": "Intro"}
    assert "25 days" in nodes[0].node.get_content()
    assert int(nodes[0].node.node_id) > 0


def test_vector_search_matches_raw_faiss(small_kb, embedder):
    query = embedder.embed(["badge at reception"])
    scores, ids = small_kb.vector_index().search(query, 3)
    hits = VectorRetriever(small_kb, embedder).retrieve("badge at reception", 3, EVERYONE)
    assert [h.chunk.id for h in hits] == ids[0].tolist()
    assert np.allclose([h.score for h in hits], scores[0], atol=1e-5)
