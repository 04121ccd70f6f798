"""``zhiku serve``: the REST API (FastAPI on uvicorn) over one knowledge base, on loopback by default.

Each worker process opens its own ``Assistant`` (models, indexes) from the settings this command
passes on as ``ZHIKU_*`` variables. Off loopback the service starts only when accounts exist, so
every request needs an API key; on loopback without accounts it serves the local user (as the
CLI does), to programs on this machine only.
"""
from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from zhiku.cli.common import FAILED, OK, USAGE, add_common, settings_from
from zhiku.cli.ui import LOOPBACK, is_loopback
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the REST API (search, ask, documents, ingest, OpenAI chat)")
    parser.add_argument("--host", default=LOOPBACK,
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes, each with its own models and indexes (default 1)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="log level of the JSON request log on stderr (default info)")
    add_common(parser, json_flag=False)
    parser.set_defaults(func=run_serve)


def refusal(host: str, has_users: bool) -> str | None:
    """Why serving on ``host`` would leave the knowledge base open to anyone, or None when it may start."""
    if is_loopback(host) or has_users:
        return None
    return (f"refusing to serve on {host}, reachable from other machines, with no users: every request would act "
            "as the local user who sees everything. Create users and their API keys first (`zhiku user add NAME "
            "--groups G1,G2`, `zhiku user token create NAME`), or serve on 127.0.0.1")


def self_call(settings: Settings, host: str, port: int) -> str | None:
    """Why the service would send its own LLM requests to itself (``llm = "openai"`` pointing at the
    address it is about to serve), or None. vLLM's default port is this service's default too."""
    if settings.llm != "openai":
        return None
    target = urlsplit(settings.openai_base_url)
    same_host = target.hostname == host or (is_loopback(target.hostname or "") and is_loopback(host)) \
        or host in ("0.0.0.0", "::")
    if not same_host or (target.port or (443 if target.scheme == "https" else 80)) != port:
        return None
    return (f"openai_base_url {settings.openai_base_url} is this service's own address: its answers would call "
            f"itself. Serve on another port (--port) or point openai_base_url at the LLM server")


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serve.logs import log_config
    from zhiku.accounts import has_users

    if args.workers < 1:
        print("zhiku serve: --workers must be at least 1", file=sys.stderr)
        return USAGE
    settings = settings_from(args)
    if not KnowledgeBase.exists(settings.kb, settings.store):
        print(f"zhiku serve: no knowledge base at {settings.kb.resolve()}; build one first with "
              f"`zhiku ingest PATH --kb {settings.kb}`", file=sys.stderr)
        return FAILED
    with KnowledgeBase.open(settings.kb, settings.embedding_model,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        users = has_users(kb)
    problem = refusal(args.host, users) or self_call(settings, args.host, args.port)
    if problem:
        print(f"zhiku serve: {problem}", file=sys.stderr)
        return USAGE
    os.environ.update(ZHIKU_KB=str(settings.kb.resolve()), ZHIKU_EMBEDDING_MODEL=settings.embedding_model,
                      HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    print(f"Zhiku API on http://{args.host}:{args.port} (docs: /docs, knowledge base {settings.kb.resolve()}, "
          f"{args.workers} worker{'s' if args.workers > 1 else ''}); Ctrl+C stops it", file=sys.stderr, flush=True)
    uvicorn.run("serve.app:app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_config=log_config(args.log_level.upper()), access_log=False)
    return OK
