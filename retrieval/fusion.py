"""Reciprocal rank fusion: one ranking from several retrievers' rankings.

RRF scores a chunk by ``sum(weight_r / (k + rank_r))`` over the retrievers ``r`` that returned it
(rank 1-based). It needs no score calibration between retrievers (cosine similarities, BM25 scores
and graph scores live on different scales), which is why it is the default. ``found_by`` of a
fused hit is the union of its sources' ``found_by``; its facts are the union of their facts.
The fused ranking is checked once more against the user's groups (``visible_hits``): every
retriever filters already, and a buggy one still cannot leak through fusion.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from retrieval.catalog import visible_hits
from zhiku.protocols import Retriever
from zhiku.records import Hit, User

#: The RRF constant of Cormack et al. (2009); larger values flatten the head of each ranking.
RRF_K = 60
#: The fewest candidates asked of each retriever, however small ``k`` is.
MIN_POOL = 20


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hit]], weights: Mapping[str, float] | None = None, k: int = RRF_K
) -> list[Hit]:
    """Fuse ``{retriever name: hits best first}`` into one list best first (ties: first seen).

    A retriever missing from ``weights`` weighs 1.0. Input hits are not modified.
    """
    weights = weights or {}
    fused: dict[int, Hit] = {}
    for name, hits in rankings.items():
        weight = float(weights.get(name, 1.0))
        for rank, hit in enumerate(hits, start=1):
            key = hit.chunk.id if hit.chunk.id is not None else id(hit.chunk)
            contribution = weight / (k + rank)
            into = fused.get(key)
            if into is None:
                into = fused[key] = copy.copy(hit)
                into.score, into.found_by, into.facts = 0.0, {}, []
            into.score += contribution
            for source, source_rank in (hit.found_by or {name: rank}).items():
                into.found_by.setdefault(source, source_rank)
            into.facts.extend(f for f in hit.facts if f not in into.facts)
    return sorted(fused.values(), key=lambda h: -h.score)


class FusedRetriever:
    """Several retrievers asked for a candidate pool each, fused by RRF; itself a ``Retriever``."""

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        weights: Mapping[str, float] | None = None,
        k: int = RRF_K,
        pool: int = MIN_POOL,
        name: str = "hybrid",
    ) -> None:
        if not retrievers:
            raise ValueError("FusedRetriever needs at least one retriever")
        unknown = set(weights or {}) - {r.name for r in retrievers}
        if unknown:
            raise ValueError(
                f"fusion weights name unknown retrievers {sorted(unknown)}; "
                f"known: {sorted(r.name for r in retrievers)}"
            )
        self.retrievers = list(retrievers)
        self.weights = dict(weights or {})
        self.k = k
        self.pool = pool
        self.name = name

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        if k <= 0:
            return []
        pool = max(2 * k, self.pool)
        rankings = {r.name: r.retrieve(query, pool, user) for r in self.retrievers}
        return visible_hits(reciprocal_rank_fusion(rankings, self.weights, self.k), user)[:k]
