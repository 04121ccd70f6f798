"""The audit log: who signed in, asked, downloaded, ingested, changed an account or (through an ACL
edit picked up by an ingest) a document's groups, and when.

Rows live in the knowledge base's ``audit`` table (``kb.sqlite``), so the log travels with the
knowledge base and spans every process that serves it (CLI, UI, API). A row holds the time, the
acting user, the event kind and a small JSON detail. Details carry names, paths, modes and counts,
never passage text: the only free text kept is a question as the user typed it, and only while
the ``audit_questions`` setting is on.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zhiku.errors import UsageError
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings

#: The event kinds.
SIGN_IN, QUESTION, DOWNLOAD, INGEST, USER_ADD, USER_REMOVE, USER_GROUPS, ACL_CHANGE = (
    "sign_in", "question", "download", "ingest", "user_add", "user_remove", "user_groups", "acl_change")
#: The service API's kinds: a key made or revoked, and one row per request (route, status, time taken).
TOKEN_CREATE, TOKEN_REVOKE, API_REQUEST = "token_create", "token_revoke", "api_request"

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    user TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
"""

_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class AuditRecord:
    id: int
    time: float
    user: str
    event: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{"id", "time" (ISO 8601, local time with offset), "user", "event", "detail"}``."""
        when = dt.datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="seconds")
        return {"id": self.id, "time": when, "user": self.user, "event": self.event, "detail": self.detail}


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the table inside the caller's transaction (``executescript`` would commit it early)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def record(kb: KnowledgeBase, user: str, event: str, clock: Callable[[], float] = time.time,
           **detail: Any) -> None:
    """Append one event; a bookkeeping write, so it never forces the derived indexes to rebuild."""
    record_many(kb, user, [(event, detail)], clock)


def record_many(kb: KnowledgeBase, user: str, rows: Sequence[tuple[str, dict[str, Any]]],
                clock: Callable[[], float] = time.time) -> None:
    """Append ``(event, detail)`` rows in one transaction (an ACL edit can regroup thousands of documents)."""
    when = clock()
    with kb.transaction(content=False) as conn:
        ensure_table(conn)
        conn.executemany("INSERT INTO audit (time, user, event, detail) VALUES (?,?,?,?)",
                         [(when, user, event, json.dumps(detail, ensure_ascii=False, default=str))
                          for event, detail in rows])


def record_question(kb: KnowledgeBase, settings: Settings, user: str, question: str, mode: str,
                    surface: str) -> None:
    """A question asked on ``surface`` (``ui``, ``ask``, ``search``); its text only with ``audit_questions``."""
    detail: dict[str, Any] = {"mode": mode, "surface": surface}
    if settings.audit_questions:
        detail["question"] = question
    record(kb, user, QUESTION, **detail)


def record_ingest(kb: KnowledgeBase, user: str, paths: Sequence[object], groups: Sequence[str] | None,
                  report: Any) -> None:
    """An ingest run: what was asked for (paths, groups) and the counts of its ``IngestReport``, then
    one ``acl_change`` per stored document whose groups it changed (the groups before and after)."""
    run = {"paths": [str(p) for p in paths], "groups": list(groups or ()), "added": report.added,
           "updated": report.updated, "unchanged": report.unchanged, "removed": report.removed,
           "failed": len(report.failed)}
    changes = [(ACL_CHANGE, {"source": r.source, "before": list(r.before), "after": list(r.after)})
               for r in report.regrouped]
    record_many(kb, user, [(INGEST, run), *changes])


def operator() -> str:
    """Who acts from a terminal (account changes, ingests): the operating-system user running the command."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "cli"


def _parse_time(text: str, now: float | None, sign: int, flag: str) -> float:
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip().lower())
    if match:
        return now + sign * int(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give a duration like 7d, 12h, 30m, 2w or a date like 2026-01-31"
                         ) from None


def parse_since(text: str, now: float | None = None) -> float:
    """``7d``/``12h``/``30m``/``2w`` before ``now``, or an ISO date or date-time (local time unless it
    names an offset) -> a Unix time."""
    return _parse_time(text, now, -1, "--since")


def parse_until(text: str, now: float | None = None) -> float:
    """``30d``/``12h``/``2w`` after ``now``, or an ISO date or date-time -> a Unix time (``--expires``)."""
    return _parse_time(text, now, +1, "--expires")


def events(kb: KnowledgeBase, since: float | None = None, user: str | None = None) -> list[AuditRecord]:
    """Recorded events, oldest first, from ``since`` on and of ``user`` only when given."""
    if not kb.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"):
        return []
    sql, params = "SELECT id, time, user, event, detail FROM audit WHERE 1 = 1", []
    if since is not None:
        sql += " AND time >= ?"
        params.append(since)
    if user is not None:
        sql += " AND user = ?"
        params.append(user)
    rows = kb.query(sql + " ORDER BY id", params)
    return [AuditRecord(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
