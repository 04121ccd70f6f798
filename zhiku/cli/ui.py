"""``zhiku ui``: serve the Streamlit app for one knowledge base, on loopback unless ``--host`` says otherwise.

A server reachable from other machines must not be open to whoever finds the port: off loopback it
starts only when sign-in is enforced (users exist and ``require_sign_in`` is on), or when the
operator says ``--allow-anonymous`` on purpose.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from zhiku.cli.common import FAILED, USAGE, add_common, settings_from
from zhiku.kb import KnowledgeBase

LOOPBACK = "127.0.0.1"
#: Streamlit flags: no browser pop-up, no telemetry, no tracebacks or developer menu in the page.
SERVER_FLAGS = (
    "--server.headless", "true",
    "--browser.gatherUsageStats", "false",
    "--client.showErrorDetails", "false",
    "--client.toolbarMode", "minimal",
    "--server.fileWatcherType", "none",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="start the web app (chat, documents, ingest, graph, evaluation)")
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument("--host", default=LOOPBACK,
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--allow-anonymous", action="store_true",
                        help="serve off loopback even though anyone reaching the port could use it without signing in")
    add_common(parser, json_flag=False)
    parser.set_defaults(func=_ui)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_access_refusal(host: str, has_users: bool, require_sign_in: bool, allow_anonymous: bool) -> str | None:
    """Why serving on ``host`` would leave the app open to anyone, or None when it may start."""
    if is_loopback(host) or allow_anonymous or (has_users and require_sign_in):
        return None
    missing = []
    if not has_users:
        missing.append("no users exist (create an admin: `zhiku user add NAME --groups admin`)")
    if not require_sign_in:
        missing.append("require_sign_in is off (set `require_sign_in = true` in zhiku.toml or "
                       "ZHIKU_REQUIRE_SIGN_IN=true)")
    return (f"refusing to serve on {host}, reachable from other machines, without sign-in: "
            f"{'; '.join(missing)}. Fix that, or pass --allow-anonymous to serve it open on purpose")


def streamlit_command(port: int, host: str = LOOPBACK, upload_max_mb: int = 200) -> list[str]:
    """The command line that serves ``ui/app.py`` headless on ``host:port``."""
    import ui

    app = Path(ui.__file__).with_name("app.py")
    return [sys.executable, "-m", "streamlit", "run", str(app), *SERVER_FLAGS, "--server.address", host,
            "--server.port", str(port), "--server.maxUploadSize", str(upload_max_mb)]


def _ui(args: argparse.Namespace) -> int:
    from zhiku.accounts import has_users

    settings = settings_from(args)
    if not KnowledgeBase.exists(settings.kb, settings.store):
        print(
            f"zhiku ui: no knowledge base at {settings.kb.resolve()}. Build one first, e.g. with the sample "
            f"corpus: `zhiku ingest examples/corpus --kb {settings.kb}`, then run `zhiku ui --kb {settings.kb}`",
            file=sys.stderr,
        )
        return FAILED
    with KnowledgeBase.open(settings.kb, settings.embedding_model,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb:
        users = has_users(kb)
    refusal = open_access_refusal(args.host, users, settings.require_sign_in, args.allow_anonymous)
    if refusal:
        print(f"zhiku ui: {refusal}", file=sys.stderr)
        return USAGE
    env = dict(os.environ, ZHIKU_KB=str(settings.kb.resolve()), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if args.embedding_model:
        env["ZHIKU_EMBEDDING_MODEL"] = args.embedding_model
    command = streamlit_command(args.port, args.host, settings.upload_max_mb)
    print(f"Zhiku UI on http://{args.host}:{args.port} (knowledge base {settings.kb.resolve()}); Ctrl+C stops it",
          flush=True)
    # Replace this process, so that stopping `zhiku ui` stops the server with it.
    os.execve(command[0], command, env)
    return FAILED  # pragma: no cover - execve does not return
