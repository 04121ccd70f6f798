"""One evaluation run end to end: dataset -> knowledge base -> the product's retrievers -> report.

This is what ``zhiku eval`` and the UI's evaluation page call. The knowledge base is the dataset's
cached one (BEIR and MultiHop-RAG corpora, or our JSONL with a corpus folder), or the configured
knowledge base itself (a dataset generated from it, or one whose sources are its documents).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.datasets import DatasetError, corpus_files, corpus_folder, load_dataset, prepare_kb
from eval.gold import Judgement, resolve
from eval.harness import EVALUATOR, EvalResult, evaluate
from eval.report import write
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder, load_embedder
from zhiku.protocols import Retriever
from zhiku.settings import Settings

if TYPE_CHECKING:
    from tune.pipeline import PipelineConfig, RunRecord

DEFAULT_CACHE = Path("~/.cache/zhiku/eval")


@dataclass
class RunConfig:
    dataset: Path
    modes: Sequence[str]
    ks: Sequence[int]
    out: Path
    limit: int | None = None
    corpus: Path | None = None
    cache_dir: Path = DEFAULT_CACHE
    depth: int | None = None
    max_docs: int | None = None
    #: Also generate answers (in ``answer_mode``) and score them (``eval.answers``).
    answers: bool = False
    answer_mode: str = "hybrid"
    progress: bool = True
    #: Tune a copy of the dataset's corpus knowledge base first (``zhiku eval --tune``): its chunks
    #: only, never the dataset's questions or labels (``tune_corpus``).
    tune: PipelineConfig | None = None


def product_retrievers(
    kb: KnowledgeBase, embedder: Embedder, settings: Settings, modes: Sequence[str]
) -> dict[str, Callable[[], Retriever]]:
    """A factory per mode over one shared graph, built with ``retrieval.build_retriever``.

    The reranker is loaded when ``hybrid+rerank`` is built; when none is configured the factory
    raises the retrieval package's message, and the harness reports the mode as skipped.
    """
    from kg.graph import load_graph
    from retrieval import build_retriever, load_reranker

    shared: dict[str, Any] = {}

    def graph() -> Any:
        if "graph" not in shared:
            shared["graph"] = load_graph(kb)
        return shared["graph"]

    def factory(mode: str) -> Callable[[], Retriever]:
        def build() -> Retriever:
            reranker = None
            if mode.endswith("+rerank"):
                llm = _llm(settings) if settings.reranker.strip() == "llm" else None
                reranker = load_reranker(settings, llm)
            return build_retriever(kb, embedder, settings, mode, graph=graph(), reranker=reranker)

        return build

    return {mode: factory(mode) for mode in modes}


def _llm(settings: Settings) -> Any:
    from retrieval.llm import load_llm

    return load_llm(settings)


def run(
    config: RunConfig, settings: Settings, embedder: Embedder | None = None
) -> tuple[EvalResult, list[Judgement], dict[str, Path]]:
    """Evaluate every mode of ``config`` and write the report into ``config.out``.

    ``embedder`` (else loaded from the settings) must be the model the knowledge base was built with.
    """
    dataset = load_dataset(config.dataset, config.corpus).limited(config.limit, config.max_docs)
    cache = config.cache_dir.expanduser()
    settings = settings.replace(embedding_model=settings.embedding_model or "minilm")
    embedder = embedder or load_embedder(settings.embedding_model, settings.embed_batch_size)
    files = None
    if dataset.records is not None or dataset.corpus_dir is not None:
        settings = settings.replace(kb=prepare_kb(dataset, cache, settings, embedder, config.progress))
        if dataset.records is not None:
            files = corpus_files(dataset, corpus_folder(dataset, cache, settings))
    tuned = None
    if config.tune is not None:
        if files is None and dataset.corpus_dir is None:
            raise DatasetError(f"{config.dataset}: --tune needs a dataset with its own corpus (a BEIR or MultiHop "
                               "folder, or a JSONL with --corpus); tune your own knowledge base with `zhiku tune`")
        settings, embedder, tuned = tune_corpus(settings, config.tune, config.progress)
    from retrieval.factory import fusion_weights

    with KnowledgeBase.open(settings.kb, embedder.name,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        judgements = resolve(dataset, kb, files)
        retrievers = product_retrievers(kb, embedder, settings, config.modes)
        result = evaluate(judgements, retrievers, config.ks, depth=config.depth, dataset=dataset.name,
                          progress=config.progress)
        result.setup.update({
            "embedding_model": embedder.name, "knowledge_base": str(settings.kb), **kb.stats(),
            "fusion_method": settings.fusion_method, "fusion_weights": fusion_weights(settings, embedder),
            "fusion_adapt": settings.fusion_adapt, "reranker": settings.reranker,
            "llm": settings.llm,
        })
        if tuned is not None:
            result.setup["tuning"] = {"stages": {s.name: s.status for s in tuned.stages},
                                      "models": tuned.models_after, "train_pairs": tuned.train_pairs}
            result.notes.append("tuned first on the corpus knowledge base (generated pairs from its chunks, no "
                                "question or label of the dataset): " + "; ".join(
                                    f"{s.name} {s.status}" for s in tuned.stages))
        if config.limit:
            result.notes.append(f"--limit {config.limit}: the first {len(dataset.queries)} queries only")
        if config.max_docs and dataset.records is not None:
            result.notes.append(f"--max-docs {config.max_docs}: corpus cut to {len(dataset.records)} documents "
                                "(the relevant ones plus others): an easier task than the full corpus")
        if config.answers:
            answer_quality(result, judgements, settings, kb, embedder, config)
        paths = write(result, judgements, config.out, config.depth or 2 * max(config.ks))
    return result, judgements, paths


def tune_corpus(settings: Settings, config: PipelineConfig, progress: bool) -> tuple[Settings, Embedder, RunRecord]:
    """Tune a fresh copy of the corpus knowledge base ``settings.kb`` (``<kb>-tuned``) with ``zhiku tune``'s
    pipeline; returns the settings and embedder to measure with, and the run's record.

    It is given the knowledge base alone, so the dataset's questions and labels cannot reach it; the
    cached corpus stays untuned for plain runs.
    """
    import shutil

    from tune.pipeline import run as tune

    target = settings.kb.with_name(settings.kb.name + "-tuned")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(settings.kb, target)
    record = tune(settings.replace(kb=target), config, progress)
    settings = settings.replace(kb=target, **record.models_after)
    return settings, load_embedder(settings.embedding_model, settings.embed_batch_size), record


#: The embedder whose similarity the no-LLM citation judge reads (its thresholds are on MiniLM's scale).
JUDGE_EMBEDDER = "minilm"


def answer_quality(
    result: EvalResult, judgements: list[Judgement], settings: Settings, kb: KnowledgeBase, embedder: Embedder,
    config: RunConfig,
) -> None:
    """Ask every question through the product's ``Assistant`` and add the answer-quality section.

    Citation support is judged by token overlap and embedding similarity, the same for every local
    backend so their figures compare (a small local model judging its own citations is neither
    reliable nor comparable); an ``openai`` backend, a strong external model, judges by reading.
    The similarity is always MiniLM's, whatever the knowledge base embeds with: the judge's
    thresholds are on its scale (E5 puts unrelated sentences at cosine 0.77, so it would pass
    every citation). The report says which. Per-answer rows go to ``answers.jsonl``.
    """
    from eval.answers import LLMJudge, OverlapJudge, evaluate_answers  # loads llama-index: only when asked
    from eval.answers import markdown as answer_markdown
    from retrieval.assistant import Assistant
    from retrieval.llm import describe_llm

    assistant = Assistant(settings, kb, embedder)
    judge = LLMJudge(assistant.llm) if settings.llm == "openai" else OverlapJudge(
        embedder if embedder.name == JUDGE_EMBEDDER else load_embedder(JUDGE_EMBEDDER))
    rows, figures = evaluate_answers(
        [j.query for j in judgements], lambda q: assistant.ask(q, user=EVALUATOR, mode=config.answer_mode), judge, config.progress)
    backend = " ".join(v for v in describe_llm(assistant.llm).values() if v)
    result.extra["answers"] = {"mode": config.answer_mode, "backend": backend, **figures}
    result.sections.append(answer_markdown(figures, config.answer_mode, backend))
    config.out.mkdir(parents=True, exist_ok=True)
    with (config.out / "answers.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
