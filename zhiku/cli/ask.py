"""``zhiku ask "…"`` (a grounded, cited answer) and ``zhiku summarize SOURCE`` (a document summary).

Both are thin shells over ``retrieval.assistant.Assistant``; ``--json`` output keeps the keys
documented in the README so scripts can rely on them.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from zhiku.cli.common import FAILED, OK, UsageError, add_common, add_user_flags, emit, settings_from, user_from_args
from zhiku.records import Answer
from zhiku.settings import LLM_BACKENDS, MODES


#: Listed here (not imported) so that building the parser does not load the retrieval stack.
MODES_HELP = "vector, keyword, graph, hybrid or hybrid+rerank"
BACKENDS_HELP = "local, openai or extractive"


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser("ask", help="answer a question from the documents, citing the sources")
    ask.add_argument("question", help="the question, in English or Chinese")
    ask.add_argument("--mode", help=f"retrieval mode: {MODES_HELP} (default: the setting `mode`, hybrid)")
    ask.add_argument("--k", type=int, metavar="N", help="passages given to the answer (default: top_k, 5)")
    _add_llm_and_user(ask)
    add_common(ask)
    ask.set_defaults(func=_ask)

    summarize = subparsers.add_parser("summarize", help="summarise one document: summary, key points, entities")
    summarize.add_argument("source", metavar="SOURCE", help="the document's path, stored source or id")
    summarize.add_argument("--refresh", action="store_true", help="recompute even if a current summary is cached")
    _add_llm_and_user(summarize)
    add_common(summarize)
    summarize.set_defaults(func=_summarize)


def _add_llm_and_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", help=f"answer backend: {BACKENDS_HELP} (default: the setting `llm`, extractive)")
    add_user_flags(parser, "answer")


def _run(args: argparse.Namespace, action: Callable[[Any, Any], int], **overrides: Any) -> int:
    """Open the assistant, resolve the user, run ``action``; request problems become one-line errors."""
    from retrieval.assistant import Assistant, AssistantError
    from retrieval.factory import QueryError

    if getattr(args, "mode", None) not in (None, *MODES):
        raise UsageError(f"--mode must be one of {MODES_HELP}, got {args.mode!r}")
    if args.llm not in (None, *LLM_BACKENDS):
        raise UsageError(f"--llm must be one of {BACKENDS_HELP}, got {args.llm!r}")
    settings = settings_from(args, llm=args.llm, **overrides)
    try:
        with Assistant.open(settings) as assistant:
            return action(assistant, user_from_args(args, assistant.kb))
    except QueryError as exc:
        raise UsageError(str(exc)) from exc
    except AssistantError as exc:
        print(f"zhiku {args.command}: {exc}", file=sys.stderr)
        return FAILED


# ------------------------------------------------------------------------------------ ask
def _ask(args: argparse.Namespace) -> int:
    if args.k is not None and args.k < 1:
        raise UsageError("--k must be at least 1")

    from retrieval.llm import describe_llm
    from retrieval.payloads import answer_json, sources_text

    def action(assistant: Any, user: Any) -> int:
        from zhiku.audit import record_question
        record_question(assistant.kb, assistant.settings, user.name, args.question,
                        args.mode or assistant.settings.mode, "ask")
        stream = assistant.ask_stream(args.question, user=user, mode=args.mode, k=args.k)
        live = not args.json and sys.stdout.isatty() and assistant.llm is not None
        streamed = ""
        answer: Answer | None = None
        for item in stream:
            if isinstance(item, Answer):
                answer = item
            elif live:
                streamed += item
                print(item, end="", flush=True)
        assert answer is not None
        for warning in answer.warnings:
            print(f"zhiku ask: warning: {warning}", file=sys.stderr)
        if args.json:
            emit(answer_json(answer, describe_llm(assistant.llm)), True)
        else:
            if live:
                print()
            if not live or answer.text != streamed.strip():
                print(("\nChecked answer:\n" if live else "") + answer.text)
            print(sources_text(answer))
        return OK

    return _run(args, action, mode=args.mode, top_k=args.k)


# ------------------------------------------------------------------------------------ summarize
def _summarize(args: argparse.Namespace) -> int:
    from retrieval.payloads import summary_json

    def action(assistant: Any, user: Any) -> int:
        doc = assistant.document(args.source, user)
        summary = assistant.summarize(doc.id, user, refresh=args.refresh)
        for warning in summary.warnings:
            print(f"zhiku summarize: warning: {warning}", file=sys.stderr)
        payload = summary_json(doc, summary)
        lines = [f"{doc.title or doc.source} ({doc.source})", "", summary.text]
        if summary.key_points:
            lines += ["", "Key points:", *(f"- {p}" for p in summary.key_points)]
        if summary.entities:
            lines += ["", "Key entities: " + ", ".join(summary.entities)]
        emit(payload, args.json, "\n".join(lines))
        return OK

    return _run(args, action)
