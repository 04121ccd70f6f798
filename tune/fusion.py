"""Fusion weights for one knowledge base, chosen on questions generated from it (``zhiku tune fusion``).

No human labels: ``eval.generate`` writes template questions from the knowledge base's own chunks
(the document each came from is its relevant one). Each single retriever is asked once per question
for its candidate pool; then every weight vector on a small simplex grid is scored by fusing those
pools exactly as ``hybrid`` does (same method, same per-question adaptation) and measuring
document-level nDCG@10 (recall@10 breaks ties).

Two guards keep the choice honest, because template questions reuse the corpus's words (they
favour BM25) and a hundred of them are noisy:

- the global default weights stay unless a candidate beats them by ``MARGIN`` nDCG@10;
- the choice is never worse on the generated questions than the best single retriever (its
  weights are on the grid's corners, so fusion can always fall back to it).

Questions and passages never leave this module: the result holds weights and figures only.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from tqdm import tqdm

from eval.generate import generate
from eval.metrics import ndcg, recall
from retrieval.adapt import adapt_weights
from retrieval.fusion import MIN_POOL, default_weights, fuse
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.protocols import Retriever
from zhiku.records import Hit, User
from zhiku.settings import FusionMethod, Settings

#: The retrievers weighed, in the order weights are shown.
RETRIEVERS = ("vector", "keyword", "graph")
#: The cut-off the choice is made at, and the fused depth ranked (as ``zhiku eval`` ranks).
K = 10
DEPTH = 2 * K
#: How much nDCG@10 a candidate must gain over the default weights to replace them.
MARGIN = 0.01
#: Grid spacing on the simplex (0.1: 66 candidates for three retrievers).
STEP = 0.1

#: Who the questions are asked as: the local user, who sees every document of the knowledge base.
LOCAL_ADMIN = User(name="local", sees_all=True)

#: One question's candidate pools: retriever name -> hits best first.
Pools = Mapping[str, Sequence[Hit]]
#: One question's relevant document sources with their grades.
Gold = Mapping[str, float]


@dataclass(frozen=True)
class Candidate:
    """One weight vector (summing to 1) and its mean figures on the questions."""

    weights: dict[str, float]
    ndcg: float
    recall: float
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, f"ndcg@{K}": round(self.ndcg, 4), f"recall@{K}": round(self.recall, 4),
                "label": self.label}


@dataclass
class Decision:
    """The chosen weights, what they were compared with, and why they were chosen."""

    chosen: Candidate
    default: Candidate
    best_single: Candidate
    best: Candidate
    reason: str
    candidates: list[Candidate] = field(default_factory=list)
    questions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions, "chosen": self.chosen.as_dict(), "reason": self.reason,
            "default": self.default.as_dict(), "best_single": self.best_single.as_dict(), "best": self.best.as_dict(),
            "candidates": [c.as_dict() for c in self.candidates],
        }


def simplex(names: Sequence[str] = RETRIEVERS, step: float = STEP) -> list[dict[str, float]]:
    """Every weight vector over ``names`` with weights multiples of ``step`` summing to 1 (corners included)."""
    steps = round(1 / step)
    if steps < 1 or abs(steps * step - 1) > 1e-9:
        raise ValueError(f"the grid step must divide 1 (0.5, 0.25, 0.1, ...), got {step}")
    return [
        {name: round(n / steps, 6) for name, n in zip(names, (*counts, steps - sum(counts)))}
        for counts in product(range(steps + 1), repeat=len(names) - 1) if sum(counts) <= steps
    ]


def normalised(weights: Mapping[str, float], names: Sequence[str] = RETRIEVERS) -> dict[str, float]:
    """``weights`` over ``names`` (missing ones 0) divided by their sum, rounded to 3 places."""
    total = sum(float(weights.get(n, 0.0)) for n in names)
    if total <= 0:
        raise ValueError(f"fusion weights must not all be 0: {dict(weights)}")
    return {n: round(float(weights.get(n, 0.0)) / total, 3) for n in names}


def collect(
    retrievers: Mapping[str, Retriever], queries: Sequence[str], user: User, pool: int = max(2 * DEPTH, MIN_POOL),
    progress: bool = True,
) -> list[dict[str, list[Hit]]]:
    """Each retriever's candidate pool for each query (the pools ``hybrid`` would fuse at depth ``DEPTH``)."""
    return [
        {name: r.retrieve(query, pool, user) for name, r in retrievers.items()}
        for query in tqdm(queries, desc="retrieve", unit="q", disable=not progress, leave=False)
    ]


def measure(
    weights: Mapping[str, float], queries: Sequence[str], pools: Sequence[Pools], golds: Sequence[Gold],
    method: FusionMethod = "score", adapt: bool = True,
) -> tuple[float, float]:
    """Mean document-level (nDCG@K, recall@K) of fusing ``pools`` with ``weights``, as ``hybrid`` does."""
    rankings = [
        fuse(pool, adapt_weights(query, weights) if adapt else weights, method)
        for query, pool in zip(queries, pools)
    ]
    return _figures(rankings, golds)


def measure_single(name: str, pools: Sequence[Pools], golds: Sequence[Gold]) -> tuple[float, float]:
    """Mean (nDCG@K, recall@K) of retriever ``name`` alone (its own ranking, as its mode returns it)."""
    return _figures([pool[name] for pool in pools], golds)


def _figures(rankings: Sequence[Sequence[Hit]], golds: Sequence[Gold]) -> tuple[float, float]:
    ndcgs, recalls = [], []
    for hits, gold in zip(rankings, golds):
        docs = list(dict.fromkeys(h.document.source for h in hits[:DEPTH]))
        ndcgs.append(ndcg(docs, gold, K))
        recalls.append(recall(docs, gold, K))
    return (statistics.fmean(ndcgs), statistics.fmean(recalls)) if ndcgs else (0.0, 0.0)


def _label(weights: Mapping[str, float]) -> str:
    on = [n for n, w in weights.items() if w > 0]
    return f"{on[0]} only" if len(on) == 1 else ""


def choose(
    weights: Sequence[Mapping[str, float]], default: Mapping[str, float],
    score: Callable[[Mapping[str, float]], tuple[float, float]], singles: Mapping[str, tuple[float, float]],
    margin: float = MARGIN, progress: bool = True,
) -> Decision:
    """Score every candidate and ``default``, and decide with the two guards (``weights`` holds the corners).

    ``singles`` holds each single retriever's own (nDCG, recall). A grid corner (one retriever at
    weight 1) ranks that retriever's passages first, in its order, and the others' after them, so
    the best candidate is no worse than the best single retriever; the default is replaced when
    it is worse than that single.
    """
    seen: dict[tuple[float, ...], Candidate] = {}
    for w in tqdm([normalised(default), *weights], desc="weights", unit="w", disable=not progress, leave=False):
        w = normalised(w)
        key = tuple(w.values())
        if key not in seen:
            seen[key] = Candidate(w, *score(w), label=_label(w))
    key = tuple(normalised(default).values())
    base = seen[key] = Candidate(seen[key].weights, seen[key].ndcg, seen[key].recall, "default")
    ranked = sorted(seen.values(), key=lambda c: (-c.ndcg, -c.recall, _distance(c.weights, base.weights)))
    best = ranked[0]
    name = max(singles, key=lambda n: singles[n])
    best_single = Candidate({n: float(n == name) for n in RETRIEVERS}, *singles[name], label=f"{name} alone")
    if best.ndcg < best_single.ndcg:  # only when equal scores reorder a corner: take that corner
        chosen = seen[tuple(best_single.weights.values())]
        reason = f"{best_single.label} beats every fused candidate; its corner of the grid is the closest"
    elif best.ndcg - base.ndcg < margin and base.ndcg >= best_single.ndcg:
        chosen, reason = base, (f"kept the default: the best candidate gains {best.ndcg - base.ndcg:+.3f} nDCG@{K}, "
                                f"under the {margin} margin, and the default is not below the best single retriever")
    else:
        chosen, reason = best, (f"best candidate: nDCG@{K} {best.ndcg:.3f} against {base.ndcg:.3f} for the default "
                                f"and {best_single.ndcg:.3f} for {best_single.label}")
    return Decision(chosen, base, best_single, best, reason, ranked)


def _distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return sum(abs(a[n] - b.get(n, 0.0)) for n in a)


def tune(
    retrievers: Mapping[str, Retriever], questions: Sequence[tuple[str, Gold]], default: Mapping[str, float],
    user: User, method: FusionMethod = "score", adapt: bool = True, step: float = STEP, margin: float = MARGIN,
    progress: bool = True,
) -> Decision:
    """Choose fusion weights for ``retrievers`` on judged ``questions`` ((query, gold sources) pairs)."""
    queries = [q for q, _ in questions]
    golds = [g for _, g in questions]
    pools = collect(retrievers, queries, user, progress=progress)
    singles = {name: measure_single(name, pools, golds) for name in retrievers}
    decision = choose(simplex(RETRIEVERS, step), default,
                      lambda w: measure(w, queries, pools, golds, method, adapt), singles, margin, progress)
    decision.questions = len(questions)
    return decision


def tune_knowledge_base(
    kb: KnowledgeBase, embedder: Embedder, settings: Settings, n: int = 100, seed: int = 0, step: float = STEP,
    margin: float = MARGIN, progress: bool = True,
) -> Decision:
    """Generate ``n`` questions from ``kb`` (seeded) and choose its fusion weights on them.

    Runs as the local user who sees every document: the questions are the knowledge base's own and
    only figures come out. The default compared with is the embedder's (``default_weights``), not
    the knowledge base's current weights, so re-running on an unchanged knowledge base gives the
    same decision.
    """
    from kg.graph import load_graph
    from retrieval.factory import build_retriever

    generated = generate(kb, n=n, seed=seed, progress=progress)
    if not generated:
        raise TuneError(f"{kb.root}: no question could be generated (the knowledge base has no text chunks "
                        "with facts or key terms); ingest documents first")
    graph = load_graph(kb)
    retrievers = {mode: build_retriever(kb, embedder, settings, mode, graph=graph) for mode in RETRIEVERS}
    questions = [(q.query, {source: 1.0 for source in q.relevant}) for q in generated]
    return tune(retrievers, questions, default_weights(embedder.name), LOCAL_ADMIN, settings.fusion_method,
                settings.fusion_adapt, step, margin, progress)
