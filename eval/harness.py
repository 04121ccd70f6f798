"""The harness: every retrieval mode on the same knowledge base and the same judged queries.

Modes are measured only through the ``Retriever`` protocol, so what is measured is what the product
runs. Each query is retrieved once per mode at a depth of ``depth`` chunks; the chunk ranking is the
hits in order, the document ranking is each document at its first hit, and both are scored at every
k (documents at k are the top k distinct documents). A mode that cannot be built or fails on a query
is reported as skipped with the reason, never a crash of the whole run.
"""
from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from eval.gold import Judgement
from eval.metrics import Estimate, recall, score_query, summarise
from zhiku.protocols import Retriever
from zhiku.records import Hit, User

log = logging.getLogger(__name__)

#: The local user who sees every document: evaluation measures ranking, not access control.
EVALUATOR = User(name="eval", sees_all=True)
#: Single retrievers that hybrid fuses; per-query wins/losses compare hybrid with each of them.
SINGLE_MODES = ("vector", "keyword", "graph")


@dataclass
class QueryResult:
    """One query under one mode: its scores at each level and what was retrieved."""

    query_id: str
    mode: str
    doc: dict[str, float]
    chunk: dict[str, float] | None
    docs: list[str]
    chunks: list[str]
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ModeResult:
    mode: str
    queries: list[QueryResult] = field(default_factory=list)
    doc: dict[str, Estimate] = field(default_factory=dict)
    chunk: dict[str, Estimate] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def latency_ms(self) -> dict[str, float]:
        times = sorted(q.latency_ms for q in self.queries)
        if not times:
            return {}
        return {"mean": statistics.fmean(times), "p50": times[len(times) // 2],
                "p95": times[min(len(times) - 1, int(0.95 * len(times)))]}


@dataclass
class EvalResult:
    dataset: str
    ks: list[int]
    modes: list[ModeResult]
    #: Counts that say what was (and was not) measured: queries, judged, unanswerable, unresolved labels.
    coverage: dict[str, int]
    notes: list[str] = field(default_factory=list)
    #: What was measured on: embedding model, knowledge base size, depth, fusion and reranker settings.
    setup: dict[str, Any] = field(default_factory=dict)
    #: Further results by name for ``metrics.json`` (answer quality), and their Markdown sections.
    extra: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)

    def mode(self, name: str) -> ModeResult | None:
        return next((m for m in self.modes if m.mode == name and m.skipped is None), None)


def rank(hits: Sequence[Hit]) -> tuple[list[str], list[str]]:
    """(document sources in order of first hit, chunk ids in order)."""
    docs = list(dict.fromkeys(h.document.source for h in hits))
    return docs, [str(h.chunk.id) for h in hits]


def evaluate(
    judgements: Sequence[Judgement],
    retrievers: Mapping[str, Callable[[], Retriever]],
    ks: Sequence[int],
    depth: int | None = None,
    dataset: str = "",
    user: User = EVALUATOR,
    progress: bool = True,
    resamples: int = 1000,
) -> EvalResult:
    """Score each mode's retriever (built by its factory) on the judged queries.

    Queries without relevant documents (unanswerable) and queries whose labels resolved to nothing
    are not ranked; ``coverage`` counts them. ``depth`` defaults to twice the largest k, so the
    document ranking has room for k distinct documents.
    """
    ks = sorted(set(int(k) for k in ks))
    depth = depth or 2 * ks[-1]
    judged = [j for j in judgements if j.docs]
    coverage = {
        "queries": len(judgements),
        "judged": len(judged),
        "judged_chunk_level": sum(1 for j in judged if j.chunks),
        "unanswerable": sum(1 for j in judgements if not j.query.answerable),
        "unresolved_labels": sum(len(j.unresolved) for j in judgements),
        "unresolved_queries": sum(1 for j in judgements if j.query.answerable and not j.docs),
    }
    result = EvalResult(dataset, ks, [], coverage, setup={"depth": depth})
    if coverage["unresolved_labels"]:
        examples = [ref for j in judgements for ref in j.unresolved][:3]
        result.notes.append(f"{coverage['unresolved_labels']} gold labels match no document of the knowledge base "
                            f"(e.g. {', '.join(map(repr, examples))}); those queries are judged on the rest")
    for mode, build in retrievers.items():
        result.modes.append(_run_mode(mode, build, judged, ks, depth, user, progress, resamples))
    return result


def _run_mode(
    mode: str, build: Callable[[], Retriever], judged: Sequence[Judgement], ks: Sequence[int],
    depth: int, user: User, progress: bool, resamples: int,
) -> ModeResult:
    outcome = ModeResult(mode)
    try:
        retriever = build()
    except Exception as exc:  # a mode that cannot be built is reported, the others still run
        outcome.skipped = f"{type(exc).__name__}: {exc}"
        log.warning("mode %s skipped: %s", mode, outcome.skipped)
        return outcome
    if judged:  # the first call builds lazy indexes (BM25, graph, FAISS): keep it out of the latencies
        try:
            retriever.retrieve(judged[0].query.query, 1, user)
        except Exception:
            pass  # the timed loop below reports the failure
    for judgement in tqdm(judged, desc=f"eval {mode}", unit="q", disable=not progress, leave=False):
        started = time.perf_counter()
        try:
            hits = retriever.retrieve(judgement.query.query, depth, user)
        except Exception as exc:
            outcome.skipped = f"failed on query {judgement.query.id!r}: {type(exc).__name__}: {exc}"
            outcome.queries.clear()
            log.warning("mode %s skipped: %s", mode, outcome.skipped)
            return outcome
        elapsed = (time.perf_counter() - started) * 1000.0
        docs, chunks = rank(hits)
        outcome.queries.append(QueryResult(
            judgement.query.id, mode, score_query(docs, judgement.docs, ks),
            score_query(chunks, judgement.chunks, ks) if judgement.chunks else None,
            docs, chunks, elapsed,
        ))
    outcome.doc = summarise([q.doc for q in outcome.queries], resamples=resamples)
    outcome.chunk = summarise([q.chunk for q in outcome.queries if q.chunk], resamples=resamples)
    return outcome


def recall_curve(mode: ModeResult, judgements: Sequence[Judgement], depth: int, level: str = "doc") -> list[float]:
    """Mean recall at every cut-off 1..depth (the points of the recall@k plot)."""
    gold = {j.query.id: (j.docs if level == "doc" else j.chunks) for j in judgements}
    curves = [
        [recall(q.docs if level == "doc" else q.chunks, gold[q.query_id], k) for k in range(1, depth + 1)]
        for q in mode.queries if gold.get(q.query_id)
    ]
    return [statistics.fmean(col) for col in zip(*curves)] if curves else []


def wins_losses(result: EvalResult, metric: str, against: str = "hybrid") -> dict[str, dict[str, int]]:
    """Per-query wins, ties and losses of ``against`` versus each single mode on ``metric`` (doc level)."""
    base = result.mode(against)
    if base is None:
        return {}
    ours = {q.query_id: q.doc[metric] for q in base.queries}
    table = {}
    for name in SINGLE_MODES:
        other = result.mode(name)
        if other is None:
            continue
        counts = {"wins": 0, "ties": 0, "losses": 0}
        for q in other.queries:
            delta = ours[q.query_id] - q.doc[metric]
            counts["wins" if delta > 1e-9 else "losses" if delta < -1e-9 else "ties"] += 1
        table[name] = counts
    return table
