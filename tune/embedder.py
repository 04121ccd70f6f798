"""Fine-tuning the knowledge base's embedder on its own training pairs (``zhiku tune embedder``).

The loop, on the CPU, and why each step is there:

1. **Pairs** from ``tune.pairs`` (generated queries passing the round-trip filter, hard negatives
   from other documents, feedback). Pairs whose chunks were removed since are dropped.
2. **Before**: the current model on the held-out pairs (other documents than training): recall@k
   and MRR@k of each pair's chunk among an evaluation corpus (the held-out chunks and their
   negatives, plus a seeded sample of the knowledge base up to ``eval_chunks``), from the vectors
   the knowledge base already stores.
3. **Train** with sentence-transformers' own trainer: ``MultipleNegativesRankingLoss`` (or its
   cached variant) over (query, positive, hard negatives), in-batch negatives too, batches without
   duplicate texts, few steps at a low learning rate with warm-up, inputs cut to ``max_tokens``
   for speed. Crude label-free pairs can un-teach a model trained on a billion pairs (issue 12's
   warning), so every one of these is conservative by default.
4. **Average** the tuned weights with the base model's (WiSE-FT, Wortsman et al. 2022): each
   share in ``alphas`` of tuned weights is measured on the held-out pairs, the best kept.
5. **Decide**: the candidate replaces the current model only if its MRR@k is higher by more than
   ``margin`` and its recall@k is not lower. Never a worse model; the decision is printed.
6. **Switch**: the model is saved as ``<kb>/models/embedder-N`` (versioned), exported to ONNX on
   first use exactly as the shipped models are (``zhiku.models.export_onnx``), every chunk is
   re-embedded in one transaction (``KnowledgeBase.reembed``, what ``zhiku reindex
   --embedding-model`` does), the manifest records the folder, and ``embedding_model`` is written
   into the knowledge base's zhiku.toml. The old model is untouched until the re-embed commits;
   a failure removes the new folder and leaves the knowledge base as it was. Earlier
   ``embedder-N`` folders stay, so switching back is ``zhiku reindex --embedding-model FOLDER``.

Trainable bases: sentence-transformers folders (``minilm``, ``minilm-int8``, ``e5``, or a folder).
``e5`` (multilingual-e5-small, ``zhiku.e5``) is the trainable multilingual one, for Chinese
knowledge bases; it is trained with the prompt it embeds with (``query: `` before every text).
The Universal Sentence Encoder (``multilingual``) is a numpy-only encoder with no training path:
such a knowledge base keeps its model (the command says so and names ``e5``).
"""
from __future__ import annotations

import gc
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retrieval.fusion import default_weights
from tune.pairs import PairSet, TrainingPair, chunk_texts, positive_text
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder, default_prompt, load_embedder, minilm_path, model_cache_dir
from zhiku.settings import Settings, save_kb_settings

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^embedder-(\d+)$")
#: Fewest held-out pairs a decision is made on.
MIN_HOLDOUT = 5


@dataclass(frozen=True)
class EmbedderConfig:
    """How much ``zhiku tune embedder`` trains (defaults: minutes on 2 cores, conservative)."""

    steps: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-5
    #: Share of the steps the learning rate warms up over.
    warmup: float = 0.1
    #: Hard negatives per pair fed to the loss (each costs one more passage per pair).
    negatives: int = 1
    #: Tokens per input while training (the saved model keeps the base's own limit).
    max_tokens: int = 128
    #: Shares of tuned weights tried when averaging with the base (1.0: the tuned model itself).
    alphas: tuple[float, ...] = (0.5, 1.0)
    #: Cut-off of the held-out figures.
    k: int = 10
    #: MRR@k a candidate must gain over the current model to replace it.
    margin: float = 0.0
    #: Chunks the held-out pairs are searched among (the whole knowledge base when smaller).
    eval_chunks: int = 3000
    #: ``CachedMultipleNegativesRankingLoss``: big batches in small memory (GradCache), slower.
    cached: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Figures:
    """How well a model finds the held-out pairs' chunks (means over the pairs)."""

    recall: float
    mrr: float
    pairs: int

    def as_dict(self, k: int) -> dict[str, float]:
        return {f"recall@{k}": round(self.recall, 4), f"mrr@{k}": round(self.mrr, 4), "pairs": self.pairs}


@dataclass
class EmbedderReport:
    """What one ``zhiku tune embedder`` run did, measured and decided (``--json`` prints it)."""

    base_model: str
    train_pairs: int
    holdout_pairs: int
    eval_chunks: int
    steps: int
    k: int
    train_s: float
    loss_first: float
    loss_last: float
    before: Figures
    #: Share of tuned weights -> figures, in the order tried.
    candidates: dict[float, Figures]
    chosen_alpha: float | None
    kept: bool
    reason: str
    model_path: str = ""
    reembedded: int = 0
    recorded_in: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["before"] = self.before.as_dict(self.k)
        data["candidates"] = {str(a): f.as_dict(self.k) for a, f in self.candidates.items()}
        return data

    def table(self) -> str:
        k = self.k
        rows = [f"{'model':<28} recall@{k:<3} MRR@{k}",
                f"{'current (' + Path(self.base_model).name + ')':<28} {self.before.recall:>8.3f} {self.before.mrr:>7.3f}"]
        rows += [f"{f'tuned, {alpha:.2f} of its weights':<28} {f.recall:>8.3f} {f.mrr:>7.3f}"
                 + ("  <- chosen" if alpha == self.chosen_alpha else "")
                 for alpha, f in self.candidates.items()]
        lines = [
            f"{self.train_pairs} training pairs, {self.holdout_pairs} held out (other documents), searched among "
            f"{self.eval_chunks} chunks; {self.steps} steps in {self.train_s:.0f} s "
            f"(loss {self.loss_first:.3f} -> {self.loss_last:.3f})",
            *rows,
            f"decision: {'switched' if self.kept else 'kept the current model'}: {self.reason}",
        ]
        if self.kept:
            lines.append(f"re-embedded {self.reembedded} chunks with {self.model_path}; recorded in {self.recorded_in}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ the base
def trainable_base(model: str) -> Path:
    """The sentence-transformers folder behind an ``embedding_model`` setting, or a clear refusal."""
    if model in ("minilm", "minilm-int8"):
        return minilm_path()
    if model == "e5":
        from zhiku.e5 import e5_folder

        return e5_folder(model_cache_dir())
    path = Path(model).expanduser()
    if (path / "modules.json").exists() or (path / "config.json").exists():
        return path
    raise TuneError(
        f"embedding model {model!r} cannot be fine-tuned: only sentence-transformers models (minilm, e5, or a "
        "model folder) have a training path. The multilingual Universal Sentence Encoder is a numpy-only encoder; "
        "for Chinese, re-embed with the trainable multilingual model (`zhiku reindex --embedding-model e5`) and "
        "tune that, or tune the fusion weights (`zhiku tune fusion`) instead"
    )


# ------------------------------------------------------------------------------------ measuring
def evaluation_ids(kb: KnowledgeBase, holdout: Sequence[TrainingPair], size: int, seed: int) -> list[int]:
    """The held-out pairs' chunks and negatives, and a seeded sample of the others up to ``size``."""
    needed = list(dict.fromkeys(i for p in holdout for i in (p.positive, *p.negatives)))
    rest = sorted(set(int(r[0]) for r in kb.query("SELECT id FROM chunks")) - set(needed))
    random.Random(seed).shuffle(rest)
    return sorted(needed + rest[: max(0, size - len(needed))])


def figures(query_vectors: np.ndarray, chunk_vectors: np.ndarray, ids: Sequence[int],
            positives: Sequence[int], k: int) -> Figures:
    """Recall@k and MRR@k of each query's positive among ``ids`` (cosine: vectors are normalised)."""
    if not len(positives):
        return Figures(0.0, 0.0, 0)
    where = {cid: n for n, cid in enumerate(ids)}
    scores = query_vectors @ chunk_vectors.T
    own = scores[np.arange(len(positives)), [where[p] for p in positives]]
    ranks = (scores > own[:, None]).sum(axis=1) + 1  # ties count in the positive's favour
    return Figures(float((ranks <= k).mean()), float(np.where(ranks <= k, 1.0 / ranks, 0.0).mean()), len(positives))


def _encode(model: Any, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
    return np.asarray(model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=progress), dtype=np.float32)


# ------------------------------------------------------------------------------------ training
def training_rows(pairs: Sequence[TrainingPair], texts: dict[int, str], doc_of: dict[int, int], negatives: int,
                  seed: int) -> dict[str, list[str]]:
    """The trainer's columns: anchor, positive, negative_1..n. A pair with fewer mined negatives
    is topped up with seeded random chunks of other documents among the training pairs' own
    (every row needs every column)."""
    rng = random.Random(seed)
    pool = sorted({i for p in pairs for i in (p.positive, *p.negatives) if i in texts})  # no held-out chunk
    columns: dict[str, list[str]] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    for pair in pairs:
        chosen = [n for n in pair.negatives if n in texts][:negatives]
        while len(chosen) < negatives and len(pool) > 1:
            other = rng.choice(pool)
            if doc_of.get(other) != doc_of.get(pair.positive) and other not in chosen:
                chosen.append(other)
        if len(chosen) < negatives:
            continue
        columns["anchor"].append(pair.query)
        columns["positive"].append(positive_text(pair, texts[pair.positive]))
        for i, n in enumerate(chosen):
            columns[f"negative_{i + 1}"].append(texts[n])
    return columns


def train(base: Path, rows: dict[str, list[str]], config: EmbedderConfig, work: Path,
          progress: bool) -> tuple[Any, list[float]]:
    """The base model fine-tuned on ``rows`` by sentence-transformers' trainer; (model, losses)."""
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss,
    )

    torch.manual_seed(config.seed)
    model = SentenceTransformer(str(base), device="cpu")
    limit = model.max_seq_length
    model.max_seq_length = min(limit, config.max_tokens)
    loss = (CachedMultipleNegativesRankingLoss(model, mini_batch_size=8) if config.cached
            else MultipleNegativesRankingLoss(model))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work), max_steps=config.steps, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, warmup_steps=config.warmup, batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no", report_to="none", use_cpu=True, seed=config.seed, data_seed=config.seed,
        logging_steps=max(1, config.steps // 20), disable_tqdm=not progress, dataloader_drop_last=False,
        prompts=default_prompt(base) or None,  # trained as it embeds (E5: "query: " before every text)
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows), loss=loss)
    trainer.remove_callback(PrinterCallback)  # it prints log dicts on stdout, where --json goes
    trainer.train()
    model.max_seq_length = limit
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    return model, losses


def averaged(model: Any, base_state: dict[str, Any], alpha: float) -> None:
    """Set ``model``'s floating-point weights to ``alpha`` tuned + ``1 - alpha`` base, in place."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and name in base_state:
                tensor.copy_(alpha * tensor + (1 - alpha) * base_state[name])


# ------------------------------------------------------------------------------------ versions, switch
def next_version(models: Path) -> Path:
    """``models/embedder-N``: one more than the highest version there."""
    versions = [int(m.group(1)) for p in models.iterdir() if (m := _VERSION.match(p.name))] if models.exists() else []
    return models / f"embedder-{max(versions, default=0) + 1}"


def save_model(model: Any, target: Path) -> Path:
    """Write the sentence-transformers folder at ``target`` atomically (a temporary folder renamed)."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save(str(tmp))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def switch(kb: KnowledgeBase, folder: Path, settings: Settings, progress: bool,
           base: str = "") -> tuple[Embedder, int, Path]:
    """Re-embed every chunk with the model in ``folder`` and make it the knowledge base's model.

    One transaction: until it commits, vectors and manifest stay the old model's; a failure
    removes ``folder`` and re-raises. The ONNX export happens on the first batch (as for the
    shipped models). The tuned model keeps the fusion weights its ``base`` had: where the base
    has defaults of its own (``e5``), they are written into zhiku.toml beside the new model, with
    any weights already set over them. Returns (embedder, chunks re-embedded, zhiku.toml written).
    """
    embedder = load_embedder(str(folder), settings.embed_batch_size)
    try:
        with kb.writer(), tqdm(total=kb.stats()["chunks"], desc="re-embed", unit="chunk", disable=not progress,
                               leave=False) as bar:
            kb.reembed(embedder.name, embedder.dimension, embedder.embed, progress=bar.update)
            count = kb.reindex()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if kb.stats()["triples"]:
        from retrieval.graph import embed_graph_texts

        embed_graph_texts(kb, embedder)  # graph mode's entity and fact vectors, in the new space, now
    changes: dict[str, Any] = {"embedding_model": embedder.name}
    if default_weights(base) != default_weights(embedder.name):
        changes["fusion_weights"] = {**default_weights(base), **settings.fusion_weights}
    return embedder, count, save_kb_settings(kb.root, changes)


def decide(before: Figures, candidates: dict[float, Figures], margin: float) -> tuple[float | None, bool, str]:
    """(chosen share, switch?, why): the best candidate by MRR then recall, switched to only if it
    gains more than ``margin`` MRR and loses no recall."""
    if before.pairs < MIN_HOLDOUT:
        return None, False, f"only {before.pairs} held-out pairs (at least {MIN_HOLDOUT} are needed to decide)"
    alpha, best = max(candidates.items(), key=lambda item: (item[1].mrr, item[1].recall, -item[0]))
    change = f"MRR {before.mrr:.3f} -> {best.mrr:.3f}, recall {before.recall:.3f} -> {best.recall:.3f}"
    if best.mrr - before.mrr <= margin:
        return alpha, False, f"no better on the held-out pairs ({change}; a gain above {margin} MRR is needed)"
    if best.recall < before.recall:
        return alpha, False, f"loses recall on the held-out pairs ({change})"
    return alpha, True, f"better on the held-out pairs ({change}) with {alpha:.2f} of the tuned weights"


# ------------------------------------------------------------------------------------ the whole loop
def tune_embedder(kb: KnowledgeBase, settings: Settings, pairs: PairSet, config: EmbedderConfig = EmbedderConfig(),
                  progress: bool = False, dry_run: bool = False, embedder: Embedder | None = None) -> EmbedderReport:
    """Train, average, measure and (when better, and not ``dry_run``) switch to a tuned embedder.

    ``embedder`` is the knowledge base's current model, when the caller has it loaded already.
    """
    import torch

    current = kb.manifest.embedding_model
    base = trainable_base(current)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    texts = chunk_texts(kb, [i for p in pairs.train + pairs.holdout for i in (p.positive, *p.negatives)])
    train_pairs = [p for p in pairs.train if p.positive in texts]
    holdout = [TrainingPair(p.query, p.positive, tuple(n for n in p.negatives if n in texts), p.origin)
               for p in pairs.holdout if p.positive in texts]
    if not train_pairs:
        raise TuneError(f"{kb.root}: none of the training pairs' chunks is still in the knowledge base; "
                        f"rebuild them with `zhiku tune pairs --kb {kb.root}`")
    doc_of = {cid: c.doc_id for cid, c in kb.chunks_by_ids(sorted(texts)).items()}
    rows = training_rows(train_pairs, texts, doc_of, config.negatives, config.seed)

    ids = evaluation_ids(kb, holdout, config.eval_chunks, config.seed)
    eval_texts = chunk_texts(kb, ids)
    ids = [i for i in ids if i in eval_texts]
    current_embedder = embedder or load_embedder(current, settings.embed_batch_size)
    queries = [p.query for p in holdout]
    positives = [p.positive for p in holdout]
    before = figures(current_embedder.embed(queries), kb.vectors_of(ids), ids, positives, config.k)
    clock["measure_before_s"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="zhiku-tune-") as work:
        t0 = time.perf_counter()
        model, losses = train(base, rows, config, Path(work), progress)
        clock["train_s"] = train_s = time.perf_counter() - t0
    from sentence_transformers import SentenceTransformer

    base_state = {k: v.clone() for k, v in SentenceTransformer(str(base), device="cpu").state_dict().items()}
    tuned_state = {k: v.clone() for k, v in model.state_dict().items()}
    t0 = time.perf_counter()
    candidates: dict[float, Figures] = {}
    chunk_list = [eval_texts[i] for i in ids]
    for alpha in tqdm(sorted(config.alphas), desc="measure", unit="model", disable=not progress, leave=False):
        model.load_state_dict(tuned_state)
        averaged(model, base_state, alpha)
        model.eval()
        with torch.inference_mode():
            candidates[alpha] = figures(_encode(model, queries, 64, False), _encode(model, chunk_list, 32, False),
                                        ids, positives, config.k)
    clock["measure_after_s"] = time.perf_counter() - t0
    alpha, kept, reason = decide(before, candidates, config.margin)
    report = EmbedderReport(
        current, len(rows["anchor"]), len(holdout), len(ids), config.steps, config.k, round(train_s, 1),
        losses[0] if losses else 0.0, sum(losses[-3:]) / len(losses[-3:]) if losses else 0.0, before, candidates,
        alpha, kept and not dry_run, reason if not (kept and dry_run) else f"{reason} (--dry-run: not switched)",
        timings=clock,
    )
    if kept and not dry_run and alpha is not None:
        model.load_state_dict(tuned_state)
        averaged(model, base_state, alpha)
        target = save_model(model, next_version(kb.folder("models")))
        del model, base_state, tuned_state
        gc.collect()
        t0 = time.perf_counter()
        tuned, report.reembedded, recorded = switch(kb, target, settings, progress, base=current)
        clock["switch_s"] = time.perf_counter() - t0
        report.model_path, report.recorded_in = tuned.name, str(recorded)
    clock["total_s"] = time.perf_counter() - started
    report.timings = {k: round(v, 1) for k, v in clock.items()}
    return report

