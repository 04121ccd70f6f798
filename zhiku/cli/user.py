"""``zhiku user add|list|groups|remove|token``: the accounts that sign in to the UI, with their access
groups, and their API keys for the service (``zhiku serve``).

Every change is recorded in the audit log (``zhiku audit``) by ``zhiku.accounts``.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from zhiku.cli.common import FAILED, OK, UsageError, add_common, emit, open_existing, settings_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("user", help="manage the users who sign in to the UI")
    commands = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="create a user (password prompted, or read from stdin)")
    add.add_argument("name")
    add.add_argument("--groups", default="", metavar="G1,G2", help="access groups, comma-separated")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_common(add)
    add.set_defaults(func=_add)

    listing = commands.add_parser("list", help="list users and their groups")
    add_common(listing)
    listing.set_defaults(func=_list)

    groups = commands.add_parser("groups", help="replace a user's access groups")
    groups.add_argument("name")
    groups.add_argument("groups", metavar="G1,G2", help="the new access groups, comma-separated (\"\" for none)")
    add_common(groups)
    groups.set_defaults(func=_groups)

    remove = commands.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    add_common(remove)
    remove.set_defaults(func=_remove)

    token = commands.add_parser("token", help="API keys for the service (`zhiku serve`): create, list, revoke")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser("create", help="make an API key for a user (printed once, on the last line)")
    create.add_argument("name")
    create.add_argument("--expires", metavar="WHEN",
                        help="when the key stops working: a duration (90d, 12h, 2w) or a date (2027-01-31); "
                             "default: never")
    add_common(create)
    create.set_defaults(func=_token_create)
    token_list = token_commands.add_parser("list", help="list API keys (their first characters, never the keys)")
    token_list.add_argument("name", nargs="?", help="only this user's keys")
    add_common(token_list)
    token_list.set_defaults(func=_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke an API key by its id (from `zhiku user token list`)")
    revoke.add_argument("id", type=int)
    add_common(revoke)
    revoke.set_defaults(func=_token_revoke)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise UsageError("the two passwords differ; run the command again")
    return first


def _add(args: argparse.Namespace) -> int:
    from zhiku.accounts import AccountError, add_user, parse_groups

    try:
        groups = parse_groups(args.groups)
        password = _read_password(args.password_stdin)
        with open_existing(settings_from(args)) as kb:
            account = add_user(kb, args.name, password, groups)
    except AccountError as exc:
        raise UsageError(str(exc)) from exc
    payload = {"name": account.user.name, "groups": list(account.user.groups), "created_at": account.created_at}
    emit(payload, args.json, f"added user {args.name} (groups: {', '.join(groups) or 'none'})")
    return OK


def _list(args: argparse.Namespace) -> int:
    from zhiku.accounts import accounts

    with open_existing(settings_from(args)) as kb:
        found = accounts(kb)
    payload = [{"name": a.user.name, "groups": list(a.user.groups), "created_at": a.created_at} for a in found]
    text = "\n".join(f"{a.user.name}\t{','.join(a.user.groups)}" for a in found) or (
        "no users: the UI runs as one local user who sees everything (`zhiku user add NAME` to add one)"
    )
    emit(payload, args.json, text)
    return OK


def _groups(args: argparse.Namespace) -> int:
    from zhiku.accounts import AccountError, parse_groups, set_groups

    try:
        groups = parse_groups(args.groups)
    except AccountError as exc:
        raise UsageError(str(exc)) from exc
    with open_existing(settings_from(args)) as kb:
        changed = set_groups(kb, args.name, groups)
    if not changed:
        print(f"zhiku user: no user named {args.name!r} (`zhiku user list` shows them)", file=sys.stderr)
        return FAILED
    emit({"name": args.name, "groups": list(groups)}, args.json,
         f"user {args.name} now has groups: {', '.join(groups) or 'none'}")
    return OK


def _remove(args: argparse.Namespace) -> int:
    from zhiku.accounts import remove_user

    with open_existing(settings_from(args)) as kb:
        removed = remove_user(kb, args.name)
    if not removed:
        print(f"zhiku user: no user named {args.name!r} (`zhiku user list` shows them)", file=sys.stderr)
        return FAILED
    emit({"removed": args.name}, args.json, f"removed user {args.name}")
    return OK


# ---------------------------------------------------------------------------------- API keys
def _when(stamp: float | None) -> str:
    import datetime as dt

    return "never" if stamp is None else dt.datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="minutes")


def _token_create(args: argparse.Namespace) -> int:
    from zhiku.accounts import AccountError, create_token
    from zhiku.audit import parse_until

    expires_at = parse_until(args.expires) if args.expires else None
    try:
        with open_existing(settings_from(args)) as kb:
            token, key = create_token(kb, args.name, expires_at)
    except AccountError as exc:
        raise UsageError(str(exc)) from exc
    emit({**token.to_json(token.created_at), "key": key}, args.json,
         f"API key {token.id} for {args.name} (expires: {_when(expires_at)}). It is shown only now: store it "
         f"safely, send it as `Authorization: Bearer KEY`.\n{key}")
    return OK


def _token_list(args: argparse.Namespace) -> int:
    import time

    from zhiku.accounts import tokens

    now = time.time()
    with open_existing(settings_from(args)) as kb:
        found = tokens(kb, args.name)
    lines = [f"{t.id}\t{t.user}\t{t.hint}…\t{'active' if t.active(now) else 'revoked' if t.revoked_at else 'expired'}"
             f"\texpires {_when(t.expires_at)}" for t in found]
    emit([t.to_json(now) for t in found], args.json,
         "\n".join(lines) or "no API keys (`zhiku user token create NAME` makes one)")
    return OK


def _token_revoke(args: argparse.Namespace) -> int:
    from zhiku.accounts import revoke_token

    with open_existing(settings_from(args)) as kb:
        revoked = revoke_token(kb, args.id)
    if not revoked:
        print(f"zhiku user token revoke: no active API key with id {args.id} (`zhiku user token list` shows them)",
              file=sys.stderr)
        return FAILED
    emit({"revoked": args.id}, args.json, f"revoked API key {args.id}")
    return OK
