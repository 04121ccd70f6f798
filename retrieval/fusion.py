"""Fusion: one ranking from several retrievers' rankings, by normalised scores (default) or by ranks.

``score`` fusion (the default, ``fusion_method = "score"``) scores a chunk by a convex combination
of its retrievers' normalised scores: ``sum_r w_r * norm_r(chunk) / sum_r w_r``. Each retriever's
scores are min-max normalised over the candidates it returned (its best is 1, its last 0), and a
chunk a retriever did not return gets that retriever's floor, 0. Unlike rank fusion it keeps how
*much* better a retriever's first passage is than its tenth: a BM25 hit that matches a rare product
code outscores a vector hit that is merely first. It beat reciprocal rank fusion on every
development set measured (``eval/reports/README.md``, fusion section).

``rrf`` is reciprocal rank fusion: ``sum_r w_r / (k + rank_r)`` (rank 1-based), which needs no
scores at all; kept for retrievers whose scores mean nothing.

Either way ``found_by`` of a fused hit is the union of its sources' ``found_by`` and its facts are
the union of their facts. A retriever with weight 0 still contributes candidates (at the bottom).
The fused ranking is checked once more against the user's groups (``visible_hits``): every retriever
filters already, and a buggy one still cannot leak through fusion.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

from retrieval.adapt import adapt_weights
from retrieval.catalog import visible_hits
from zhiku.protocols import Retriever
from zhiku.records import Hit, User
from zhiku.settings import FUSION_METHODS, FusionMethod

#: The default weights: they lean on BM25, the strongest single retriever on three of the four
#: development sets with MiniLM or the Universal Sentence Encoder (a tie with vectors on the fourth),
#: and give the graph a little (eval/reports/README.md, fusion).
DEFAULT_WEIGHTS = {"vector": 0.2, "keyword": 0.7, "graph": 0.1}
#: Defaults for embedders whose vectors are strong enough to deserve more: with E5 the vector
#: retriever (and the graph walk it seeds) is the best or within 0.01 of the best single retriever
#: on all four development sets. Of the weightings tried these have the best worst case: hybrid
#: above every single retriever on each set (eval/reports/README.md, e5).
EMBEDDER_WEIGHTS = {"e5": {"vector": 0.6, "keyword": 0.2, "graph": 0.2}}


def default_weights(embedder: str) -> dict[str, float]:
    """The fusion weights ``hybrid`` uses for a knowledge base embedded by ``embedder`` (its name)
    unless its settings say otherwise."""
    return dict(EMBEDDER_WEIGHTS.get(embedder, DEFAULT_WEIGHTS))


#: The RRF constant of Cormack et al. (2009); larger values flatten the head of each ranking.
RRF_K = 60
#: The fewest candidates asked of each retriever, however small ``k`` is.
MIN_POOL = 20

Rankings = Mapping[str, Sequence[Hit]]


def min_max(scores: Sequence[float]) -> list[float]:
    """``scores`` mapped onto [0, 1] (best 1, worst 0); all equal (or one score) map to 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def _merge(
    rankings: Rankings, weights: Mapping[str, float], contribution: Callable[[str, Sequence[Hit]], list[float]]
) -> list[Hit]:
    """Fused hits, best first; ``contribution(name, hits)`` scores each hit of a list.

    Equal scores go to the hit more weighted retrievers returned, then to the first seen: a
    retriever's last passage (min-max score 0) stays above passages it did not return at all.
    """
    fused: dict[int, Hit] = {}
    support: dict[int, int] = {}
    for name, hits in rankings.items():
        weighted = float(weights.get(name, 1.0)) > 0
        for rank, (hit, add) in enumerate(zip(hits, contribution(name, hits)), start=1):
            key = hit.chunk.id if hit.chunk.id is not None else id(hit.chunk)
            into = fused.get(key)
            if into is None:
                into = fused[key] = copy.copy(hit)
                into.score, into.found_by, into.facts = 0.0, {}, []
                support[key] = 0
            into.score += add
            support[key] += weighted
            for source, source_rank in (hit.found_by or {name: rank}).items():
                into.found_by.setdefault(source, source_rank)
            into.facts.extend(f for f in hit.facts if f not in into.facts)
    return [fused[key] for key in sorted(fused, key=lambda key: (-fused[key].score, -support[key]))]


def reciprocal_rank_fusion(
    rankings: Rankings, weights: Mapping[str, float] | None = None, k: int = RRF_K
) -> list[Hit]:
    """Fuse ``{retriever name: hits best first}`` by ``sum w / (k + rank)``; a missing weight is 1.0.

    Input hits are not modified.
    """
    weights = weights or {}

    def contribution(name: str, hits: Sequence[Hit]) -> list[float]:
        weight = float(weights.get(name, 1.0))
        return [weight / (k + rank) for rank in range(1, len(hits) + 1)]

    return _merge(rankings, weights, contribution)


def score_fusion(rankings: Rankings, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """Fuse ``{retriever name: hits best first}`` by the convex combination of min-max scores.

    A missing weight is 1.0; weights are divided by their sum, so fused scores lie in [0, 1]. Input
    hits are not modified.
    """
    weights = {name: float((weights or {}).get(name, 1.0)) for name in rankings}
    total = sum(weights.values()) or 1.0

    def contribution(name: str, hits: Sequence[Hit]) -> list[float]:
        share = weights[name] / total
        return [share * s for s in min_max([h.score for h in hits])]

    return _merge(rankings, weights, contribution)


def fuse(rankings: Rankings, weights: Mapping[str, float], method: FusionMethod = "score") -> list[Hit]:
    """The fused ranking by ``method`` (``score`` or ``rrf``)."""
    if method == "rrf":
        return reciprocal_rank_fusion(rankings, weights)
    if method == "score":
        return score_fusion(rankings, weights)
    raise ValueError(f"unknown fusion method {method!r}; known: {', '.join(FUSION_METHODS)}")


class FusedRetriever:
    """Several retrievers asked for a candidate pool each, fused; itself a ``Retriever``.

    With ``adapt`` on, each question's weights are first adjusted by ``retrieval.adapt`` (quoted
    terms and identifiers lean on keyword search).
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        weights: Mapping[str, float] | None = None,
        method: FusionMethod = "score",
        pool: int = MIN_POOL,
        adapt: bool = False,
        name: str = "hybrid",
    ) -> None:
        if not retrievers:
            raise ValueError("FusedRetriever needs at least one retriever")
        names = {r.name for r in retrievers}
        unknown = set(weights or {}) - names
        if unknown:
            raise ValueError(f"fusion weights name unknown retrievers {sorted(unknown)}; known: {sorted(names)}")
        weights = {n: float((weights or {}).get(n, 1.0)) for n in names}
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError(f"fusion weights must be 0 or more and not all 0; got {weights}")
        if method not in FUSION_METHODS:
            raise ValueError(f"unknown fusion method {method!r}; known: {', '.join(FUSION_METHODS)}")
        self.retrievers = list(retrievers)
        self.weights = weights
        self.method = method
        self.pool = pool
        self.adapt = adapt
        self.name = name

    def weights_for(self, query: str) -> dict[str, float]:
        """The weights this question is fused with (the configured ones, adapted when ``adapt``)."""
        return adapt_weights(query, self.weights) if self.adapt else dict(self.weights)

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        if k <= 0:
            return []
        pool = max(2 * k, self.pool)
        rankings = {r.name: r.retrieve(query, pool, user) for r in self.retrievers}
        fused = fuse(rankings, self.weights_for(query), self.method)
        return visible_hits(fused, user)[:k]
