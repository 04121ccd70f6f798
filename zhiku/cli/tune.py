"""``zhiku tune ACTION``: adapt Zhiku to this knowledge base, measured before and after.

One table of actions (``ACTIONS``), each with its options and the function that runs it:

- ``fusion`` — the hybrid fusion weights, chosen on questions generated from the knowledge base and
  stored in its zhiku.toml (``tune.fusion``);
- ``llm`` — a LoRA adapter for the local LLM trained on examples built from the knowledge base's
  public documents, merged, converted to CTranslate2 and kept only if it cites and refuses better
  on held-out examples (``tune.llm``);
- ``pairs`` — (query, chunk, hard negatives) training pairs made from the knowledge base without
  labels, saved in ``<kb>/tune/pairs.jsonl`` (``tune.pairs``);
- ``embedder`` — the knowledge base's sentence-transformers embedder fine-tuned on those pairs,
  kept (and the chunks re-embedded) only if it finds the held-out pairs' chunks better (``tune.embedder``);
- ``reranker`` — a cross-encoder trained on the knowledge base's generated pairs, exported to ONNX,
  kept as its ``reranker`` only if ``hybrid+rerank`` beats ``hybrid`` on held-out pairs (``tune.reranker``).

A bare ``zhiku tune`` runs the whole pipeline (``tune.pipeline``): pairs, embedder (and reindex),
reranker, then the before/after evaluation on the held-out pairs.

Tuning reads the knowledge base as its local administrator and writes the models into the
knowledge base's private ``models`` folder.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from typing import TYPE_CHECKING

from zhiku.cli.common import OK, UsageError, add_common, emit, open_existing, settings_from

if TYPE_CHECKING:
    from tune.pairs import PairSet
    from zhiku.kb import KnowledgeBase
    from zhiku.settings import Settings
    from tune.pipeline import PipelineConfig
    from tune.reranker import RerankerConfig


@dataclass(frozen=True)
class Action:
    help: str
    description: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------------ fusion
def _fusion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100, metavar="N", help="questions to generate (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="question sampling seed (default: 0)")
    parser.add_argument("--step", type=float, default=0.1, metavar="S",
                        help="grid spacing of the weights, dividing 1 (default: 0.1, 66 candidates)")
    parser.add_argument("--margin", type=float, default=0.01, metavar="D",
                        help="nDCG@10 a candidate must gain over the default weights to be chosen (default: 0.01)")
    parser.add_argument("--dry-run", action="store_true", help="print the decision, do not write zhiku.toml")


def _run_fusion(args: argparse.Namespace) -> int:
    from tune.fusion import K, Candidate, tune_knowledge_base  # loads the retrievers: only when run
    from zhiku.models import load_embedder
    from zhiku.settings import save_kb_settings

    if args.n < 1:
        raise UsageError("--n must be 1 or more")
    if not 0 < args.step <= 1:
        raise UsageError("--step must be above 0 and at most 1, e.g. 0.1")
    settings = settings_from(args)
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    with open_existing(settings) as kb:
        try:
            decision = tune_knowledge_base(kb, embedder, settings, n=args.n, seed=args.seed, step=args.step,
                                           margin=args.margin, progress=not args.json)
        except ValueError as exc:  # a grid step that does not divide 1
            raise UsageError(f"--step: {exc}") from None
        saved = None if args.dry_run else save_kb_settings(kb.root, {"fusion_weights": decision.chosen.weights})
    payload = {**decision.as_dict(), "method": settings.fusion_method, "adapt": settings.fusion_adapt,
               "saved_to": str(saved) if saved else None}

    def row(c: Candidate) -> str:
        weights = "  ".join(f"{n} {w:.2f}" for n, w in c.weights.items())
        return f"  {weights}   nDCG@{K} {c.ndcg:.3f}  recall@{K} {c.recall:.3f}  {c.label}"

    shown = decision.candidates[:10]
    shown += [c for c in decision.candidates[10:] if c.label]
    text = "\n".join([
        f"{decision.questions} generated questions; {len(decision.candidates)} weight vectors "
        f"({settings.fusion_method} fusion, adaptation {'on' if settings.fusion_adapt else 'off'}); best first:",
        *map(row, shown),
        f"best single retriever: {row(decision.best_single).strip()}",
        f"chosen: {row(decision.chosen).strip()}",
        f"why: {decision.reason}",
        f"saved to {saved}" if saved else "not saved (--dry-run)",
    ])
    emit(payload, args.json, text)
    return OK


# ------------------------------------------------------------------------------------ reranker
def _reranker_config_options(parser: argparse.ArgumentParser) -> None:
    from tune.reranker import RerankerConfig

    defaults = RerankerConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs, metavar="N",
                        help=f"reranker: passes over the training pairs (default: {defaults.epochs})")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, metavar="N",
                        help="reranker: stop after N batches (default: 0, no limit)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, metavar="N",
                        help=f"reranker: examples per batch (default: {defaults.batch_size})")
    parser.add_argument("--margin", type=float, default=defaults.margin, metavar="D",
                        help=f"nDCG@10 the new reranker must gain on the held-out pairs (default: {defaults.margin})")


def _reranker_config(args: argparse.Namespace) -> RerankerConfig:
    from tune.reranker import RerankerConfig

    if args.epochs < 1 or args.max_steps < 0 or args.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be 1 or more, --max-steps 0 or more")
    return RerankerConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                          margin=args.margin)


def _reranker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, metavar="N",
                        help="make N new pairs first (default: the saved <kb>/tune/pairs.jsonl, else 1000 new)")
    parser.add_argument("--seed", type=int, default=0, help="pair sampling seed (default: 0)")
    _audience_option(parser)
    _reranker_config_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="measure and print the decision; keep nothing")


def _run_reranker(args: argparse.Namespace) -> int:
    from tune.pairs import load_pairs, pairs_path
    from tune.reranker import tune_reranker
    from zhiku.models import load_embedder

    config = _reranker_config(args)
    settings = settings_from(args)
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    with open_existing(settings) as kb:
        if args.n is not None or not pairs_path(kb.root).exists():
            pairs = _make_pairs(args, settings, kb, 1000 if args.n is None else args.n)
        else:
            pairs = load_pairs(kb.root)
        report = tune_reranker(kb, embedder, settings, pairs, config, progress=not args.json,
                               record=not args.dry_run)
    emit(report.to_json(), args.json, report.table())
    return OK


# ------------------------------------------------------------------------------------ the whole pipeline
def _pipeline_options(parser: argparse.ArgumentParser) -> None:
    from tune.embedder import EmbedderConfig
    from tune.pipeline import STAGES

    parser.add_argument("--n", type=int, default=1000, metavar="N",
                        help="generated pairs to make, from the documents every user may see (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="pair sampling seed (default: 0)")
    parser.add_argument("--stages", default=",".join(STAGES), metavar="S1,S2",
                        help=f"stages to run, in their order (default: {','.join(STAGES)})")
    parser.add_argument("--embedder-steps", type=int, default=EmbedderConfig().steps, metavar="N",
                        help=f"embedder: training steps (default: {EmbedderConfig().steps}; "
                        "`zhiku tune embedder` has every option)")
    _reranker_config_options(parser)


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The ``PipelineConfig`` of ``zhiku tune``'s (or ``zhiku eval --tune``'s) options."""
    from tune.embedder import EmbedderConfig
    from tune.pipeline import STAGES, PipelineConfig

    if args.n < 1 or args.embedder_steps < 1:
        raise UsageError("--n and --embedder-steps must be 1 or more")
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UsageError(f"--stages takes some of {','.join(STAGES)}; got {args.stages!r}")
    return PipelineConfig(pairs=args.n, seed=args.seed, stages=stages, reranker=_reranker_config(args),
                          embedder=EmbedderConfig(steps=args.embedder_steps, seed=args.seed))


def _run_pipeline(args: argparse.Namespace) -> int:
    from tune.pipeline import run

    config = pipeline_config(args)
    settings = settings_from(args)
    open_existing(settings).close()  # a missing knowledge base fails here, before any model loads
    record = run(settings, config, progress=not args.json)
    emit(record.to_json(), args.json, record.table())
    return OK


# ------------------------------------------------------------------------------------ llm
def _llm_options(parser: argparse.ArgumentParser) -> None:
    from tune.llm import TuneConfig

    defaults = TuneConfig()
    parser.add_argument("--model", metavar="NAME",
                        help="base model: smollm2, qwen0.5b, qwen1.5b or a model folder (default: llm_model, else "
                        "the best installed)")
    parser.add_argument("--steps", type=int, default=defaults.steps, metavar="N",
                        help=f"training steps, one example each (default: {defaults.steps})")
    parser.add_argument("--questions", type=int, default=defaults.questions, metavar="N",
                        help=f"questions generated from the documents, each an answerable and an unanswerable "
                        f"example (default: {defaults.questions})")
    parser.add_argument("--held-out", type=float, default=defaults.held_out, metavar="SHARE",
                        help=f"share of the questions kept out of training to measure on (default: {defaults.held_out})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"sampling seed (default: {defaults.seed})")


def _run_llm(args: argparse.Namespace) -> int:
    from tune.llm import TuneConfig, tune_llm

    if args.steps < 1 or args.questions < 2:
        raise UsageError("--steps must be 1 or more and --questions 2 or more")
    if not 0 < args.held_out < 1:
        raise UsageError("--held-out is a share between 0 and 1, e.g. 0.25")
    settings = settings_from(args)
    config = TuneConfig(model=args.model or "", steps=args.steps, questions=args.questions,
                        held_out=args.held_out, seed=args.seed)
    with open_existing(settings) as kb:
        report = tune_llm(kb, settings, config, progress=not args.json)
    note = ""
    if report.kept and settings.llm not in ("auto", "local"):
        note = f"\nnote: llm = {settings.llm!r} is set, so answers do not use it; set llm = \"local\" to use it"
    emit(report.to_json(), args.json, report.table() + note)
    return OK


# ------------------------------------------------------------------------------------ pairs
def _audience_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all-documents", action="store_true",
                        help="draw pairs from every document, restricted ones too (default: only documents every "
                        "user may see, since the tuned model serves everyone)")


def _pairs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, metavar="N", help="generated pairs to make (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="chunk sampling seed (default: 0)")
    parser.add_argument("--llm", choices=("extractive", "local", "openai"),
                        help="question writer: an LLM backend, or 'extractive' for the offline kinds "
                        "(default: the llm setting when it is local or openai, else offline)")
    _audience_option(parser)


def _make_pairs(args: argparse.Namespace, settings: Settings, kb: KnowledgeBase, n: int) -> PairSet:
    """The pairs ``zhiku tune pairs`` and ``zhiku tune embedder --n`` build, saved in the knowledge base."""
    from tune.fusion import LOCAL_ADMIN
    from tune.pairs import PUBLIC_READER, build_pairs, save_pairs

    if n < 1:
        raise UsageError("--n must be 1 or more")
    audience = LOCAL_ADMIN if args.all_documents else PUBLIC_READER
    pairs = build_pairs(kb, settings, n=n, seed=args.seed, progress=not args.json, audience=audience)
    save_pairs(kb.root, pairs)
    return pairs


def _run_pairs(args: argparse.Namespace) -> int:
    from tune.pairs import pairs_path

    if args.n < 1:
        raise UsageError("--n must be 1 or more")
    settings = settings_from(args, llm=args.llm)
    with open_existing(settings) as kb:
        pairs = _make_pairs(args, settings, kb, args.n)
    counts = pairs.counts()
    payload = {**counts, "saved_to": str(pairs_path(settings.kb)),
               "documents": "all" if args.all_documents else "public"}

    def line(side: str) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in counts[side].items() if k != "pairs")
        return f"  {side:<8} {counts[side]['pairs']:>6} pairs  ({kinds or 'none'})"

    emit(payload, args.json, "\n".join([
        f"training pairs from {'every document' if args.all_documents else 'documents every user may see'}:",
        line("train"), line("holdout"), f"saved to {payload['saved_to']}",
    ]))
    return OK


# ------------------------------------------------------------------------------------ embedder
def _embedder_options(parser: argparse.ArgumentParser) -> None:
    from tune.embedder import EmbedderConfig

    d = EmbedderConfig()
    parser.add_argument("--n", type=int, metavar="N",
                        help="make N new pairs first (default: use <kb>/tune/pairs.jsonl, made with 1000 if missing)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"sampling and training seed (default: {d.seed})")
    _audience_option(parser)
    parser.add_argument("--steps", type=int, default=d.steps, metavar="N", help=f"training steps (default: {d.steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N",
                        help=f"pairs per step; the others' passages are each pair's in-batch negatives (default: {d.batch_size})")
    parser.add_argument("--lr", type=float, default=d.learning_rate, metavar="LR",
                        help=f"peak learning rate, after a {d.warmup:.0%}% warm-up (default: {d.learning_rate})")  # %% for argparse
    parser.add_argument("--negatives", type=int, default=d.negatives, metavar="N",
                        help=f"hard negatives per pair fed to the loss (default: {d.negatives})")
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens, metavar="N",
                        help=f"tokens per input while training, for speed (default: {d.max_tokens})")
    parser.add_argument("--alphas", default=",".join(str(a) for a in d.alphas), metavar="A1,A2",
                        help="shares of tuned weights averaged with the base model's, each measured "
                        f"(default: {','.join(str(a) for a in d.alphas)})")
    parser.add_argument("--margin", type=float, default=d.margin, metavar="D",
                        help=f"held-out MRR@{d.k} a tuned model must gain to replace the current one (default: {d.margin})")
    parser.add_argument("--cached", action="store_true", help="CachedMultipleNegativesRankingLoss (bigger batches, slower)")
    parser.add_argument("--dry-run", action="store_true", help="train and measure, but never switch models")


def _run_embedder(args: argparse.Namespace) -> int:
    from tune.embedder import EmbedderConfig, tune_embedder
    from tune.pairs import load_pairs, pairs_path

    try:
        alphas = tuple(float(a) for a in args.alphas.split(",") if a.strip())
    except ValueError:
        raise UsageError("--alphas takes comma-separated shares, e.g. --alphas 0.5,1") from None
    if not alphas or not all(0 < a <= 1 for a in alphas):
        raise UsageError("--alphas needs shares above 0 and at most 1, e.g. --alphas 0.5,1")
    if args.steps < 1 or args.batch_size < 2 or args.negatives < 0 or args.max_tokens < 8:
        raise UsageError("--steps must be 1 or more, --batch-size 2 or more, --negatives 0 or more, --max-tokens 8 or more")
    if not 0 < args.lr < 1:
        raise UsageError("--lr is a learning rate between 0 and 1, e.g. 1e-5")
    config = EmbedderConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                            negatives=args.negatives, max_tokens=args.max_tokens, alphas=alphas, margin=args.margin,
                            cached=args.cached, seed=args.seed)
    settings = settings_from(args)
    with open_existing(settings) as kb:
        if args.n is not None or not pairs_path(kb.root).exists():
            pairs = _make_pairs(args, settings, kb, 1000 if args.n is None else args.n)
        else:
            pairs = load_pairs(kb.root)
        report = tune_embedder(kb, settings, pairs, config, progress=not args.json, dry_run=args.dry_run)
    emit(report.to_json(), args.json, report.table())
    return OK


#: The tuning actions, in the order ``zhiku tune --help`` lists them.
ACTIONS: dict[str, Action] = {
    "fusion": Action(
        "choose the hybrid fusion weights of this knowledge base",
        "Generate questions from the knowledge base (template questions, seeded), score every "
        "weight vector on a grid by nDCG@10 of hybrid on them, and store the best as fusion_weights in "
        "<kb>/zhiku.toml, unless it gains under the margin over the default weights. The choice is never "
        "worse on these questions than the best single retriever. Questions and passages are not printed.",
        _fusion_options, _run_fusion,
    ),
    "llm": Action(
        "train a LoRA adapter for the local LLM on this knowledge base; keep it if it cites and refuses better",
        "Build (question, numbered passages, cited answer or 'not in the documents') examples from the "
        "knowledge base's public documents, train a LoRA adapter on the CPU, merge it, convert it to "
        "CTranslate2 int8 under <kb>/models/llm-N, measure citations and refusals on held-out examples "
        "before and after, and keep it (recorded as llm_model in <kb>/zhiku.toml) only if both are at "
        "least as good and one is better.",
        _llm_options, _run_llm,
    ),
    "pairs": Action(
        "make (query, chunk, hard negatives) training pairs from this knowledge base, without labels",
        "Sample chunks and ask about each: an LLM-written question when --llm local|openai (or the llm "
        "setting) asks for one, else offline queries (section heading or title, a question from an "
        "extracted fact, an inverse-cloze sentence). A pair is kept only if BM25 or the current embedder "
        "finds its chunk in the top 20; hard negatives come from both, never from the chunk's own "
        "document. Thumbs up/down from the chat are added as real pairs. A fifth of the documents is "
        "held out. Saved in <kb>/tune/pairs.jsonl; only counts are printed.",
        _pairs_options, _run_pairs,
    ),
    "embedder": Action(
        "fine-tune this knowledge base's embedder on its training pairs; switch only if it is better",
        "Train the knowledge base's sentence-transformers model on <kb>/tune/pairs.jsonl (made first when "
        "missing, or with --n) with MultipleNegativesRankingLoss and hard negatives, average the tuned "
        "weights with the base model's, and measure recall@10 and MRR@10 on the held-out pairs before and "
        "after. Only a model that is better (MRR up, recall not down) is saved as <kb>/models/embedder-N "
        "and switched to: every chunk is re-embedded in one transaction (the old model stays until it "
        "commits), the manifest and <kb>/zhiku.toml record the folder. The decision is printed.",
        _embedder_options, _run_embedder,
    ),
    "reranker": Action(
        "train a cross-encoder reranker on this knowledge base; keep it if hybrid+rerank beats hybrid",
        "Train a CrossEncoder from the shipped MiniLM on the knowledge base's generated pairs (the saved "
        "<kb>/tune/pairs.jsonl, or --n new ones) with their hard negatives, export it to ONNX (int8 when "
        "it loses under 0.005 nDCG@10), save it as <kb>/models/reranker-N and set reranker to it in "
        "<kb>/zhiku.toml only if hybrid+rerank beats hybrid (and the current reranker) on the held-out "
        "pairs by the margin. Questions and passages are not printed.",
        _reranker_options, _run_reranker,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    tune = subparsers.add_parser(
        "tune", help="adapt the embedder, a reranker, fusion weights or the local LLM to this knowledge base "
        "(measured before and after)",
        description="Fit a setting or train a model on data built from the knowledge base itself (no labels), "
        "measure it against the current one, and keep it only if it is better. Without an ACTION: the "
        "whole pipeline (pairs, embedder and reindex, reranker, evaluation before/after on held-out "
        "pairs), its record appended to <kb>/tune/runs.jsonl.",
    )
    _pipeline_options(tune)
    add_common(tune)
    tune.set_defaults(func=_run_pipeline)
    actions = tune.add_subparsers(dest="tune_action", metavar="ACTION")
    for name, action in ACTIONS.items():
        parser = actions.add_parser(name, help=action.help, description=action.description)
        action.add_options(parser)
        add_common(parser)
        parser.set_defaults(func=action.run)
