"""``zhiku tune --kb DIR``: the whole label-free adaptation of one knowledge base, measured before and after.

Stages, in order (``STAGES``; a run may pick a subset):

1. ``pairs`` — generated (question, chunk, hard negatives) pairs with a held-out slice
   (``tune.pairs``), saved in ``<kb>/tune/pairs.jsonl``;
2. ``embedder`` — the embedder fine-tuned on them; kept, and the chunks re-embedded
   (``zhiku reindex``), only when it finds the held-out chunks better (``tune.embedder``);
3. ``reranker`` — a cross-encoder trained on them; kept, and set as the knowledge base's
   ``reranker``, only when ``hybrid+rerank`` beats ``hybrid`` on the held-out pairs (``tune.reranker``);
4. ``evaluate`` — ``vector``, ``hybrid`` and ``hybrid+rerank`` on the held-out pairs with the models
   the run started with and those it ended with (``tune.holdout``).

Each stage decides for itself, so a model that is not better is never switched to and the previous
one stays. The run's record (stages with their decisions and times, the before/after figures, the
models) is appended to ``<kb>/tune/runs.jsonl``, which the UI's Evaluation page lists. Only figures
and model names are recorded: no question or passage.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tune import holdout
from tune.embedder import EmbedderConfig, tune_embedder
from tune.pairs import build_pairs, load_pairs, save_pairs
from tune.reranker import RerankerConfig, current_reranker, tune_reranker
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.models import load_embedder
from zhiku.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("pairs", "embedder", "reranker", "evaluate")
RUNS_FILE = "runs.jsonl"
#: The rows of the before/after table.
MODES = ("vector", "hybrid", "hybrid+rerank")


@dataclass(frozen=True)
class PipelineConfig:
    #: Generated pairs asked for (a held-out slice of them is what everything is measured on).
    pairs: int = 1000
    seed: int = 0
    stages: tuple[str, ...] = STAGES
    reranker: RerankerConfig = RerankerConfig()
    embedder: EmbedderConfig = EmbedderConfig()


@dataclass
class StageRecord:
    name: str
    status: str  # "kept", "not kept", "done" or "skipped"
    detail: str
    seconds: float
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What one ``zhiku tune`` run did (a line of ``<kb>/tune/runs.jsonl``)."""

    started: str
    seconds: float = 0.0
    train_pairs: int = 0
    held_out: int = 0
    stages: list[StageRecord] = field(default_factory=list)
    #: mode -> metric -> mean and 95% interval, on the held-out pairs, before and after the run.
    before: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    after: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: embedding_model and reranker, before and after.
    models_before: dict[str, str] = field(default_factory=dict)
    models_after: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        stages = [StageRecord(**s) for s in data.get("stages", [])]
        return cls(**{**data, "stages": stages})

    def rows(self) -> list[dict[str, str]]:
        """The before/after table: one row per mode and metric."""
        metrics = [holdout.DECIDING, f"mrr@{holdout.K}", f"recall@{holdout.K}"]
        return [{"mode": mode, "metric": metric, "before": holdout.cell(self.before.get(mode, {}).get(metric)),
                 "after": holdout.cell(self.after.get(mode, {}).get(metric))}
                for mode in MODES for metric in metrics if mode in self.before or mode in self.after]

    def table(self) -> str:
        lines = [f"tuning run of {self.started}: {self.train_pairs} training and {self.held_out} held-out "
                 f"generated pairs, {self.seconds:.0f} s", ""]
        lines += [f"  {s.name:<9} {s.status:<9} {s.seconds:>6.0f} s  {s.detail}" for s in self.stages]
        lines += ["", "| mode | metric | before | after |", "|---|---|---|---|"]
        lines += [f"| {r['mode']} | {r['metric']} | {r['before']} | {r['after']} |" for r in self.rows()]
        lines += ["", f"models before: {_models(self.models_before)}", f"models after:  {_models(self.models_after)}"]
        return "\n".join(lines)


def _models(models: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in models.items())


def runs_path(kb_root: Path) -> Path:
    return Path(kb_root) / "tune" / RUNS_FILE


def load_runs(kb_root: Path) -> list[RunRecord]:
    """The knowledge base's tuning runs, newest first (lines that do not parse are skipped)."""
    path = runs_path(kb_root)
    if not path.is_file():
        return []
    runs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            runs.append(RunRecord.from_json(json.loads(line)))
        except (ValueError, TypeError) as exc:
            log.warning("%s line %d is not a tuning run (%s); skipped", path, number, exc)
    return runs[::-1]


def append_run(kb_root: Path, record: RunRecord) -> Path:
    path = runs_path(kb_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    line = json.dumps(record.to_json(), ensure_ascii=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(old + line, encoding="utf-8"))
    return path


# ------------------------------------------------------------------------------------ the stages
def _figures(settings: Settings, pairs: Sequence[Any], progress: bool) -> dict[str, Any]:
    """vector, hybrid and (with the configured cross-encoder, when there is one) hybrid+rerank."""
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    reranker = current_reranker(settings)
    with KnowledgeBase.open(settings.kb, embedder.name,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        figures = holdout.measure(kb, embedder, settings, pairs,
                                  {"hybrid+rerank": reranker} if reranker else None, progress)
    return holdout.as_json(figures)


def _pairs_stage(settings: Settings, config: PipelineConfig, progress: bool) -> tuple[Any, StageRecord]:
    with KnowledgeBase.open(settings.kb, settings.embedding_model,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        pairs = build_pairs(kb, settings, n=config.pairs, seed=config.seed, progress=progress)
    if not pairs.train or not pairs.holdout:
        raise TuneError(f"{settings.kb}: {len(pairs.train)} training and {len(pairs.holdout)} held-out pairs "
                        "could be made; tuning needs both (ingest more documents, or raise --n)")
    saved = save_pairs(settings.kb, pairs)
    return pairs, StageRecord("pairs", "done", f"{len(pairs.train)} train, {len(pairs.holdout)} held out: {saved}", 0.0)


def _embedder_stage(settings: Settings, pairs: Any, config: PipelineConfig,
                    progress: bool) -> tuple[Settings, StageRecord]:
    """``tune.embedder`` trains, decides and (when kept) re-embeds the chunks itself (the reindex)."""
    with KnowledgeBase.open(settings.kb, settings.embedding_model,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        report = tune_embedder(kb, settings, pairs, config.embedder, progress=progress)
    if report.kept:
        settings = settings.replace(embedding_model=KnowledgeBase.resolve_model(settings.kb, "", store=settings.store))
        detail = f"{report.reason}; {report.reembedded} chunks re-embedded"
    else:
        detail = report.reason
    return settings, StageRecord("embedder", "kept" if report.kept else "not kept", detail, 0.0, report.to_json())


def _reranker_stage(settings: Settings, pairs: Any, config: PipelineConfig,
                    progress: bool) -> tuple[Settings, StageRecord]:
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    with KnowledgeBase.open(settings.kb, embedder.name,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        report = tune_reranker(kb, embedder, settings, pairs, config.reranker, progress)
    if report.kept and report.model_path:
        settings = settings.replace(reranker=report.model_path)
    return settings, StageRecord("reranker", "kept" if report.kept else "not kept", report.reason, 0.0,
                                 report.to_json())


def run(settings: Settings, config: PipelineConfig = PipelineConfig(), progress: bool = False,
        on_step: Callable[[str, int, int], None] | None = None) -> RunRecord:
    """Run ``config.stages`` on the knowledge base ``settings.kb`` and append the run's record there.

    ``settings`` are the knowledge base's (its zhiku.toml read): the "before" models. Pairs come
    from ``<kb>/tune/pairs.jsonl`` when the ``pairs`` stage is not run. ``progress`` draws tqdm
    bars; ``on_step(step, done, total)`` is told each step as it starts (the UI's progress bar).
    """
    unknown = [s for s in config.stages if s not in STAGES]
    if unknown:
        raise TuneError(f"unknown tuning stage(s) {', '.join(unknown)}; the stages are: {', '.join(STAGES)}")
    started = time.perf_counter()
    record = RunRecord(started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                       models_before={"embedding_model": settings.embedding_model, "reranker": settings.reranker})
    stages = [s for s in STAGES if s in config.stages]
    bar = _Steps(len(stages) + 1, progress, on_step)
    pairs = None
    try:
        if "pairs" in stages:
            pairs, stage = _timed(lambda: _pairs_stage(settings, config, progress), bar, "pairs")
            record.stages.append(stage)
        else:
            pairs = load_pairs(settings.kb)
        record.train_pairs, record.held_out = len(pairs.train), len(pairs.holdout)
        bar.start("measure before")
        record.before = _figures(settings, pairs.holdout, progress)
        steps: dict[str, Callable[[Settings], tuple[Settings, StageRecord]]] = {
            "embedder": lambda s: _embedder_stage(s, pairs, config, progress),
            "reranker": lambda s: _reranker_stage(s, pairs, config, progress),
        }
        for name in (s for s in stages if s in steps):
            settings, stage = _timed(lambda: steps[name](settings), bar, name)
            record.stages.append(stage)
        if "evaluate" in stages:
            bar.start("evaluate")
            t = time.perf_counter()
            record.after = _figures(settings, pairs.holdout, progress)
            record.stages.append(StageRecord("evaluate", "done", "held-out pairs, before and after",
                                             round(time.perf_counter() - t, 1)))
    finally:
        bar.close()
    record.models_after = {"embedding_model": settings.embedding_model, "reranker": settings.reranker}
    record.seconds = round(time.perf_counter() - started, 1)
    append_run(settings.kb, record)
    return record


class _Steps:
    """One tqdm bar over the run's steps, and the caller's ``on_step`` told of each."""

    def __init__(self, total: int, progress: bool, on_step: Callable[[str, int, int], None] | None) -> None:
        self.bar = tqdm(total=total, desc="tune", unit="step", disable=not progress)
        self.on_step = on_step
        self.started = False

    def start(self, name: str) -> None:
        if self.started:
            self.bar.update()
        self.started = True
        self.bar.set_description(f"tune: {name}")
        if self.on_step:
            self.on_step(name, self.bar.n, int(self.bar.total))

    def close(self) -> None:
        if self.started:
            self.bar.update()
        self.bar.close()


def _timed(stage: Callable[[], tuple[Any, StageRecord]], bar: _Steps, name: str) -> tuple[Any, StageRecord]:
    bar.start(name)
    t = time.perf_counter()
    value, record = stage()
    record.seconds = round(time.perf_counter() - t, 1)
    return value, record
