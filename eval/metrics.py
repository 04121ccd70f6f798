"""Ranking metrics at a cut-off k, per query, and their means with bootstrap confidence intervals.

A query's gold labels are a mapping ``id -> grade`` (grade > 0 means relevant; binary labels use 1).
A ranking is a list of ids, best first, already de-duplicated (the harness ranks chunks, and ranks
documents by the first appearance of each document among the hits). The conventions follow
``trec_eval`` as BEIR reports it, so figures can be set beside published baselines:

- hit rate@k: 1 when any relevant id is in the top k;
- recall@k: relevant ids in the top k / all relevant ids;
- precision@k: relevant ids in the top k / k (a ranking shorter than k is not rewarded);
- MRR@k: 1 / rank of the first relevant id within k, else 0;
- nDCG@k: linear gain ``grade / log2(rank + 1)``, normalised by the ideal ordering of the gold grades;
- MAP@k (AP@k per query): the mean of precision@i at the ranks i <= k of relevant ids, divided by all
  relevant ids (``map_cut``), so missing relevant documents cost.

Queries without any relevant id (unanswerable questions) have no defined ranking quality; callers
leave them out of these means and measure them by the refusal rate instead.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Ranking = Sequence[str]
Gold = Mapping[str, float]


def _relevant(gold: Gold) -> set[str]:
    return {i for i, grade in gold.items() if grade > 0}


def hit_rate(ranking: Ranking, gold: Gold, k: int) -> float:
    relevant = _relevant(gold)
    return float(any(i in relevant for i in ranking[:k]))


def recall(ranking: Ranking, gold: Gold, k: int) -> float:
    relevant = _relevant(gold)
    return len(relevant.intersection(ranking[:k])) / len(relevant) if relevant else 0.0


def precision(ranking: Ranking, gold: Gold, k: int) -> float:
    relevant = _relevant(gold)
    return len(relevant.intersection(ranking[:k])) / k


def mrr(ranking: Ranking, gold: Gold, k: int) -> float:
    relevant = _relevant(gold)
    for rank, i in enumerate(ranking[:k], start=1):
        if i in relevant:
            return 1.0 / rank
    return 0.0


def ndcg(ranking: Ranking, gold: Gold, k: int) -> float:
    dcg = sum(max(gold.get(i, 0.0), 0.0) / math.log2(rank + 1) for rank, i in enumerate(ranking[:k], start=1))
    ideal = sorted((g for g in gold.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def average_precision(ranking: Ranking, gold: Gold, k: int) -> float:
    relevant = _relevant(gold)
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for rank, i in enumerate(ranking[:k], start=1):
        if i in relevant:
            found += 1
            total += found / rank
    return total / len(relevant)


#: Metric name -> function; the order is the order of report columns.
METRICS: dict[str, Callable[[Ranking, Gold, int], float]] = {
    "hit_rate": hit_rate,
    "recall": recall,
    "precision": precision,
    "mrr": mrr,
    "ndcg": ndcg,
    "map": average_precision,
}


def score_query(ranking: Ranking, gold: Gold, ks: Sequence[int]) -> dict[str, float]:
    """Every metric at every k for one query, keyed ``"<metric>@<k>"``."""
    return {f"{name}@{k}": fn(ranking, gold, k) for name, fn in METRICS.items() for k in ks}


@dataclass(frozen=True)
class Estimate:
    """A mean over queries with its bootstrap percentile interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(values: Sequence[float], resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """The mean of ``values`` and a percentile bootstrap interval (seeded, so reports are reproducible)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Estimate(float(data.mean()), float(low), float(high), int(data.size))


def summarise(per_query: Sequence[Mapping[str, float]], resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Mean and interval of each metric over the queries that have it."""
    names = list(dict.fromkeys(name for row in per_query for name in row))
    return {
        name: bootstrap([row[name] for row in per_query if name in row], resamples=resamples, seed=seed)
        for name in names
    }
