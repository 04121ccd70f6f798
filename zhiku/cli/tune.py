"""``zhiku tune ACTION``: fit a setting to one knowledge base. ``fusion`` chooses the hybrid fusion weights.

Each action is one sub-parser added by its own ``_add_<action>`` function and run by its own
``run_<action>`` function; add an action by adding both and one line in ``register``.
"""
from __future__ import annotations

import argparse

from zhiku.cli.common import OK, UsageError, add_common, emit, open_existing, settings_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune", help="fit settings to one knowledge base (fusion weights) from questions generated from it",
        description="Tune a setting to the knowledge base from questions generated from its own documents "
        "(no labels needed); the result is stored in <kb>/zhiku.toml.",
    )
    actions = parser.add_subparsers(dest="tune_action", metavar="ACTION", required=True)
    _add_fusion(actions)


def _add_fusion(actions: argparse._SubParsersAction) -> None:
    fusion = actions.add_parser(
        "fusion", help="choose the hybrid fusion weights of this knowledge base",
        description="Generate questions from the knowledge base (template questions, seeded), score every "
        "weight vector on a grid by nDCG@10 of hybrid on them, and store the best as fusion_weights in "
        "<kb>/zhiku.toml, unless it gains under the margin over the default weights. The choice is never "
        "worse on these questions than the best single retriever. Questions and passages are not printed.",
    )
    fusion.add_argument("--n", type=int, default=100, metavar="N", help="questions to generate (default: 100)")
    fusion.add_argument("--seed", type=int, default=0, help="question sampling seed (default: 0)")
    fusion.add_argument("--step", type=float, default=0.1, metavar="S",
                        help="grid spacing of the weights, dividing 1 (default: 0.1, 66 candidates)")
    fusion.add_argument("--margin", type=float, default=0.01, metavar="D",
                        help="nDCG@10 a candidate must gain over the default weights to be chosen (default: 0.01)")
    fusion.add_argument("--dry-run", action="store_true", help="print the decision, do not write zhiku.toml")
    add_common(fusion)
    fusion.set_defaults(func=run_fusion)


def run_fusion(args: argparse.Namespace) -> int:
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
