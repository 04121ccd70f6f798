"""What every command shares: the knowledge-base and output options, settings, errors -> exit codes."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from zhiku.errors import USER_ERRORS, UsageError, bug_message
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings

OK, FAILED, USAGE = 0, 1, 2

log = logging.getLogger("zhiku.cli")


def add_common(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """``--kb DIR`` (else ``$ZHIKU_KB``, else ``./zhiku-kb``), ``--embedding-model`` and ``--json``."""
    parser.add_argument("--kb", metavar="DIR", help="knowledge base folder (default: $ZHIKU_KB or ./zhiku-kb)")
    parser.add_argument(
        "--embedding-model", metavar="NAME",
        help="minilm, multilingual or a sentence-transformers folder (default: from the knowledge base)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from files and environment, overridden by the flags the user gave."""
    overrides = {"kb": getattr(args, "kb", None), "embedding_model": getattr(args, "embedding_model", None)}
    overrides.update(extra)
    settings = Settings.load(overrides)
    return settings.replace(embedding_model=KnowledgeBase.resolve_model(settings.kb, settings.embedding_model))


def open_existing(settings: Settings) -> KnowledgeBase:
    """Open a knowledge base that must already exist (query-side commands)."""
    return KnowledgeBase.open(settings.kb, settings.embedding_model)


def emit(payload: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``payload`` as JSON, or ``text`` for people."""
    if as_json:
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    elif text is not None:
        print(text)


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"zhiku {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except USER_ERRORS as exc:
        print(f"zhiku {args.command}: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print(f"zhiku {args.command}: interrupted; what was committed is kept, run it again to finish",
              file=sys.stderr)
        return FAILED
    except Exception as exc:  # a bug: the traceback goes to the log, the user gets a reference to it
        print(f"zhiku {args.command}: {bug_message(log, f'zhiku {args.command}', exc)}", file=sys.stderr)
        return FAILED
