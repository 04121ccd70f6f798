"""A knowledge base embedded with e5: cross-language retrieval, its own fusion weights, groups kept."""
from __future__ import annotations

from pathlib import Path

from retrieval_corpus import EVERYONE, OUTSIDER, build_kb

from retrieval import build_retriever
from retrieval.fusion import default_weights
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.settings import Settings


def test_an_e5_knowledge_base_retrieves_across_languages_with_its_own_fusion_weights(tmp_path: Path) -> None:
    model = load_embedder("e5")
    root = build_kb(tmp_path / "kb", model)
    with KnowledgeBase.open(root, "e5") as kb:
        hybrid = build_retriever(kb, model, Settings(kb=root), "hybrid")
        vector = build_retriever(kb, model, Settings(kb=root), "vector")
        assert hybrid.weights == default_weights("e5") != default_weights("minilm")
        assert "总部" in hybrid.retrieve("公司总部在哪个城市？", 1, EVERYONE)[0].chunk.text
        assert "vacation" in vector.retrieve("How much paid leave do staff get?", 1, OUTSIDER)[0].chunk.text
        assert "年假" in vector.retrieve("年假有几天？", 1, OUTSIDER)[0].chunk.text
        assert all("salary" not in h.chunk.text for h in hybrid.retrieve("salary band", 5, OUTSIDER))
