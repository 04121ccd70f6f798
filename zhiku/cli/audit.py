"""``zhiku audit``: print the audit log (sign-ins, questions, downloads, ingests, account and ACL changes)."""
from __future__ import annotations

import argparse
import json

from zhiku.cli.common import OK, add_common, emit, open_existing, settings_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="show who signed in, asked, downloaded, ingested or changed users")
    parser.add_argument("--since", metavar="WHEN",
                        help="only events from then on: a duration back from now (7d, 12h, 30m, 2w) or an ISO date")
    parser.add_argument("--user", metavar="NAME", help="only events of this user")
    add_common(parser)
    parser.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    from zhiku import audit

    since = audit.parse_since(args.since) if args.since else None
    with open_existing(settings_from(args)) as kb:
        records = audit.events(kb, since=since, user=args.user)
    payload = [r.to_json() for r in records]
    lines = [f"{r['time']}  {r['user']}  {r['event']}  {json.dumps(r['detail'], ensure_ascii=False)}"
             for r in payload]
    emit(payload, args.json, "\n".join(lines) or "no audit events match")
    return OK
