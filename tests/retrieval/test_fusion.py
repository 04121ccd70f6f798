"""Reciprocal rank fusion on hand-made rankings (exact values), and the rerankers' mechanics
(score fusion: ``test_score_fusion.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_corpus import EVERYONE
from retrieval import (
    CrossEncoderReranker, FusedRetriever, LLMJudgeReranker, RerankedRetriever, load_reranker,
    reciprocal_rank_fusion,
)
from retrieval.fusion import DEFAULT_WEIGHTS, default_weights
from zhiku.records import Chunk, Document, Hit, Triple, User
from zhiku.settings import Settings, SettingsError

DOC = Document(source="/d.md", content_hash="h", id=1)


def hit(chunk_id: int, text: str = "", facts: tuple[Triple, ...] = ()) -> Hit:
    return Hit(Chunk(text=text or f"passage {chunk_id}", position=chunk_id, n_tokens=2, doc_id=1, id=chunk_id),
               DOC, score=0.0, facts=list(facts))


def ranking(name: str, ids: list[int]) -> list[Hit]:
    hits = [hit(i) for i in ids]
    for rank, h in enumerate(hits, start=1):
        h.found_by = {name: rank}
    return hits


class Fixed:
    """A retriever that always returns the same ranking (a stand-in for a real one in fusion tests)."""

    def __init__(self, name: str, ids: list[int], texts: tuple[str, ...] = ()) -> None:
        self.name, self.ids, self.texts, self.asked = name, ids, texts, []

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        self.asked.append(k)
        hits = ranking(self.name, self.ids)
        for h, text in zip(hits, self.texts):
            h.chunk.text = text
        return hits[:k]


def test_rrf_scores_are_the_sum_of_reciprocal_ranks():
    fused = reciprocal_rank_fusion({"vector": ranking("vector", [1, 2, 3]), "keyword": ranking("keyword", [3, 1])})
    assert [h.chunk.id for h in fused] == [1, 3, 2]
    scores = {h.chunk.id: h.score for h in fused}
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert fused[0].found_by == {"vector": 1, "keyword": 2}
    assert fused[1].found_by == {"vector": 3, "keyword": 1}


def test_rrf_weights_and_constant_change_the_order():
    rankings = {"vector": ranking("vector", [1, 2]), "graph": ranking("graph", [2, 1])}
    fused = reciprocal_rank_fusion(rankings, weights={"graph": 2.0}, k=10)
    assert [h.chunk.id for h in fused] == [2, 1]
    assert fused[0].score == pytest.approx(1 / 12 + 2 / 11)
    assert fused[1].score == pytest.approx(1 / 11 + 2 / 12)


def test_rrf_merges_facts_once_and_leaves_inputs_alone():
    a, b = Triple("Acme", "founded by", "Jane"), Triple("Acme", "in", "Berlin")
    first, second = hit(7, facts=(a,)), hit(7, facts=(a, b))
    fused = reciprocal_rank_fusion({"vector": [first], "graph": [second]})
    assert fused[0].facts == [a, b]
    assert first.facts == [a] and first.score == 0.0


def test_fused_retriever_asks_each_retriever_for_a_larger_pool():
    vector, keyword = Fixed("vector", [1, 2, 3, 4]), Fixed("keyword", [4, 3])
    fused = FusedRetriever([vector, keyword], method="rrf")
    hits = fused.retrieve("q", 2, EVERYONE)
    assert vector.asked == [20] and keyword.asked == [20]
    assert [h.chunk.id for h in hits] == [4, 3]
    with pytest.raises(ValueError, match="unknown retrievers \\['grpah'\\]"):
        FusedRetriever([vector], weights={"grpah": 1.0})


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random-weight BERT cross-encoder with MiniLM's tokenizer: real mechanics, meaningless scores."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from zhiku.models import minilm_path

    path = tmp_path_factory.mktemp("cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cross_encoder_reranks_by_its_scores(cross_encoder_dir):
    reranker = CrossEncoderReranker(cross_encoder_dir)
    hits = [hit(i, text) for i, text in enumerate(["vacation days", "badges", "Kubernetes", "salary"], start=1)]
    reranked = reranker.rerank("vacation", hits, 3)
    assert len(reranked) == 3
    expected = reranker._model.predict([("vacation", h.chunk.text) for h in hits])
    order = sorted(range(4), key=lambda i: -expected[i])[:3]
    assert [h.chunk.id for h in reranked] == [hits[i].chunk.id for i in order]
    assert [h.score for h in reranked] == pytest.approx([float(expected[i]) for i in order], abs=1e-5)
    assert reranker.rerank("vacation", [], 3) == []


def test_reranker_settings(cross_encoder_dir, tmp_path):
    assert load_reranker(Settings(reranker="none")) is None
    assert isinstance(load_reranker(Settings(reranker=str(cross_encoder_dir))), CrossEncoderReranker)
    with pytest.raises(SettingsError, match="needs an LLM"):
        load_reranker(Settings(reranker="llm"))
    with pytest.raises(SettingsError, match="CrossEncoder"):
        load_reranker(Settings(reranker=str(tmp_path / "missing")))


def keyword_judge():
    """A llama-index LLM that says yes exactly when the passage mentions vacation."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

    class Judge(CustomLLM):
        prompts: list = []

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="keyword-judge")

        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            self.prompts.append(prompt)
            passage = prompt.split("Passage:")[1].split("Does the passage")[0]
            return CompletionResponse(text=" Yes." if "vacation" in passage else "No")

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            yield self.complete(prompt)

    return Judge()


def test_llm_judge_moves_relevant_passages_first_and_irrelevant_last():
    judge = keyword_judge()
    texts = ["badges", "vacation days", "salary", "more vacation", "unread"]
    hits = [hit(i, t) for i, t in enumerate(texts, start=1)]
    reranked = LLMJudgeReranker(judge, top=4).rerank("How many vacation days?", hits, 5)
    assert [h.chunk.text for h in reranked] == ["vacation days", "more vacation", "unread", "badges", "salary"]
    assert len(judge.prompts) == 4  # only the top passages are judged


def test_reranked_retriever_reranks_a_pool_and_keeps_k():
    base = Fixed("hybrid", [1, 2, 3], texts=("badges", "vacation", "salary"))
    retriever = RerankedRetriever(base, LLMJudgeReranker(keyword_judge()), pool=10)
    hits = retriever.retrieve("vacation?", 1, EVERYONE)
    assert [h.chunk.text for h in hits] == ["vacation"]
    assert base.asked == [10] and retriever.name == "hybrid+rerank"


def test_fusion_weights_come_from_settings(small_kb, embedder, tmp_path):
    from retrieval import build_retriever

    settings = Settings.from_mapping({"kb": tmp_path, "fusion_weights": {"graph": 0.5, "keyword": 2}})
    hybrid = build_retriever(small_kb, embedder, settings, "hybrid")
    assert hybrid.weights == {**DEFAULT_WEIGHTS, "graph": 0.5, "keyword": 2.0}  # over the embedder's defaults
    assert (hybrid.method, hybrid.adapt) == ("score", True)
    with pytest.raises(SettingsError, match="fusion_weights"):
        build_retriever(small_kb, embedder, Settings.from_mapping({"fusion_weights": {"graph": "lots"}}), "hybrid")
    with pytest.raises(SettingsError, match="names \\['bm25'\\]"):
        build_retriever(small_kb, embedder, Settings.from_mapping({"fusion_weights": {"bm25": 1}}), "hybrid")


def test_default_weights_follow_the_embedder_and_settings_refine_them():
    # E5's vectors are the best or near-best single retriever on every development set: they get more
    assert default_weights("e5")["vector"] > default_weights("minilm")["vector"] == DEFAULT_WEIGHTS["vector"]
    assert default_weights("multilingual") == default_weights("/kb/models/embedder-1") == DEFAULT_WEIGHTS
    from retrieval.factory import fusion_weights

    class E5:
        name = "e5"

    assert fusion_weights(Settings.from_mapping({"fusion_weights": {"graph": 0.0}}), E5()) == {
        **default_weights("e5"), "graph": 0.0}
