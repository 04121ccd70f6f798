"""``zhiku ui``: serve the Streamlit app on loopback for one knowledge base."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from zhiku.cli.common import FAILED, add_common, settings_from
from zhiku.kb import KnowledgeBase

#: Streamlit flags: no browser pop-up, no telemetry, loopback only, no tracebacks or developer menu in the page.
SERVER_FLAGS = (
    "--server.headless", "true",
    "--browser.gatherUsageStats", "false",
    "--server.address", "127.0.0.1",
    "--client.showErrorDetails", "false",
    "--client.toolbarMode", "minimal",
    "--server.fileWatcherType", "none",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="start the web app (chat, documents, ingest, graph, evaluation)")
    parser.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    add_common(parser, json_flag=False)
    parser.set_defaults(func=_ui)


def streamlit_command(port: int) -> list[str]:
    """The command line that serves ``ui/app.py`` headless on ``127.0.0.1:port``."""
    import ui

    app = Path(ui.__file__).with_name("app.py")
    return [sys.executable, "-m", "streamlit", "run", str(app), *SERVER_FLAGS, "--server.port", str(port)]


def _ui(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if not KnowledgeBase.exists(settings.kb):
        print(
            f"zhiku ui: no knowledge base at {settings.kb.resolve()}. Build one first, e.g. with the sample "
            f"corpus: `zhiku ingest examples/corpus --kb {settings.kb}`, then run `zhiku ui --kb {settings.kb}`",
            file=sys.stderr,
        )
        return FAILED
    env = dict(os.environ, ZHIKU_KB=str(settings.kb.resolve()), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if args.embedding_model:
        env["ZHIKU_EMBEDDING_MODEL"] = args.embedding_model
    command = streamlit_command(args.port)
    print(f"Zhiku UI on http://127.0.0.1:{args.port} (knowledge base {settings.kb.resolve()}); Ctrl+C stops it",
          flush=True)
    # Replace this process, so that stopping `zhiku ui` stops the server with it.
    os.execve(command[0], command, env)
    return FAILED  # pragma: no cover - execve does not return
