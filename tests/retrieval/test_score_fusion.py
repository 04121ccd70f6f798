"""Score fusion on hand-made rankings (exact values): min-max scores, the missing-retriever floor,
weights as a convex combination, ties, and the found_by / facts unions."""
from __future__ import annotations

import pytest

from retrieval_corpus import EVERYONE
from retrieval import FusedRetriever, fuse, reciprocal_rank_fusion, score_fusion
from retrieval.fusion import min_max
from zhiku.records import Chunk, Document, Hit, Triple, User

DOC = Document(source="/d.md", content_hash="h", id=1)


def scored(name: str, pairs: list[tuple[int, float]], facts: dict[int, list[Triple]] | None = None) -> list[Hit]:
    """A retriever's hits: (chunk id, raw score) best first."""
    return [
        Hit(Chunk(text=f"passage {cid}", position=cid, n_tokens=2, doc_id=1, id=cid), DOC, score=score,
            found_by={name: rank}, facts=list((facts or {}).get(cid, [])))
        for rank, (cid, score) in enumerate(pairs, start=1)
    ]


def scores(hits: list[Hit]) -> dict[int, float]:
    return {h.chunk.id: h.score for h in hits}


def test_min_max_maps_each_list_onto_zero_to_one():
    assert min_max([3.0, 2.0, 1.0]) == [1.0, 0.5, 0.0]
    assert min_max([0.7]) == [1.0] and min_max([2.0, 2.0]) == [1.0, 1.0] and min_max([]) == []


def test_fused_score_is_the_weighted_mean_of_normalised_scores_with_zero_for_missing():
    rankings = {
        "vector": scored("vector", [(1, 0.9), (2, 0.8), (3, 0.5)]),   # -> 1, 0.75, 0
        "keyword": scored("keyword", [(3, 12.0), (4, 2.0)]),          # -> 1, 0
    }
    fused = score_fusion(rankings, {"vector": 3.0, "keyword": 1.0})
    assert scores(fused) == pytest.approx({1: 0.75, 2: 0.5625, 3: 0.25, 4: 0.0})
    assert [h.chunk.id for h in fused] == [1, 2, 3, 4]


def test_scores_not_ranks_decide_a_clear_winner_that_rrf_misses():
    # BM25 is far surer of chunk 3 than vector search is of chunk 1 over chunk 3.
    rankings = {
        "vector": scored("vector", [(1, 0.62), (3, 0.61), (2, 0.30)]),
        "keyword": scored("keyword", [(3, 30.0), (1, 1.0), (2, 0.5)]),
    }
    assert score_fusion(rankings)[0].chunk.id == 3
    assert reciprocal_rank_fusion(rankings)[0].chunk.id == 1  # ranks 1+2 against 2+1: a tie, first seen wins


def test_a_retrievers_last_passage_stays_above_passages_it_did_not_return():
    rankings = {"vector": scored("vector", [(1, 0.9), (2, 0.8)]), "keyword": scored("keyword", [(5, 4.0), (6, 1.0)])}
    fused = score_fusion(rankings, {"vector": 0.0, "keyword": 1.0})
    assert [h.chunk.id for h in fused] == [5, 6, 1, 2]  # 6 (keyword's last, 0) before 1 and 2 (weight 0)


def test_one_retriever_at_full_weight_reproduces_its_own_ranking():
    keyword = scored("keyword", [(4, 9.0), (2, 5.0), (7, 1.0)])
    rankings = {"vector": scored("vector", [(1, 0.9), (2, 0.8), (3, 0.1)]), "keyword": keyword, "graph": []}
    fused = score_fusion(rankings, {"vector": 0.0, "keyword": 1.0, "graph": 0.0})
    assert [h.chunk.id for h in fused[:3]] == [4, 2, 7]


def test_found_by_and_facts_are_unions_and_inputs_are_untouched():
    a, b = Triple("Acme", "founded by", "Jane"), Triple("Acme", "in", "Berlin")
    vector = scored("vector", [(7, 0.9)], facts={7: [a]})
    graph = scored("graph", [(8, 3.0), (7, 1.0)], facts={7: [a, b]})
    fused = {h.chunk.id: h for h in score_fusion({"vector": vector, "graph": graph})}
    assert fused[7].found_by == {"vector": 1, "graph": 2}
    assert fused[7].facts == [a, b]
    assert vector[0].score == 0.9 and vector[0].facts == [a]


def test_fuse_dispatches_on_the_method():
    rankings = {"vector": scored("vector", [(1, 0.9), (2, 0.1)]), "keyword": scored("keyword", [(2, 5.0)])}
    assert scores(fuse(rankings, {}, "rrf")) == pytest.approx(scores(reciprocal_rank_fusion(rankings)))
    assert scores(fuse(rankings, {}, "score")) == pytest.approx({1: 0.5, 2: 0.5})
    with pytest.raises(ValueError, match="unknown fusion method"):
        fuse(rankings, {}, "borda")  # type: ignore[arg-type]


class Fixed:
    def __init__(self, name: str, pairs: list[tuple[int, float]]) -> None:
        self.name, self.pairs = name, pairs

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        return scored(self.name, self.pairs)[:k]


def test_fused_retriever_uses_the_method_and_checks_its_weights():
    vector, keyword = Fixed("vector", [(1, 0.9), (2, 0.8)]), Fixed("keyword", [(2, 9.0), (1, 0.1)])
    assert [h.chunk.id for h in FusedRetriever([vector, keyword], {"keyword": 3.0}).retrieve("q", 2, EVERYONE)] == [2, 1]
    assert FusedRetriever([vector, keyword], method="rrf").retrieve("q", 1, EVERYONE)[0].chunk.id == 1
    with pytest.raises(ValueError, match="not all 0"):
        FusedRetriever([vector, keyword], {"vector": 0.0, "keyword": 0.0})
    with pytest.raises(ValueError, match="0 or more"):
        FusedRetriever([vector, keyword], {"vector": -1.0})
