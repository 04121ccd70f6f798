"""``zhiku search "…"``: ranked passages without generation, as the asking user may see them
(``--user`` / ``--groups``, see ``zhiku.cli.common.user_from_args``)."""
from __future__ import annotations

import argparse
import sys

from zhiku.cli.common import FAILED, OK, UsageError, add_common, add_user_flags, emit, settings_from, user_from_args
from zhiku.records import Hit


def register(subparsers: argparse._SubParsersAction) -> None:
    from zhiku.settings import MODES

    search = subparsers.add_parser("search", help="show the passages retrieval finds, without generating an answer")
    search.add_argument("query", help="what to look for, in English or Chinese")
    search.add_argument("--mode", choices=MODES, help="retrieval mode (default: the setting `mode`, hybrid)")
    search.add_argument("--k", type=int, metavar="N", help="number of hits (default: the setting `top_k`, 5)")
    add_user_flags(search, "search")
    add_common(search)
    search.set_defaults(func=_search)


def hits_text(hits: list[Hit]) -> str:
    if not hits:
        return "no matching passages"
    lines = []
    for rank, hit in enumerate(hits, 1):
        where = ", ".join(p for p in (
            f"p. {hit.chunk.page}" if hit.chunk.page is not None else "", hit.chunk.section) if p)
        found = ", ".join(f"{name} #{r}" for name, r in hit.found_by.items())
        lines.append(f"{rank}. [{hit.score:.4f}] {hit.document.title or hit.document.source}"
                     f"{f' ({where})' if where else ''} — {hit.document.source}  [{found}]")
        text = " ".join(hit.chunk.text.split())
        lines.append(f"   {text[:300]}{'…' if len(text) > 300 else ''}")
        lines.extend(f"   fact: {f.subject} —{f.relation}→ {f.object}" for f in hit.facts[:3])
    return "\n".join(lines)


def _search(args: argparse.Namespace) -> int:
    from retrieval.assistant import Assistant, AssistantError
    from retrieval.factory import QueryError
    from retrieval.payloads import search_json

    if args.k is not None and args.k < 1:
        raise UsageError("--k must be at least 1")
    settings = settings_from(args, mode=args.mode, top_k=args.k)
    try:
        with Assistant.open(settings) as assistant:
            user = user_from_args(args, assistant.kb)
            from zhiku.audit import record_question
            record_question(assistant.kb, settings, user.name, args.query, args.mode or settings.mode, "search")
            hits = assistant.search(args.query, mode=args.mode, k=args.k, user=user)
    except QueryError as exc:
        raise UsageError(str(exc)) from exc
    except AssistantError as exc:
        print(f"zhiku search: {exc}", file=sys.stderr)
        return FAILED
    emit(search_json(args.query, args.mode or settings.mode, hits), args.json, hits_text(hits))
    return OK
