"""``zhiku migrate``: copy a folder knowledge base into an empty PostgreSQL store.

Everything is copied in one transaction (a failure or an interrupt leaves the target as empty as
it was): documents, chunks with their vectors, triples, summaries, users, API tokens, feedback,
the audit log, and the ``meta`` rows (manifest and write epoch, so the folder's keyword and graph
files, which are stamped with that epoch, stay valid beside the new store). Row ids are kept:
citations, feedback and audit entries that name an id still name the same row. The vector index
(HNSW) is built once after the rows are in, which is much faster than growing it row by row.

Left behind on purpose: sign-in failures and API jobs (short-lived state), and ``vectors.faiss``
(a PostgreSQL store searches its vectors in SQL).
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zhiku import accounts, audit
from zhiku.errors import KnowledgeBaseError
from zhiku.kb import DATABASE, KnowledgeBase
from zhiku.pg_store import IDENTITY_TABLES, PgConnection, PgStore, is_uri

#: Tables copied, parents before children (the foreign keys are checked as rows arrive).
TABLES = ("documents", "chunks", "triples", "summaries", "users", "api_tokens", "feedback", "audit")
#: Tables made on first use by their owner module: created in the target when the source has them.
_LAZY_SCHEMA = {"api_tokens": accounts._ensure_tokens, "audit": audit.ensure_table}
BATCH = 1000
#: Memory the HNSW index build may use (enough for the graph of about 250k 384-d vectors).
INDEX_BUILD_MEMORY = "512MB"


@dataclass
class MigrateReport:
    """What ``zhiku migrate --json`` prints."""

    source: str
    target: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "counts": self.counts, "seconds": round(self.seconds, 2)}


def migrate(source: Path, target: str, progress: Callable[[int, int], None] = lambda done, total: None,
            ) -> MigrateReport:
    """Copy the folder knowledge base ``source`` into the empty PostgreSQL database ``target``.

    ``progress(rows_done, rows_total)`` is told after each batch. Refuses a target that already
    holds a knowledge base (or any row), naming it: a merge of two knowledge bases is not a copy.
    """
    started = time.perf_counter()
    if not is_uri(target):
        raise KnowledgeBaseError(f"--to {target!r} is not a postgresql:// connection string")
    if not KnowledgeBase.exists(source):
        raise KnowledgeBaseError(f"no knowledge base at {source}: --from names a knowledge base folder")
    store = PgStore(target)
    report = MigrateReport(str(source), store.location)
    # Opening it migrates an older folder schema first (the copy reads the current one).
    with KnowledgeBase.open(source, KnowledgeBase.resolve_model(source, "")) as kb:
        manifest = kb.manifest
    src = sqlite3.connect(f"{(source / DATABASE).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    dst = store.connect()
    try:
        _refuse_non_empty(dst, store)
        src.execute("BEGIN")  # one snapshot of the source
        present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables = [t for t in TABLES if t in present]
        total = sum(src.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
        done = 0
        dst.execute("BEGIN IMMEDIATE")
        try:
            for table in tables:
                if table in _LAZY_SCHEMA:
                    _LAZY_SCHEMA[table](dst)
                copied = 0
                for rows, columns in _batches(src, table):
                    if table == "chunks":
                        at = columns.index("vector")
                        rows = [(*r[:at], np.frombuffer(r[at], dtype=np.float32), *r[at + 1:]) for r in rows]
                    marks = ",".join("?" * len(columns))
                    dst.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                    copied += len(rows)
                    done += len(rows)
                    progress(done, total)
                report.counts[table] = copied
                if table in IDENTITY_TABLES:
                    dst.raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"coalesce(max(id), 0) + 1, false) FROM {table}")
            for key, value in src.execute("SELECT key, value FROM meta WHERE key IN ('manifest', 'epoch')"):
                dst.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            # The HNSW index, built over every row at once; much faster while its graph fits in
            # maintenance_work_mem (PostgreSQL's default, 64 MB, holds about 30k 384-d vectors).
            dst.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            store.sync_manifest(dst, manifest)
            dst.execute("COMMIT")
        except BaseException:
            dst.execute("ROLLBACK")
            raise
    finally:
        src.close()
        dst.close()
    report.seconds = time.perf_counter() - started
    return report


def _batches(src: sqlite3.Connection, table: str) -> Iterator[tuple[list[tuple], list[str]]]:
    """(rows, column names) of ``table`` in rowid order, ``BATCH`` at a time."""
    columns = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
    cursor = src.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
    while rows := cursor.fetchmany(BATCH):
        yield rows, columns


def _refuse_non_empty(conn: PgConnection, store: PgStore) -> None:
    manifest = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "users", "feedback"))
    if manifest is not None or rows:
        raise KnowledgeBaseError(
            f"{store.location} already holds a knowledge base; migrate into an empty database "
            "(CREATE DATABASE a new one, or drop this one's tables if it is a leftover)")
