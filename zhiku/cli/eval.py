"""``zhiku eval`` (measure every retrieval mode on a dataset) and ``zhiku eval generate`` (make a dataset).

``zhiku eval --dataset PATH --modes ... --k 1,5,10 --out DIR`` is the run form; ``run`` may be
written explicitly (``zhiku eval run --dataset ...``). ``generate`` is an optional first word.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from eval.datasets import DatasetError
from eval.generate import generate, write_jsonl
from eval.report import summary_table, to_json
from eval.runner import DEFAULT_CACHE, RunConfig, run
from zhiku.cli.common import (
    FAILED, OK, UsageError, add_common, add_user_flags, emit, open_existing, settings_from, user_from_args,
)

if TYPE_CHECKING:
    from tune.pipeline import PipelineConfig

DEFAULT_MODES = "vector,keyword,graph,hybrid,hybrid+rerank"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, metavar="PATH",
                        help="our .jsonl, a BEIR folder, or MultiHop-RAG files (folder or questions .json)")
    parser.add_argument("--modes", default=DEFAULT_MODES, metavar="M1,M2",
                        help=f"retrieval modes to compare (default: {DEFAULT_MODES})")
    parser.add_argument("--k", default="1,5,10", metavar="K1,K2", help="cut-offs (default: 1,5,10)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="report folder (default: eval-out/<dataset>)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N queries")
    parser.add_argument("--corpus", type=Path, metavar="DIR",
                        help="folder the JSONL's relative sources live in (ingested into a cached knowledge base)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                        help=f"where dataset knowledge bases are cached (default: {DEFAULT_CACHE})")
    parser.add_argument("--max-docs", type=int, metavar="N",
                        help="cut a BEIR/MultiHop corpus to the relevant documents plus others up to N (quick looks)")
    parser.add_argument("--depth", type=int, metavar="N", help="chunks retrieved per query (default: 2 x largest k)")
    parser.add_argument("--answers", action="store_true",
                        help="also generate answers (hybrid mode) and score them: exact match, F1, citations, refusals")
    parser.add_argument("--tune", action="store_true",
                        help="first tune a copy of the dataset's corpus knowledge base as `zhiku tune` does (its "
                        "chunks only, never the dataset's questions or labels), then measure with what it kept")
    parser.add_argument("--tune-n", type=int, default=1000, metavar="N", help="--tune: generated pairs (default: 1000)")
    parser.add_argument("--tune-stages", default="pairs,embedder,reranker,evaluate", metavar="S1,S2",
                        help="--tune: stages to run (default: all)")
    parser.add_argument("--tune-max-steps", type=int, default=0, metavar="N",
                        help="--tune: reranker training batches at most (default: 0, one pass)")
    add_common(parser)


def _tune_config(args: argparse.Namespace) -> PipelineConfig | None:
    """The pipeline ``--tune`` runs, from the ``--tune-*`` options (as ``zhiku tune`` takes them)."""
    if not args.tune:
        return None
    from tune.embedder import EmbedderConfig
    from tune.reranker import RerankerConfig
    from zhiku.cli.tune import pipeline_config

    defaults = RerankerConfig()
    return pipeline_config(argparse.Namespace(
        n=args.tune_n, seed=0, stages=args.tune_stages, epochs=defaults.epochs, max_steps=args.tune_max_steps,
        batch_size=defaults.batch_size, margin=defaults.margin, embedder_steps=EmbedderConfig().steps))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure retrieval quality of every mode on a dataset; generate a dataset from your documents",
        description="Run every retrieval mode on the same knowledge base and dataset, write metrics.json, "
        "per_query.jsonl, report.md and plots into --out, and print the table. Sub-command 'generate' "
        "writes a JSONL dataset of questions from the knowledge base.",
    )
    _add_run_options(parser)
    parser.set_defaults(func=run_eval)
    actions = parser.add_subparsers(dest="eval_action", metavar="{run,generate}")
    explicit = actions.add_parser("run", help="the run form, spelled out (same options)")
    _add_run_options(explicit)
    explicit.set_defaults(func=run_eval)
    gen = actions.add_parser(
        "generate", help="write synthetic questions from the knowledge base as a JSONL dataset",
        description="Sample chunks (seeded) and write one question each: by the LLM when one is "
        "configured, else from extracted facts and key-term cloze sentences.",
    )
    gen.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSONL file to write")
    gen.add_argument("--n", type=int, default=50, metavar="N", help="number of questions (default: 50)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    gen.add_argument("--llm", choices=("extractive", "local", "openai"),
                     help="question writer: an LLM backend, or 'extractive' for the template generator")
    add_user_flags(gen, "generate")  # a dataset handed to someone holds only what they may read
    add_common(gen)
    gen.set_defaults(func=run_generate)


def _numbers(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated whole numbers, e.g. {flag} 1,5,10") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} needs at least one number, each 1 or more")
    return values


def run_eval(args: argparse.Namespace) -> int:
    if args.dataset is None:
        raise UsageError("--dataset PATH is required (or use `zhiku eval generate --out FILE`)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes:
        raise UsageError("--modes needs at least one mode, e.g. --modes vector,hybrid")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    settings = settings_from(args)
    out = args.out or Path("eval-out") / args.dataset.stem
    config = RunConfig(
        dataset=args.dataset, modes=modes, ks=_numbers(args.k, "--k"), out=out, limit=args.limit,
        corpus=args.corpus, cache_dir=args.cache, depth=args.depth, max_docs=args.max_docs,
        answers=args.answers, progress=not args.json, tune=_tune_config(args),
    )
    try:
        result, judgements, paths = run(config, settings)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    payload = {**to_json(result, judgements), "out": {kind: str(p) for kind, p in paths.items()}}
    emit(payload, args.json, summary_table(result) + f"\n\nreport: {paths['report']}")
    return FAILED if all(m.skipped for m in result.modes) else OK


def run_generate(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError("--n must be 1 or more")
    settings = settings_from(args, llm=args.llm)
    llm = None
    if settings.llm not in ("auto", "extractive"):  # generating questions with an LLM is asked for, not implied
        from retrieval.llm import load_llm

        llm = load_llm(settings)
    with open_existing(settings) as kb:
        questions = generate(kb, n=args.n, seed=args.seed, llm=llm, user=user_from_args(args, kb),
                             progress=not args.json)
    write_jsonl(questions, args.out)
    kinds = sorted({q.type for q in questions})
    emit({"out": str(args.out), "questions": len(questions), "types": kinds}, args.json,
         f"{len(questions)} questions ({', '.join(kinds) or 'none'}) written to {args.out}")
    return OK if questions else FAILED
