"""LoRA adaptation of the local LLM to one knowledge base: train, merge, convert, measure, keep or not.

``tune_llm`` runs the whole loop on the CPU:

1. examples from the knowledge base's public documents (``tune.examples``), a seeded share of the
   questions held out;
2. the base model measured on the held-out examples through the product's own loading path
   (``retrieval.llm.load_llm``: CTranslate2 int8, greedy): how often it cites the gold passage of
   an answerable example, and how often it says "not in the documents" on an unanswerable one;
3. a LoRA adapter (``peft``) trained on the rest, the loss on the reply's tokens only, after the
   prompt rendered exactly as generation renders it (``retrieval.local_llm.chat_text``);
4. the adapter merged into the weights and saved as ``<kb>/models/llm-N`` (fp16 safetensors,
   versioned), converted beside it to ``llm-N-ct2-int8`` by ``retrieval.local_models.ct2_folder``;
5. the merged model measured the same way and kept only when ``decide`` says it behaves better:
   then it is recorded as ``llm_model`` in ``<kb>/zhiku.toml``; else both folders are removed.

The model folders live in the knowledge base's private ``models`` folder (0700), beside the data
they were derived from.
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

from tqdm import tqdm

from eval.answers import is_refusal
from eval.text import contains
from retrieval.citations import CITATION, validate_citations
from retrieval.llm import ReplyStream, load_llm
from retrieval.local_models import CT2_SUFFIX, best_installed, ct2_folder, resolve_local_model
from zhiku.models import model_cache_dir
from retrieval.prompt import prompt_budget
from tune.examples import Example, build_examples, split_held_out
from zhiku.errors import LLMError
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings, save_kb_settings

log = logging.getLogger(__name__)

#: Ignored in the labels: the prompt's tokens are context, not something to learn to write.
IGNORE = -100


@dataclass(frozen=True)
class TuneConfig:
    """What ``zhiku tune llm`` trains and how much (the defaults fit a 2-core CPU in minutes)."""

    #: The base model, as ``llm_model`` takes it; empty: the configured or best installed one.
    model: str = ""
    steps: int = 80
    questions: int = 40
    held_out: float = 0.25
    passages: int = 3
    prompt_tokens: int = 1024
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 5e-4
    #: Tokens generated per held-out reply while measuring (a cited sentence fits).
    max_new_tokens: int = 64
    seed: int = 0


@dataclass
class Behaviour:
    """How a model answers the held-out examples (rates in [0, 1]; None when nothing was measured)."""

    #: Answerable examples whose reply says something, cites the gold passage and does not refuse.
    citation_rate: float | None
    #: Unanswerable examples whose reply says the documents do not hold the answer.
    refusal_rate: float | None
    #: Answerable examples whose reply holds the short gold answer.
    contains_gold: float | None = None
    #: Answerable examples whose reply refuses anyway.
    false_refusals: float | None = None
    answerable: int = 0
    unanswerable: int = 0
    replies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    kept: bool
    reason: str


def decide(base: Behaviour, tuned: Behaviour) -> Decision:
    """Keep the tuned model only if it cites and refuses at least as often as the base, and one of
    the two more often. Each rate guards the other: a model that always refuses never cites, and
    one that always cites never refuses."""
    pairs = [("citation rate", base.citation_rate, tuned.citation_rate),
             ("refusal rate", base.refusal_rate, tuned.refusal_rate)]
    missing = [name for name, before, after in pairs if before is None or after is None]
    if missing:
        return Decision(False, f"not measured: {', '.join(missing)} (too few held-out examples)")
    worse = [f"{name} {before:.2f} -> {after:.2f}" for name, before, after in pairs if after < before]  # type: ignore[operator]
    if worse:
        return Decision(False, "worse " + "; ".join(worse))
    better = [f"{name} {before:.2f} -> {after:.2f}" for name, before, after in pairs if after > before]  # type: ignore[operator]
    if not better:
        return Decision(False, "no better than the base model")
    return Decision(True, "better " + "; ".join(better))


@dataclass
class TuneReport:
    """What one ``zhiku tune llm`` run did, measured and decided (``--json`` prints it)."""

    base_model: str
    candidate: str
    train_examples: int
    held_out_examples: int
    steps: int
    train_s: float
    loss_first: float
    loss_last: float
    base: Behaviour
    tuned: Behaviour
    kept: bool
    reason: str
    model_path: str | None = None
    recorded_in: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The before/after table and the decision, for people."""
        def fmt(value: float | None) -> str:
            return "–" if value is None else f"{value:.2f}"

        rows = [("cites the gold passage (answerable)", "citation_rate"),
                ("says 'not in the documents' (unanswerable)", "refusal_rate"),
                ("holds the gold answer (answerable)", "contains_gold"),
                ("refuses although answerable", "false_refusals")]
        lines = [f"held-out: {self.base.answerable} answerable, {self.base.unanswerable} unanswerable examples; "
                 f"trained on {self.train_examples} examples, {self.steps} steps in {self.train_s:.0f} s "
                 f"(loss {self.loss_first:.2f} -> {self.loss_last:.2f})",
                 "", f"| measure | {self.base_model} | {self.candidate} |", "|---|---|---|"]
        lines += [f"| {title} | {fmt(getattr(self.base, key))} | {fmt(getattr(self.tuned, key))} |" for title, key in rows]
        verdict = f"kept: {self.model_path}" if self.kept else "not kept"
        lines += ["", f"decision: {verdict} ({self.reason})"]
        if self.recorded_in:
            lines.append(f"recorded as llm_model in {self.recorded_in}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ measuring
def measure(llm: Any, examples: Sequence[Example], timeout_s: float, progress: bool = False) -> Behaviour:
    """Generate a reply to every example's prompt and score its citations and refusals."""
    cited, refused, held, false_refusals, replies = [], [], [], [], []
    for example in tqdm(examples, desc="measure", unit="ex", disable=not progress, leave=False):
        reply = ReplyStream(llm, example.prompt.messages, timeout_s)
        for _ in reply:
            pass
        text = reply.text.strip()
        replies.append(text)
        refuses = is_refusal(text)
        if example.answerable:
            _, citations, _ = validate_citations(text, example.prompt.hits)
            says = bool(re.search(r"\w", CITATION.sub("", text)))  # a bare "[1]" answers nothing
            cited.append(says and not refuses and any(c.n == example.cite for c in citations))
            held.append(contains(CITATION.sub("", text), example.gold))
            false_refusals.append(refuses)
        else:
            refused.append(refuses)
    rate = lambda flags: sum(flags) / len(flags) if flags else None  # noqa: E731
    return Behaviour(rate(cited), rate(refused), rate(held), rate(false_refusals), len(cited), len(refused), replies)


# ------------------------------------------------------------------------------------ training
def encode(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    """(input ids, labels): the chat-templated prompt then the reply and the end token, the labels
    hiding the prompt so only the reply is learnt."""
    from retrieval.local_llm import chat_text  # llama-index: loaded by training, not by `zhiku tune --help`

    prompt = tokenizer(chat_text(tokenizer, example.prompt.messages), add_special_tokens=False)["input_ids"]
    reply = tokenizer(example.reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return list(prompt) + reply, [IGNORE] * len(prompt) + reply


def train_adapter(folder: Path, examples: Sequence[Example], config: TuneConfig, progress: bool = False) -> tuple[Any, Any, list[float]]:
    """A LoRA adapter trained on ``examples`` over the model in ``folder``, merged into its weights.

    Returns (merged model, tokenizer, loss per step). One example per step, AdamW, the learning
    rate decaying linearly to zero, gradients clipped at 1.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model_config = AutoConfig.from_pretrained(str(folder))
    if hasattr(model_config, "quantization_config"):  # a GGUF's marker: these weights are dequantised, and
        del model_config.quantization_config          # transformers refuses to save a model it thinks quantised
    base = AutoModelForCausalLM.from_pretrained(str(folder), config=model_config, dtype=torch.float32)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.05, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    model.train()
    encoded = [encode(tokenizer, e) for e in examples]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / max(1, config.steps))
    order: list[int] = []
    rng = random.Random(config.seed)
    losses: list[float] = []
    for _ in tqdm(range(config.steps), desc="train", unit="step", disable=not progress, leave=False):
        if not order:
            order = list(range(len(encoded)))
            rng.shuffle(order)
        ids, labels = encoded[order.pop()]
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    merged = model.merge_and_unload()
    merged.eval()
    return merged, tokenizer, losses


def next_version(models: Path, prefix: str = "llm") -> Path:
    """``models/<prefix>-N`` (``llm-N``, ``reranker-N``): one more than the highest version there."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    versions = [int(m.group(1)) for p in models.iterdir() if (m := pattern.match(p.name))] if models.exists() else []
    return models / f"{prefix}-{max(versions, default=0) + 1}"


def save_merged(model: Any, tokenizer: Any, target: Path) -> Path:
    """Write the merged model as an fp16 safetensors folder at ``target``, atomically."""
    import torch

    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.to(torch.float16).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def remove_model(folder: Path) -> None:
    """Delete a model folder and its CTranslate2 copy."""
    for path in (folder, folder.parent / f"{folder.name}{CT2_SUFFIX}"):
        shutil.rmtree(path, ignore_errors=True)


def record_model(kb_root: Path, folder: Path) -> Path:
    """Set ``llm_model`` to ``folder`` in the knowledge base's zhiku.toml (its other settings kept)."""
    return save_kb_settings(kb_root, {"llm_model": str(folder.resolve())})


# ------------------------------------------------------------------------------------ the whole loop
def tune_llm(kb: KnowledgeBase, settings: Settings, config: TuneConfig, progress: bool = False) -> TuneReport:
    """Train, merge, convert and measure a LoRA-tuned local model; keep it only if it behaves better."""
    name = config.model or settings.llm_model or best_installed()
    if not name:
        raise LLMError("zhiku tune llm needs a base model: --model smollm2|qwen0.5b|qwen1.5b|FOLDER "
                       "(or llm_model in zhiku.toml); install one with `make qwen`")
    cache = Path(settings.model_cache or model_cache_dir()).expanduser()
    local = settings.replace(llm="local", llm_max_new_tokens=config.max_new_tokens)

    base_llm = load_llm(local.replace(llm_model=name))
    budget = min(config.prompt_tokens, prompt_budget(base_llm))
    examples = build_examples(kb, config.questions, base_llm.count_tokens, config.passages, budget, config.seed)
    train, held = split_held_out(examples, config.held_out, config.seed)
    if not train or not held:
        raise LLMError(
            f"{kb.root}: only {len(examples)} training examples could be built from its public documents; "
            "zhiku tune llm needs at least two questions' worth (ingest more public documents, or raise --questions)"
        )
    log.info("%d training and %d held-out examples; measuring %s", len(train), len(held), name)
    base = measure(base_llm, held, settings.llm_timeout_s, progress)
    del base_llm
    gc.collect()

    started = time.perf_counter()
    merged, tokenizer, losses = train_adapter(resolve_local_model(name, cache), train, config, progress)
    train_s = time.perf_counter() - started
    log.info("trained %d steps in %.0f s (loss %.2f -> %.2f)", config.steps, train_s, losses[0], losses[-1])
    models = kb.folder("models")
    target = save_merged(merged, tokenizer, next_version(models))
    del merged
    gc.collect()
    try:
        ct2_folder(target, models)  # converted beside it: llm-N-ct2-int8
        log.info("saved and converted %s; measuring it", target)
        tuned_llm = load_llm(local.replace(llm_model=str(target)))
        tuned = measure(tuned_llm, held, settings.llm_timeout_s, progress)
        del tuned_llm
    except BaseException:
        remove_model(target)
        raise
    decision = decide(base, tuned)
    report = TuneReport(
        name, target.name, len(train), len(held), config.steps, round(train_s, 1), losses[0] if losses else 0.0,
        sum(losses[-5:]) / len(losses[-5:]) if losses else 0.0, base, tuned, decision.kept, decision.reason,
    )
    if decision.kept:
        report.model_path = str(target.resolve())
        report.recorded_in = str(record_model(kb.root, target))
    else:
        remove_model(target)
    return report
