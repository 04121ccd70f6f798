"""Ingest jobs started through the API: run in the background, their progress kept in the knowledge base.

A job row (table ``api_jobs`` in ``kb.sqlite``) holds who started it, its state (``queued``,
``running``, ``done``, ``failed``), files done of total, and at the end the same report as
``zhiku ingest --json`` (or the error). Keeping jobs in the knowledge base lets every worker
process answer ``GET /v1/jobs/{id}``, whichever started the job. Jobs run one at a time per
process and take the knowledge base's writer lock, like ``zhiku ingest``, so API, UI and CLI
ingests never overlap.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.pipeline import IngestReport
from zhiku import audit
from zhiku.errors import USER_ERRORS, bug_message
from zhiku.kb import KnowledgeBase
from zhiku.records import User

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_jobs ("
    " id TEXT PRIMARY KEY, user TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,"
    " updated_at REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,"
    " report TEXT, error TEXT NOT NULL DEFAULT '')"
)


@dataclass(frozen=True)
class Job:
    id: str
    user: str
    state: str
    created_at: float
    updated_at: float
    done: int
    total: int
    report: dict[str, Any] | None
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "state": self.state, "created_at": self.created_at,
                "updated_at": self.updated_at, "progress": {"done": self.done, "total": self.total},
                "report": self.report, "error": self.error}


#: The pipeline's progress callback: (files done, files in all, the file, its outcome).
Progress = Callable[[int, int, str, str], None]
#: Runs one ingest: (paths, groups, progress callback) -> the report.
IngestRun = Callable[[Sequence[Path], tuple[str, ...], Progress], IngestReport]


class Jobs:
    """Start ingest jobs and read their state; one background thread runs them in order."""

    def __init__(self, kb: KnowledgeBase, run: IngestRun,
                 on_finish: Callable[[Job], None] = lambda job: None) -> None:
        self.kb, self._run, self._on_finish = kb, run, on_finish
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhiku-ingest")

    def _update(self, job_id: str, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        with self.kb.transaction(content=False) as conn:
            conn.execute(_SCHEMA)
            conn.execute(f"UPDATE api_jobs SET {columns}, updated_at = ? WHERE id = ?",
                         (*values.values(), time.time(), job_id))

    def start(self, user: User, paths: Sequence[Path], groups: tuple[str, ...]) -> Job:
        """Queue an ingest of ``paths`` (already checked) as ``user``; returns the queued job."""
        job_id, now = secrets.token_hex(8), time.time()
        with self.kb.transaction(content=False) as conn:
            conn.execute(_SCHEMA)
            conn.execute("INSERT INTO api_jobs (id, user, state, created_at, updated_at, total) VALUES (?,?,?,?,?,?)",
                         (job_id, user.name, QUEUED, now, now, 0))
        self._pool.submit(self._work, job_id, user, list(paths), groups)
        return Job(job_id, user.name, QUEUED, now, now, 0, 0, None, "")  # as stored: the worker may be past it

    def _work(self, job_id: str, user: User, paths: list[Path], groups: tuple[str, ...]) -> None:
        self._update(job_id, state=RUNNING)

        def progress(done: int, total: int, path: str, outcome: str) -> None:
            self._update(job_id, done=done, total=total)

        try:
            report = self._run(paths, groups, progress)
            audit.record_ingest(self.kb, user.name, paths, groups, report)
            self._update(job_id, state=DONE, report=json.dumps(report.to_json(), ensure_ascii=False, default=str))
        except USER_ERRORS as exc:
            self._update(job_id, state=FAILED, error=str(exc))
        except Exception as exc:  # a bug: logged with its traceback, the job says where to look
            self._update(job_id, state=FAILED, error=bug_message(log, f"ingest job {job_id}", exc))
        job = self.get(job_id)
        if job is not None:
            self._on_finish(job)

    def get(self, job_id: str) -> Job | None:
        if not self.kb.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_jobs'"):
            return None
        rows = self.kb.query("SELECT id, user, state, created_at, updated_at, done, total, report, error"
                             " FROM api_jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        r = rows[0]
        return Job(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else None, r[8])

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
