"""Retrieval quality on the held-out generated questions: what every tuning decision is made on.

A held-out ``TrainingPair`` is a question generated from one chunk (no human label): that chunk is
its one relevant passage. Each mode is measured at the chunk level (nDCG@10, MRR@10, recall@10,
each a mean with a 95% bootstrap interval) as the local administrator, who sees every document of
the knowledge base; the questions and passages never leave this module, only figures do.

``hybrid+rerank`` reorders the same hybrid top ``POOL`` that ``hybrid`` is measured on, so the two
differ only by the reranker, and several rerankers are compared on one retrieval pass.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from eval.metrics import Estimate, mrr, ndcg, recall, summarise
from retrieval.rerank import Reranker
from tune.fusion import LOCAL_ADMIN
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import Hit
from zhiku.settings import Settings

#: The cut-off decisions are made at, and the hybrid candidates a reranker reorders (as ``hybrid+rerank``).
K = 10
POOL = 20
#: The figure a decision compares.
DECIDING = f"ndcg@{K}"

#: mode -> metric -> estimate
Figures = dict[str, dict[str, Estimate]]


def score(ranking: Sequence[Hit], positive: int) -> dict[str, float]:
    """One question's figures: its generating chunk is the one relevant passage."""
    ids = [str(h.chunk.id) for h in ranking]
    gold = {str(positive): 1.0}
    return {f"ndcg@{K}": ndcg(ids, gold, K), f"mrr@{K}": mrr(ids, gold, K), f"recall@{K}": recall(ids, gold, K)}


def hybrid_pools(kb: KnowledgeBase, embedder: Embedder, settings: Settings, pairs: Sequence[Any],
                 progress: bool = False) -> list[list[Hit]]:
    """The hybrid top ``POOL`` of every question, best first."""
    from retrieval.factory import build_retriever

    hybrid = build_retriever(kb, embedder, settings, "hybrid")
    return [hybrid.retrieve(p.query, POOL, LOCAL_ADMIN)
            for p in tqdm(pairs, desc="hybrid", unit="q", disable=not progress, leave=False)]


def reranked(reranker: Reranker, pairs: Sequence[Any], pools: Sequence[Sequence[Hit]],
             progress: bool = False) -> dict[str, Estimate]:
    """Figures of ``reranker`` reordering each question's hybrid pool."""
    rows = [score(reranker.rerank(p.query, pool, K), p.positive)
            for p, pool in tqdm(list(zip(pairs, pools)), desc=f"rerank ({reranker.name})", unit="q",
                                disable=not progress, leave=False)]
    return summarise(rows)


def measure(kb: KnowledgeBase, embedder: Embedder, settings: Settings, pairs: Sequence[Any],
            rerankers: Mapping[str, Reranker] | None = None, progress: bool = False) -> Figures:
    """``vector`` and ``hybrid`` on ``pairs``, and ``hybrid+rerank`` for each named reranker."""
    from retrieval.factory import build_retriever

    vector = build_retriever(kb, embedder, settings, "vector")
    rows = [score(vector.retrieve(p.query, K, LOCAL_ADMIN), p.positive)
            for p in tqdm(pairs, desc="vector", unit="q", disable=not progress, leave=False)]
    pools = hybrid_pools(kb, embedder, settings, pairs, progress)
    figures: Figures = {"vector": summarise(rows),
                        "hybrid": summarise([score(pool[:K], p.positive) for p, pool in zip(pairs, pools)])}
    for name, reranker in (rerankers or {}).items():
        figures[name] = reranked(reranker, pairs, pools, progress)
    return figures


def as_json(figures: Figures) -> dict[str, dict[str, dict[str, float]]]:
    return {mode: {name: e.as_dict() for name, e in metrics.items()} for mode, metrics in figures.items()}


def cell(estimate: Mapping[str, float] | None) -> str:
    """``0.612 [0.55, 0.67]``, or a dash when not measured."""
    if not estimate or not estimate.get("n"):
        return "–"
    return f"{estimate['mean']:.3f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"
