"""The knowledge base: one folder that holds everything Zhiku knows about a corpus.

``kb.sqlite`` is the source of truth (documents, chunks with their vectors, triples, summaries,
users, feedback). Row ids are ``AUTOINCREMENT``: an id names one chunk (one document, one triple)
forever, so a reader holding an id from before a re-ingest can never be handed someone else's row.

``vectors.faiss`` is an index derived from it (exact, or approximate from ``ann_threshold`` chunks
on: ``zhiku.vector_index``), stamped with the write epoch it reflects: a
knowledge base whose stamp lags SQLite (a crash between commit and save) or whose file is torn
rebuilds the index from SQLite, so a kill at any moment never leaves orphan or missing vectors. In
memory the index is copy-on-write: a search works on the index object it was handed, which is
never modified; committed writes are applied to a copy that replaces it.

``manifest.json`` says what built the folder (schema version, embedding model, dimension); opening
it with another embedding model is refused instead of silently mixing vector spaces. The same
manifest is recorded in SQLite's ``meta`` table inside the transactions that change it; when the
two disagree (a crash between a re-embed's commit and the file's rewrite) the table is the truth
and the file is rewritten from it.

Concurrency: writes go through one connection, serialised by a lock; reads use a pool of read
connections, and ``snapshot()`` makes several reads see one committed state (WAL gives each read
transaction its own snapshot while a writer commits). ``writer()`` is the cross-process lock one
ingest, reindex or re-embed session holds. Files are private to their owner: folders 0700, files
0600, whatever the umask.

Stores: everything above is the folder store (``_FolderStore``, the default). The ``store``
setting may name a PostgreSQL database instead (``zhiku.pg_store.PgStore``): the same class and
the same SQL (written for SQLite, translated there), with vectors searched in SQL (``nearest``)
instead of a FAISS file, an advisory lock as the writer lock and REPEATABLE READ snapshots.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from zhiku import vector_index
from zhiku.records import PUBLIC, Chunk, Document, Triple, User
from zhiku.settings import Settings
from zhiku.errors import KnowledgeBaseBusyError, KnowledgeBaseError, ModelMismatchError

if TYPE_CHECKING:
    from zhiku.pg_store import PgStore

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
DATABASE = "kb.sqlite"
VECTORS = "vectors.faiss"
VECTORS_STAMP = "vectors.stamp"
WRITER_LOCK = "ingest.lock"
#: Where uploaded originals are saved (by the UI, the service) before they are ingested.
UPLOADS = "uploads"
#: Modes of everything inside a knowledge base: it holds password hashes and every document's text.
FILE_MODE, DIR_MODE = 0o600, 0o700

log = logging.getLogger(__name__)

#: Tables whose rows are named by id: ``AUTOINCREMENT`` so that an id is never given out twice.
_ID_TABLES = {
    "documents": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    mtime REAL NOT NULL DEFAULT 0,
    pages INTEGER,
    language TEXT NOT NULL DEFAULT 'en',
    groups TEXT NOT NULL DEFAULT '["*"]',
    metadata TEXT NOT NULL DEFAULT '{}',
    ingested_at REAL NOT NULL
)""",
    "chunks": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    page INTEGER,
    heading_path TEXT NOT NULL DEFAULT '[]',
    kind TEXT NOT NULL DEFAULT 'text',
    vector BLOB NOT NULL
)""",
    "triples": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    subject_type TEXT NOT NULL DEFAULT '',
    relation TEXT NOT NULL,
    object TEXT NOT NULL,
    object_type TEXT NOT NULL DEFAULT '',
    confidence REAL NOT NULL DEFAULT 1.0
)""",
    "feedback": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    user TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    citations TEXT NOT NULL DEFAULT '[]'
)""",
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, position)",
    "CREATE INDEX IF NOT EXISTS triples_chunk ON triples(chunk_id)",
    "CREATE INDEX IF NOT EXISTS triples_doc ON triples(doc_id)",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    *(f"CREATE TABLE IF NOT EXISTS {name} {body}" for name, body in _ID_TABLES.items()),
    *_INDEXES,
    """CREATE TABLE IF NOT EXISTS summaries (
    doc_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    backend TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
)""",
)


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    embedding_model: str
    dimension: int
    created_at: float


def _parse_manifest(text: str, where: Path) -> Manifest:
    try:
        manifest = Manifest(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise KnowledgeBaseError(f"{where} is damaged ({exc}); restore it or rebuild the knowledge base") from exc
    if manifest.schema_version > SCHEMA_VERSION:
        raise KnowledgeBaseError(
            f"{where} has schema version {manifest.schema_version}; this Zhiku reads up to "
            f"{SCHEMA_VERSION}: upgrade Zhiku"
        )
    return manifest


# ------------------------------------------------------------------ private files
def _owned(path: Path) -> bool:
    """True when this process's user owns ``path``: only then may (and should) we change its mode."""
    try:
        return path.stat().st_uid == os.getuid()
    except FileNotFoundError:
        return False


def _restrict(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode`` if it is ours and differs (a read-only foreign folder is left alone)."""
    if _owned(path) and path.stat().st_mode & 0o777 != mode:
        os.chmod(path, mode)


def private_folder(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself 0700, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _restrict(path, DIR_MODE)
    return path


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary sibling, then rename it into place.

    The temporary file is 0600, flushed to disk before the rename, and the folder is flushed after
    it: a crash at any moment leaves the old file or the new one, complete, never a torn one.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)  # mkstemp's mode survives unless ``write`` recreated the file
        _fsync(Path(tmp))
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def faiss_threads() -> int:
    """OpenMP threads for FAISS: ``ZHIKU_FAISS_THREADS``, else 1.

    A flat search of 100k chunks for one query took 6 ms (p50) with one thread and 32 ms with two
    on this project's 2-core machine under load: the threads' hand-offs cost
    more than the scan they split. Batch searches of many queries are the case for more threads.
    """
    value = os.environ.get("ZHIKU_FAISS_THREADS", "1")
    try:
        return max(1, int(value))
    except ValueError:
        raise KnowledgeBaseError(f"ZHIKU_FAISS_THREADS={value!r} is not a whole number; unset it or give e.g. 1") from None


# ------------------------------------------------------------------ the schema
def _schema_version(conn: sqlite3.Connection) -> int | None:
    """The database's schema version: ``meta``'s, 1 for a database from before it was recorded, None if new."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None:
            return int(row[0])
    return 1 if "documents" in tables else None


def _prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new database, or migrate an older one in place, in one transaction.

    A current database is only read: opening it never waits for another process's write.
    """
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("PRAGMA foreign_keys=OFF")  # before BEGIN (inside, it is ignored): the migration drops tables
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _schema_version(conn)
        if version is not None and version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"{path} has schema version {version}; this Zhiku reads up to {SCHEMA_VERSION}: upgrade Zhiku"
            )
        if version == 1:
            _migrate_v1(conn, path)
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', '0')")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate_v1(conn: sqlite3.Connection, path: Path) -> None:
    """Version 1 -> 2: the id tables become ``AUTOINCREMENT`` (rebuilt, rows and ids kept).

    SQLite cannot change a primary key in place: each table is recreated under a new name, filled,
    the old one dropped and the new one renamed (SQLite's documented procedure, foreign keys off).
    """
    for name, body in _ID_TABLES.items():
        columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({name})"))
        conn.execute(f"CREATE TABLE _v2_{name} {body}")
        conn.execute(f"INSERT INTO _v2_{name} ({columns}) SELECT {columns} FROM {name}")
        conn.execute(f"DROP TABLE {name}")
        conn.execute(f"ALTER TABLE _v2_{name} RENAME TO {name}")
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise KnowledgeBaseError(
            f"{path}: cannot upgrade to schema version {SCHEMA_VERSION}: {len(broken)} rows point to rows "
            f"that do not exist (first: table {broken[0][0]}); restore a backup or rebuild the knowledge base"
        )


class _FolderStore:
    """``kb.sqlite`` in the knowledge base folder, with its FAISS file beside it: the default store.

    The SQLite-specific half of the knowledge base (connections, the schema's creation and
    migration, the manifest file, the ``flock`` writer lock); ``zhiku.pg_store.PgStore`` is its
    PostgreSQL counterpart, chosen by the ``store`` setting.
    """

    vectors_in_sql = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        #: What a damaged manifest is reported in.
        self.truth = root / DATABASE

    def connect(self) -> sqlite3.Connection:
        """The write connection, the database created 0600 first (its -wal/-shm files inherit the mode).

        Only a missing file is created here: opening and closing a descriptor of a database this
        process already has open would drop the process's SQLite locks on it (POSIX locks belong to
        the process and go with any descriptor's close), and another process closing last would
        then delete the WAL and shared-memory files under this one ("disk I/O error").
        """
        root = self.root
        path = root / DATABASE
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            pass
        for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"):
            _restrict(root / name, FILE_MODE)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _prepare_schema(conn, path)
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def read_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / DATABASE, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def recorded_manifest(self) -> Manifest | None:
        """The manifest the folder records: ``meta``'s when SQLite has one (the truth), else the file's."""
        path = self.root / DATABASE
        if path.exists():
            try:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    row = conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
                finally:
                    conn.close()
            except sqlite3.OperationalError:  # no meta table yet (a version 1 or an empty database)
                row = None
            if row is not None:
                return _parse_manifest(row[0], path)
        path = self.root / MANIFEST
        return _parse_manifest(path.read_text(encoding="utf-8"), path) if path.exists() else None

    def sync_manifest(self, conn: sqlite3.Connection, truth: Manifest) -> None:
        """Rewrite manifest.json when it disagrees with ``truth`` (``meta``'s manifest)."""
        path = self.root / MANIFEST
        try:
            on_disk = _parse_manifest(path.read_text(encoding="utf-8"), path)
        except (OSError, KnowledgeBaseError):
            on_disk = None
        if on_disk != truth:
            _write_text(path, json.dumps(asdict(truth), indent=2))

    @staticmethod
    def drop_vector_index(conn: sqlite3.Connection) -> None:
        """Nothing to drop: the FAISS index is rebuilt after a re-embed (``_IndexChange.reset``)."""

    @staticmethod
    def vector_param(vector: np.ndarray) -> bytes:
        return vector.tobytes()

    @staticmethod
    def vector_value(stored: bytes) -> np.ndarray:
        return np.frombuffer(stored, dtype=np.float32)

    @contextmanager
    def writer(self, wait: bool, notify: Callable[[str], None]) -> Iterator[None]:
        """``ingest.lock`` under ``flock``: released when the holder exits, however it exits."""
        fd = os.open(self.root / WRITER_LOCK, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            _restrict(self.root / WRITER_LOCK, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                if not wait:
                    raise KnowledgeBaseBusyError(
                        f"another ingest is running on {self.root} (pid {holder}); try again when it has "
                        "finished, or leave out --no-wait to wait for it"
                    ) from None
                notify(f"another ingest is running on {self.root} (pid {holder}); waiting…")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock


def open_store(root: Path, store: str = "folder") -> _FolderStore | PgStore:
    """The store the ``store`` setting names for the knowledge base whose local folder is ``root``."""
    if store == "folder":
        return _FolderStore(root)
    from zhiku.pg_store import PgStore, is_uri

    if not is_uri(store):
        raise KnowledgeBaseError(
            f"store {store!r} is neither 'folder' nor a postgresql:// connection string; fix the `store` "
            "setting or ZHIKU_STORE")
    return PgStore(store)


@dataclass
class _IndexChange:
    """What one write transaction did to the set of chunk vectors (applied once it commits)."""

    removed: list[np.ndarray] = field(default_factory=list)
    added: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (ids, vectors)
    #: Every vector changed (a re-embed): the index is rebuilt, with this manifest's dimension.
    reset: Manifest | None = None

    @property
    def rows(self) -> int:
        return sum(len(ids) for ids, _ in self.added)


class KnowledgeBase:
    """An open knowledge base folder. Thread-safe: writes serialised by a lock, reads pooled."""

    def __init__(self, root: Path, manifest: Manifest, conn: sqlite3.Connection,
                 ann_threshold: int = Settings.ann_threshold, store: _FolderStore | PgStore | None = None) -> None:
        #: The local folder: the whole knowledge base for the folder store; for a PostgreSQL store
        #: only what is derived from it and rebuildable (keyword and graph indexes, uploads, reports).
        self.root = root
        self.manifest = manifest
        #: Chunks from which the vector index is approximate (``zhiku.vector_index``).
        self.ann_threshold = ann_threshold
        self._store = store or _FolderStore(root)
        #: Where the truth lives, for messages: the folder, or the database (password redacted).
        self.location = self._store.location
        #: Whether vectors are searched in the store's SQL (``nearest``) rather than a FAISS index.
        self.vectors_in_sql = self._store.vectors_in_sql
        self._conn = conn
        self._write_lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []  # every read connection, to close them
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        #: ``conn``: the connection this thread's reads go through (its snapshot or its write).
        self._local = threading.local()
        self._change: _IndexChange | None = None
        # The published index (never modified once published), the epoch it reflects with the
        # pending changes applied, and those changes (applied on a copy when a reader next asks).
        self._index_lock = threading.Lock()
        self._index: faiss.Index | None = None
        self._index_epoch = -1
        self._pending: list[_IndexChange] = []
        self._save_lock = threading.Lock()

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: Path | str, embedding_model: str, dimension: int | None = None,
             ann_threshold: int = Settings.ann_threshold, store: str = "folder") -> KnowledgeBase:
        """Open (or create, when ``dimension`` is given) the knowledge base at ``root``.

        ``ann_threshold``: the ``ann_threshold`` setting (chunks from which the vector index is approximate).
        ``store``: the ``store`` setting: ``folder`` (SQLite in ``root``) or a ``postgresql://``
        connection string (then ``root`` only holds the derived indexes).

        Refuses a knowledge base built with another embedding model, naming both and the fix.
        Migrates an older schema in place.
        """
        root = Path(root)
        backend = open_store(root, store)
        where = backend.location
        recorded = backend.recorded_manifest()
        if recorded is None and dimension is None:
            raise KnowledgeBaseError(
                f"no knowledge base at {where}: ingest something first (`zhiku ingest PATH --kb {root}`)"
            )
        if recorded is not None:
            cls._check_model(where, recorded, embedding_model)
        private_folder(root)
        conn = backend.connect()
        try:
            fresh = Manifest(SCHEMA_VERSION, embedding_model, int(dimension or 0), time.time())
            manifest = cls._settle_manifest(conn, backend, recorded or fresh)
            cls._check_model(where, manifest, embedding_model)  # another process may have created it first
        except BaseException:
            conn.close()
            raise
        return cls(root, manifest, conn, ann_threshold, backend)

    @staticmethod
    def _check_model(where: str, manifest: Manifest, embedding_model: str) -> None:
        if manifest.embedding_model != embedding_model:
            raise ModelMismatchError(
                f"knowledge base {where} was built with embedding model "
                f"{manifest.embedding_model!r} ({manifest.dimension}-d), but the settings ask for "
                f"{embedding_model!r}. Use --embedding-model {manifest.embedding_model}, or "
                f"re-embed everything with `zhiku reindex --embedding-model {embedding_model}`."
            )

    @staticmethod
    def _settle_manifest(conn: sqlite3.Connection, backend: _FolderStore | PgStore, proposed: Manifest) -> Manifest:
        """Record ``proposed`` in ``meta`` unless a manifest is there (the truth); sync the store to it."""
        def recorded() -> tuple[str] | None:
            return conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()

        row = recorded()
        if row is None:
            proposed = Manifest(SCHEMA_VERSION, proposed.embedding_model, proposed.dimension, proposed.created_at)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('manifest', ?)", (json.dumps(asdict(proposed)),))
            row = recorded()
        truth = _parse_manifest(row[0], backend.truth)
        backend.sync_manifest(conn, truth)
        return truth

    @staticmethod
    def resolve_model(root: Path | str, requested: str, default: str = "minilm", store: str = "folder") -> str:
        """The embedding model to use: the one asked for, else the knowledge base's own, else ``default``."""
        if requested:
            return requested
        recorded = open_store(Path(root), store).recorded_manifest()
        return recorded.embedding_model if recorded is not None else default

    @staticmethod
    def exists(root: Path | str, store: str = "folder") -> bool:
        return open_store(Path(root), store).recorded_manifest() is not None

    def folder(self, name: str) -> Path:
        """A private folder inside the knowledge base (``uploads``, ``reports``, ``models``), created 0700."""
        return private_folder(self.root / name)

    def close(self) -> None:
        with self._write_lock, self._pool_lock:
            for conn in [self._conn, *self._readers]:
                conn.close()
            self._readers, self._idle = [], []

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the writer lock
    @contextmanager
    def writer(self, wait: bool = True, notify: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the knowledge base's writer lock: one ingest, reindex or re-embed session at a time.

        The lock (``ingest.lock`` under ``flock`` in a folder, an advisory lock in PostgreSQL) spans
        processes and threads alike and is released when the holder exits, however it exits. Taken
        by another session, it is waited for (``notify`` is told, by default on stderr) or, with
        ``wait=False``, refused with ``KnowledgeBaseBusyError``.
        """
        with self._store.writer(wait, notify or _to_stderr):
            yield

    # ------------------------------------------------------------ transactions
    @property
    def epoch(self) -> int:
        """A counter bumped by every committed write; derived indexes are stamped with it."""
        return int(self.query("SELECT value FROM meta WHERE key='epoch'")[0][0])

    @contextmanager
    def transaction(self, content: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all.

        ``content`` writes (documents, chunks, triples, groups) bump the epoch that stamps the
        derived indexes; bookkeeping writes (summaries, users, feedback) pass ``content=False`` so
        they never force a rebuild of the vector index or the graph. Reads through ``query`` on
        the writing thread see the transaction's own writes.
        """
        with self._write_lock:
            outer = getattr(self._local, "conn", None)
            self._conn.execute("BEGIN IMMEDIATE")
            self._local.conn, self._change = self._conn, _IndexChange()
            try:
                yield self._conn
                if not content:
                    self._conn.execute("COMMIT")
                    return
                self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='epoch'")
                epoch = int(self._conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()[0])
                with self._index_lock:  # no reader sees the new epoch before the index follows it
                    self._conn.execute("COMMIT")
                    self._advance_index(epoch, self._change)
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._local.conn, self._change = outer, None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside (``query`` and everything built on it, on this thread) see one committed state.

        Nested snapshots join the outer one; inside a write transaction, reads see that transaction.
        """
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._reader() as conn:
            conn.execute("BEGIN")
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                conn.execute("ROLLBACK")  # nothing to keep: it only read

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read connection of the pool (opened when every one is busy), returned after use."""
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._store.read_connection()
            with self._pool_lock:
                self._readers.append(conn)
        try:
            yield conn
        finally:
            with self._pool_lock:
                if conn in self._readers:  # not closed meanwhile
                    self._idle.append(conn)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Read-only SQL for the stages that own a table (kg, summaries, eval)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn.execute(sql, params).fetchall()
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()

    # -------------------------------------------------------------- documents
    def put_document(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        triples: Sequence[Sequence[Triple]] = (),
    ) -> Document:
        """Store ``doc`` with its chunks, vectors and triples, replacing any earlier version.

        ``triples`` is aligned with ``chunks`` (the triples of each chunk): chunk ids do not exist
        before the insert, so the knowledge base assigns them.
        """
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.source}: {len(chunks)} chunks but {len(vectors)} vectors")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(chunks) and vectors.shape[1] != self.manifest.dimension:
            raise ValueError(f"{doc.source}: vectors are {vectors.shape[1]}-d, index is {self.manifest.dimension}-d")
        with self.transaction() as conn:
            old = self._delete_document(conn, doc.source)
            now = time.time()
            cur = conn.execute(
                "INSERT INTO documents (source, content_hash, title, kind, size, mtime, pages, language,"
                " groups, metadata, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc.source, doc.content_hash, doc.title, doc.kind, doc.size, doc.mtime, doc.pages,
                    doc.language, json.dumps(list(doc.groups)), json.dumps(doc.metadata, ensure_ascii=False), now,
                ),
            )
            doc_id = int(cur.lastrowid)
            ids = []
            for chunk, vector in zip(chunks, vectors):
                cur = conn.execute(
                    "INSERT INTO chunks (doc_id, position, text, n_tokens, page, heading_path, kind, vector)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (doc_id, chunk.position, chunk.text, chunk.n_tokens, chunk.page,
                     json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.kind,
                     self._store.vector_param(vector)),
                )
                ids.append(int(cur.lastrowid))
            self._insert_triples(conn, doc_id, [(cid, t) for cid, ts in zip(ids, triples) for t in ts])
            self._changed(removed=old, added=(np.array(ids, dtype=np.int64), vectors))
        stored = self.get_document(doc.source)
        assert stored is not None
        return stored

    @staticmethod
    def _insert_triples(conn: sqlite3.Connection, doc_id: int, triples: Iterable[tuple[int, Triple]]) -> None:
        conn.executemany(
            "INSERT INTO triples (chunk_id, doc_id, subject, subject_type, relation, object, object_type,"
            " confidence) VALUES (?,?,?,?,?,?,?,?)",
            [
                (chunk_id, doc_id, t.subject, t.subject_type, t.relation, t.object, t.object_type, t.confidence)
                for chunk_id, t in triples
            ],
        )

    def replace_triples(self, triples_by_doc: dict[int, list[Triple]]) -> None:
        """Replace the stored triples of whole documents (``Triple.chunk_id`` is a real chunk id)."""
        with self.transaction() as conn:
            for doc_id, triples in triples_by_doc.items():
                conn.execute("DELETE FROM triples WHERE doc_id = ?", (doc_id,))
                self._insert_triples(conn, doc_id, [(t.chunk_id, t) for t in triples])

    def set_groups(self, source: str, groups: Sequence[str]) -> tuple[str, ...] | None:
        """Change a stored document's access groups (an ACL edit needs no re-embedding); returns the
        groups it had, or None when it is not stored or already has these."""
        encoded = json.dumps(list(groups))
        rows = self.query("SELECT groups FROM documents WHERE source = ?", (source,))
        if not rows or rows[0][0] == encoded:
            return None
        with self.transaction() as conn:
            conn.execute("UPDATE documents SET groups = ? WHERE source = ?", (encoded, source))
        return tuple(json.loads(rows[0][0]))

    def remove_document(self, source: str) -> bool:
        """Delete a document and everything derived from it; False when it was not stored."""
        with self.transaction() as conn:
            old = self._delete_document(conn, source)
            self._changed(removed=old)
        return old is not None

    @staticmethod
    def _delete_document(conn: sqlite3.Connection, source: str) -> np.ndarray | None:
        row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            return None
        ids = np.array([r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))], dtype=np.int64)
        conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        return ids

    def content_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every stored document (the incremental ingest's memory)."""
        return {r[0]: r[1] for r in self.query("SELECT source, content_hash FROM documents")}

    def get_document(self, key: str | int) -> Document | None:
        column = "id" if isinstance(key, int) else "source"
        rows = self.query(f"{_DOC_SELECT} WHERE d.{column} = ? GROUP BY d.id", (key,))
        return _document(rows[0]) if rows else None

    def find_documents(self, text: str, user: User | None = None) -> list[Document]:
        """Documents whose source path or title contains ``text`` (case-insensitive), visible to ``user``."""
        pattern = f"%{text.lower()}%"
        rows = self.query(
            f"{_DOC_SELECT} WHERE lower(d.source) LIKE ? OR lower(d.title) LIKE ? GROUP BY d.id ORDER BY d.source",
            (pattern, pattern),
        )
        return [d for d in map(_document, rows) if user is None or user.can_see(d.groups)]

    def documents(self, user: User | None = None) -> list[Document]:
        docs = [_document(r) for r in self.query(f"{_DOC_SELECT} GROUP BY d.id ORDER BY d.source")]
        return [d for d in docs if user is None or user.can_see(d.groups)]

    def chunks_of(self, doc_id: int) -> list[Chunk]:
        rows = self.query(f"{_CHUNK_SELECT} WHERE doc_id = ? ORDER BY position", (doc_id,))
        return [_chunk(r) for r in rows]

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """Chunks by id (missing ids are simply absent), fetched in batches under SQLite's variable limit."""
        found: dict[int, Chunk] = {}
        ids = [int(i) for i in ids]
        with self.snapshot():
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                marks = ",".join("?" * len(part))
                for row in self.query(f"{_CHUNK_SELECT} WHERE id IN ({marks})", part):
                    found[row[0]] = _chunk(row)
        return found

    def iter_chunks(self, batch: int = 1000) -> Iterator[Chunk]:
        """Every chunk in id order, read in batches (for indexes built over the whole corpus).

        Each batch is one read; iterate inside ``snapshot()`` for one state across all of them.
        """
        last = 0
        while True:
            rows = self.query(f"{_CHUNK_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            yield from (_chunk(r) for r in rows)
            last = rows[-1][0]

    def triples(self, doc_id: int | None = None) -> list[Triple]:
        sql = ("SELECT subject, relation, object, chunk_id, subject_type, object_type, confidence, doc_id"
               " FROM triples")
        rows = self.query(sql + " WHERE doc_id = ?", (doc_id,)) if doc_id is not None else self.query(sql)
        return [Triple(*r) for r in rows]

    def stats(self) -> dict[str, int]:
        with self.snapshot():
            return {name: self.query(f"SELECT count(*) FROM {name}")[0][0] for name in ("documents", "chunks", "triples")}

    # ---------------------------------------------------------------- vectors
    def _changed(self, removed: np.ndarray | None = None, added: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Note vectors the current write transaction removes or adds; the index follows at commit."""
        assert self._change is not None, "only inside transaction()"
        if removed is not None and len(removed):
            self._change.removed.append(removed)
        if added is not None and len(added[0]):
            self._change.added.append(added)

    def _advance_index(self, epoch: int, change: _IndexChange) -> None:
        """Follow a commit that moved the epoch to ``epoch`` (called with the index lock held).

        The change is queued, not applied: searches may be using the published index. Queued
        changes are applied on a copy when a reader next asks, or once they outgrow the index (so
        a long ingest with no reader copies the index a logarithmic number of times).
        """
        if change.reset is not None:
            self.manifest = change.reset
        if change.reset is not None or self._index is None or self._index_epoch != epoch - 1:
            self._index, self._index_epoch, self._pending = None, -1, []  # rebuilt when next asked for
            return
        self._pending.append(change)
        self._index_epoch = epoch
        if sum(c.rows for c in self._pending) > max(int(self._index.ntotal), 10_000):
            self._apply_pending()

    def _apply_pending(self) -> None:
        """Publish a copy of the index with the queued changes applied (the index lock is held)."""
        if not self._pending:
            return
        assert self._index is not None
        removed = [r for c in self._pending for r in c.removed]
        added = [a for c in self._pending for a in c.added]
        index = faiss.clone_index(self._index)
        gone = np.concatenate(removed) if removed else np.zeros(0, dtype=np.int64)
        if len(gone):
            index.remove_ids(gone)
        if added:
            ids = np.concatenate([a[0] for a in added])
            vectors = np.concatenate([a[1] for a in added])
            keep = ~np.isin(ids, gone)  # added, then removed again before anyone looked
            index.add_with_ids(np.ascontiguousarray(vectors[keep]), ids[keep])
        self._index, self._pending = index, []

    def _current_index(self) -> tuple[faiss.Index, int]:
        """The published index current with the committed epoch, and that epoch.

        An index the knowledge base has outgrown (or shrunk out of: ``vector_index.fits``) is
        rebuilt from SQLite here, so the switch to an approximate index happens by itself.
        """
        with self._index_lock:
            epoch = self.epoch
            if self._index is not None and self._index_epoch == epoch:
                self._apply_pending()
                if not vector_index.fits(self._index, int(self._index.ntotal), self.ann_threshold):
                    self._index = None
            if self._index is None or self._index_epoch != epoch:
                with self.snapshot():  # the epoch and the vectors it stamps: one state
                    epoch = self.epoch
                    faiss.omp_set_num_threads(faiss_threads())
                    self._index, self._pending = self._load_index(epoch) or self._build_index(), []
                    self._index_epoch = epoch
            self._apply_pending()
            assert self._index is not None
            return self._index, epoch

    def vector_index(self) -> faiss.Index:
        """The FAISS index over chunk vectors (ids are chunk ids), loaded or rebuilt as needed:
        exact or approximate by size (search it with ``vector_index.search``).

        The object returned is never modified afterwards: a search may run on it while writers
        commit (they publish a new object). Loading it also sets FAISS's thread count
        (``faiss_threads``): queries search one vector at a time, and splitting that scan across
        OpenMP threads costs more than it saves.
        """
        return self._current_index()[0]

    def nearest(self, vector: np.ndarray, k: int, user: User) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``k`` chunks nearest ``vector`` that ``user`` may see, best
        first, searched in the store's SQL with the access check inside the query (``vectors_in_sql``
        stores only; a folder's retriever searches ``vector_index()``)."""
        assert self.vectors_in_sql, "a folder store searches vector_index()"
        groups = None if user.sees_all else sorted({PUBLIC, *user.groups})
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        def search(conn: object) -> list[tuple[int, float]]:
            return self._store.nearest(conn, vector, int(k), groups, self.manifest.dimension)

        conn = getattr(self._local, "conn", None)
        if conn is not None:
            rows = search(conn)
        elif groups is not None:  # a restricted search may take several queries: one snapshot
            with self.snapshot():
                rows = search(self._local.conn)
        else:
            with self._reader() as conn:
                rows = search(conn)
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float32)

    def _load_index(self, epoch: int) -> faiss.Index | None:
        """vectors.faiss if its stamp says ``epoch`` and it is whole (a torn file is rebuilt, not fatal)."""
        if self.vectors_in_sql:  # no file: searches run in SQL, this index is only for bulk readers
            return None
        path, stamp = self.root / VECTORS, self.root / VECTORS_STAMP
        try:
            if stamp.read_text().strip() != str(epoch):
                return None
            index = faiss.read_index(str(path))
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError) as exc:  # FAISS reports a torn file as RuntimeError
            log.warning("%s is unreadable (%s); rebuilding it from %s", path, str(exc).splitlines()[0], DATABASE)
            return None
        chunks = self.query("SELECT count(*) FROM chunks")[0][0]
        if not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIVFFlat) or index.d != self.manifest.dimension \
                or index.ntotal != chunks:
            log.warning("%s does not match %s; rebuilding it", path, DATABASE)
            return None
        if not vector_index.fits(index, chunks, self.ann_threshold):
            log.info("%s (%s) does not fit %d chunks; rebuilding it", path, vector_index.kind(index), chunks)
            return None
        return index

    def _build_index(self) -> faiss.Index:
        """The index of every chunk vector in SQLite (call inside a snapshot for one consistent state)."""
        n = self.query("SELECT count(*) FROM chunks")[0][0]
        return vector_index.build(self.manifest.dimension, n, self._stored_vectors, self._sample_vectors, self.ann_threshold)

    def _stored_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every chunk, in id order, 5000 at a time."""
        last = 0
        while True:
            rows = self.query("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT 5000", (last,))
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.stack([self._store.vector_value(r[1]) for r in rows])
            yield ids, vectors.reshape(len(rows), self.manifest.dimension)
            last = int(ids[-1])

    def _sample_vectors(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of ``n`` chunks drawn at random, the same ones each time (trains an approximate index)."""
        every = np.array([r[0] for r in self.query("SELECT id FROM chunks")], dtype=np.int64)
        chosen = np.sort(np.random.default_rng(0).choice(every, size=min(n, len(every)), replace=False))
        return chosen, self.vectors_of(chosen)

    def save_vectors(self) -> None:
        """Persist the vector index atomically, stamped with the epoch it reflects (if not already).

        A store that keeps vectors in SQL has nothing to save (its HNSW index commits with the rows)."""
        if self.vectors_in_sql:
            return
        with self._save_lock:
            index, epoch = self._current_index()
            try:
                saved = (self.root / VECTORS_STAMP).read_text().strip()
            except FileNotFoundError:
                saved = None
            if saved != str(epoch):
                self._write_vectors(index, epoch)

    def _write_vectors(self, index: faiss.Index, epoch: int) -> None:
        """The index file first, then its stamp: a crash between leaves a stamp that lags (a rebuild)."""
        atomic_write(self.root / VECTORS, lambda tmp: faiss.write_index(index, str(tmp)))
        _write_text(self.root / VECTORS_STAMP, str(epoch))

    def vectors_of(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of the given chunks, in the given order."""
        dim = self.manifest.dimension
        by_id = {}
        ids = [int(i) for i in chunk_ids]
        with self.snapshot():
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                for cid, blob in self.query(f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(part))})", part):
                    by_id[cid] = self._store.vector_value(blob)
        return np.stack([by_id[i] for i in ids]) if ids else np.zeros((0, dim), dtype=np.float32)

    def reembed(self, embedding_model: str, dimension: int, embed: Callable[[list[str]], np.ndarray],
                progress: Callable[[int], None] = lambda n: None, batch: int = 256) -> None:
        """Re-embed every chunk with another model in one transaction, then switch the manifest.

        The new manifest is recorded in ``meta`` inside the transaction and written to
        manifest.json only after the commit: a failure inside leaves vectors and manifest as they
        were; a crash after the commit leaves a stale file, which the next open rewrites from ``meta``.
        """
        manifest = Manifest(SCHEMA_VERSION, embedding_model, int(dimension), time.time())
        with self.transaction() as conn:
            self._store.drop_vector_index(conn)
            last = 0
            while True:
                rows = conn.execute("SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
                if not rows:
                    break
                vectors = np.ascontiguousarray(embed([r[1] for r in rows]), dtype=np.float32)
                conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                                 [(self._store.vector_param(v), r[0]) for v, r in zip(vectors, rows)])
                last = rows[-1][0]
                progress(len(rows))
            conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps(asdict(manifest)),))
            assert self._change is not None
            self._change.reset = manifest
        with self._write_lock:
            self._store.sync_manifest(self._conn, manifest)

    def reindex(self) -> int:
        """Rebuild the vector index from SQLite and save it; returns the number of vectors.

        In PostgreSQL the HNSW index is PostgreSQL's own, kept with every commit: nothing to rebuild."""
        if self.vectors_in_sql:
            return int(self.query("SELECT count(*) FROM chunks")[0][0])
        with self._save_lock:
            with self._index_lock, self.snapshot():
                epoch = self.epoch
                self._index, self._index_epoch, self._pending = self._build_index(), epoch, []
                index = self._index
            self._write_vectors(index, epoch)
            return int(index.ntotal)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_DOC_SELECT = (
    "SELECT d.id, d.source, d.content_hash, d.title, d.kind, d.size, d.mtime, d.pages, d.language, d.groups,"
    " d.metadata, d.ingested_at, count(c.id) FROM documents d LEFT JOIN chunks c ON c.doc_id = d.id"
)
_CHUNK_SELECT = "SELECT id, doc_id, position, text, n_tokens, page, heading_path, kind FROM chunks"


def _document(row: Sequence) -> Document:
    return Document(
        id=row[0], source=row[1], content_hash=row[2], title=row[3], kind=row[4], size=row[5], mtime=row[6],
        pages=row[7], language=row[8], groups=tuple(json.loads(row[9])), metadata=json.loads(row[10]),
        ingested_at=row[11], n_chunks=row[12],
    )


def _chunk(row: Sequence) -> Chunk:
    return Chunk(
        id=row[0], doc_id=row[1], position=row[2], text=row[3], n_tokens=row[4], page=row[5],
        heading_path=tuple(json.loads(row[6])), kind=row[7],
    )
