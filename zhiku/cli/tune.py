"""``zhiku tune ACTION``: adapt a model to this knowledge base, measured before and after.

One table of actions (``ACTIONS``), each with its options and the function that runs it:

- ``llm`` — a LoRA adapter for the local LLM trained on examples built from the knowledge base's
  public documents, merged, converted to CTranslate2 and kept only if it cites and refuses better
  on held-out examples (``tune.llm``).

Tuning reads the knowledge base as its local administrator and writes the models into the
knowledge base's private ``models`` folder.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from zhiku.cli.common import OK, UsageError, add_common, emit, open_existing, settings_from


@dataclass(frozen=True)
class Action:
    help: str
    description: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


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


#: The tuning actions, in the order ``zhiku tune --help`` lists them.
ACTIONS: dict[str, Action] = {
    "llm": Action(
        "train a LoRA adapter for the local LLM on this knowledge base; keep it if it cites and refuses better",
        "Build (question, numbered passages, cited answer or 'not in the documents') examples from the "
        "knowledge base's public documents, train a LoRA adapter on the CPU, merge it, convert it to "
        "CTranslate2 int8 under <kb>/models/llm-N, measure citations and refusals on held-out examples "
        "before and after, and keep it (recorded as llm_model in <kb>/zhiku.toml) only if both are at "
        "least as good and one is better.",
        _llm_options, _run_llm,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    tune = subparsers.add_parser(
        "tune", help="adapt a model to this knowledge base (measured before and after)",
        description="Train a model on data built from the knowledge base itself, measure it against the "
        "current one, and keep it only if it is better.",
    )
    actions = tune.add_subparsers(dest="tune_action", metavar="ACTION", required=True)
    for name, action in ACTIONS.items():
        parser = actions.add_parser(name, help=action.help, description=action.description)
        action.add_options(parser)
        add_common(parser)
        parser.set_defaults(func=action.run)
