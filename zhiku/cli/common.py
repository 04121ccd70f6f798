"""What every command shares: the knowledge-base, output and asking-user options, settings, errors -> exit codes."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from zhiku.errors import USER_ERRORS, UsageError, bug_message
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings

OK, FAILED, USAGE = 0, 1, 2

log = logging.getLogger("zhiku.cli")


def add_common(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """``--kb DIR`` (else ``$ZHIKU_KB``, else ``./zhiku-kb``), ``--embedding-model`` and ``--json``."""
    parser.add_argument("--kb", metavar="DIR", help="knowledge base folder (default: $ZHIKU_KB or ./zhiku-kb)")
    parser.add_argument(
        "--embedding-model", metavar="NAME",
        help="minilm, minilm-int8, multilingual, e5 or a sentence-transformers folder (default: from the knowledge base)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def add_user_flags(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--user NAME`` and ``--groups G1,G2``: whom the command ``verb``s for (see ``user_from_args``)."""
    parser.add_argument("--user", metavar="NAME", help=f"{verb} as this user (their access groups apply)")
    parser.add_argument("--groups", metavar="G1,G2", help=f"{verb} as a member of these access groups")


def user_from_args(args: argparse.Namespace, kb: KnowledgeBase) -> User:
    """The asking user: ``--groups`` explicitly, else the ``--user`` account, else the local user.

    With both, the name comes from ``--user`` and the groups from ``--groups``. ``--groups ""``
    is a user with no groups (public documents only).
    """
    from zhiku.accounts import AccountError, accounts, parse_groups

    name, groups = getattr(args, "user", None), getattr(args, "groups", None)
    if groups is not None:
        try:
            return User(name=name or "cli", groups=parse_groups(groups))
        except AccountError as exc:
            raise UsageError(f"--groups: {exc}") from exc
    if name is not None:
        for account in accounts(kb):
            if account.user.name == name:
                return account.user
        raise UsageError(f"--user: no user named {name!r} in {kb.root} (`zhiku user list` shows them, "
                         f"`zhiku user add {name} --groups G1,G2` adds one)")
    return User(name="local", sees_all=True)


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from files and environment, overridden by the flags the user gave."""
    overrides = {"kb": getattr(args, "kb", None), "embedding_model": getattr(args, "embedding_model", None)}
    overrides.update(extra)
    settings = Settings.load(overrides)
    return settings.replace(embedding_model=KnowledgeBase.resolve_model(settings.kb, settings.embedding_model,
                                                                        store=settings.store))


def open_existing(settings: Settings) -> KnowledgeBase:
    """Open a knowledge base that must already exist (query-side commands)."""
    return KnowledgeBase.open(settings.kb, settings.embedding_model,
                              ann_threshold=settings.ann_threshold, store=settings.store)


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
