"""The knowledge base: one folder that holds everything Zhiku knows about a corpus.

``kb.sqlite`` is the source of truth (documents, chunks with their vectors, triples, summaries,
users, feedback). ``vectors.faiss`` is an index derived from it, stamped with the write epoch it
reflects: a knowledge base whose stamp lags SQLite (a crash between commit and save) rebuilds the
index from SQLite on open, so a kill at any moment never leaves orphan or missing vectors.
``manifest.json`` says what built the folder (schema version, embedding model, dimension); opening
it with another embedding model is refused instead of silently mixing vector spaces.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from zhiku.records import Chunk, Document, Triple, User
from zhiku.errors import KnowledgeBaseError, ModelMismatchError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "kb.sqlite"
VECTORS = "vectors.faiss"
VECTORS_STAMP = "vectors.stamp"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
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
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    page INTEGER,
    heading_path TEXT NOT NULL DEFAULT '[]',
    kind TEXT NOT NULL DEFAULT 'text',
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, position);
CREATE TABLE IF NOT EXISTS triples (
    id INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    subject_type TEXT NOT NULL DEFAULT '',
    relation TEXT NOT NULL,
    object TEXT NOT NULL,
    object_type TEXT NOT NULL DEFAULT '',
    confidence REAL NOT NULL DEFAULT 1.0
);
CREATE INDEX IF NOT EXISTS triples_chunk ON triples(chunk_id);
CREATE INDEX IF NOT EXISTS triples_doc ON triples(doc_id);
CREATE TABLE IF NOT EXISTS summaries (
    doc_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    backend TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    user TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    citations TEXT NOT NULL DEFAULT '[]'
);
"""




@dataclass(frozen=True)
class Manifest:
    schema_version: int
    embedding_model: str
    dimension: int
    created_at: float


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary sibling, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
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


class KnowledgeBase:
    """An open knowledge base folder. Thread-safe: one connection, writes serialised by a lock."""

    def __init__(self, root: Path, manifest: Manifest, conn: sqlite3.Connection) -> None:
        self.root = root
        self.manifest = manifest
        self._conn = conn
        self._lock = threading.RLock()
        self._index: faiss.IndexIDMap2 | None = None
        self._index_epoch = -1

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: Path | str, embedding_model: str, dimension: int | None = None) -> KnowledgeBase:
        """Open (or create, when ``dimension`` is given) the knowledge base at ``root``.

        Refuses a folder built with another embedding model, naming both and the fix.
        """
        root = Path(root)
        manifest_path = root / MANIFEST
        if manifest_path.exists():
            manifest = cls._read_manifest(manifest_path)
            if manifest.embedding_model != embedding_model:
                raise ModelMismatchError(
                    f"knowledge base {root} was built with embedding model "
                    f"{manifest.embedding_model!r} ({manifest.dimension}-d), but the settings ask for "
                    f"{embedding_model!r}. Use --embedding-model {manifest.embedding_model}, or "
                    f"re-embed everything with `zhiku reindex --embedding-model {embedding_model}`."
                )
        elif dimension is None:
            raise KnowledgeBaseError(
                f"no knowledge base at {root}: ingest something first (`zhiku ingest PATH --kb {root}`)"
            )
        else:
            root.mkdir(parents=True, exist_ok=True)
            manifest = Manifest(SCHEMA_VERSION, embedding_model, int(dimension), time.time())
            _write_text(manifest_path, json.dumps(manifest.__dict__, indent=2))
        conn = sqlite3.connect(root / DATABASE, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', '0')")
        return cls(root, manifest, conn)

    @staticmethod
    def resolve_model(root: Path | str, requested: str, default: str = "minilm") -> str:
        """The embedding model to use: the one asked for, else the folder's own, else ``default``."""
        if requested:
            return requested
        path = Path(root) / MANIFEST
        return KnowledgeBase._read_manifest(path).embedding_model if path.exists() else default

    @staticmethod
    def exists(root: Path | str) -> bool:
        return (Path(root) / MANIFEST).exists()

    @staticmethod
    def _read_manifest(path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            manifest = Manifest(**data)
        except (ValueError, TypeError) as exc:
            raise KnowledgeBaseError(f"{path} is damaged ({exc}); restore it or rebuild the knowledge base") from exc
        if manifest.schema_version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"{path} has schema version {manifest.schema_version}; this Zhiku reads up to "
                f"{SCHEMA_VERSION}: upgrade Zhiku"
            )
        return manifest

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions
    @property
    def epoch(self) -> int:
        """A counter bumped by every committed write; derived indexes are stamped with it."""
        return int(self._conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()[0])

    @contextmanager
    def transaction(self, content: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all.

        ``content`` writes (documents, chunks, triples, groups) bump the epoch that stamps the
        derived indexes; bookkeeping writes (summaries, users, feedback) pass ``content=False`` so
        they never force a rebuild of the vector index or the graph.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                if content:
                    self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='epoch'")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Read-only SQL for the stages that own a table (kg, summaries, eval)."""
        with self._lock:
            cur = self._conn.execute(sql, params)
            return cur.fetchall()

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
                     json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.kind, vector.tobytes()),
                )
                ids.append(int(cur.lastrowid))
            self._insert_triples(conn, doc_id, [(cid, t) for cid, ts in zip(ids, triples) for t in ts])
        self._sync_index(removed=old, added=np.array(ids, dtype=np.int64), vectors=vectors)
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

    def set_groups(self, source: str, groups: Sequence[str]) -> bool:
        """Change a stored document's access groups (an ACL edit needs no re-embedding)."""
        encoded = json.dumps(list(groups))
        rows = self.query("SELECT groups FROM documents WHERE source = ?", (source,))
        if not rows or rows[0][0] == encoded:
            return False
        with self.transaction() as conn:
            conn.execute("UPDATE documents SET groups = ? WHERE source = ?", (encoded, source))
        self._sync_index()
        return True

    def remove_document(self, source: str) -> bool:
        """Delete a document and everything derived from it; False when it was not stored."""
        with self.transaction() as conn:
            old = self._delete_document(conn, source)
        if old is None:
            return False
        self._sync_index(removed=old)
        return True

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
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for row in self.query(f"{_CHUNK_SELECT} WHERE id IN ({marks})", part):
                found[row[0]] = _chunk(row)
        return found

    def iter_chunks(self, batch: int = 1000) -> Iterator[Chunk]:
        """Every chunk in id order, read in batches (for indexes built over the whole corpus)."""
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
        counts = {
            name: self.query(f"SELECT count(*) FROM {name}")[0][0]
            for name in ("documents", "chunks", "triples")
        }
        return counts

    # ---------------------------------------------------------------- vectors
    def vector_index(self) -> faiss.IndexIDMap2:
        """The FAISS index over chunk vectors (ids are chunk ids), loaded or rebuilt as needed.

        Loading it also sets FAISS's thread count (``faiss_threads``): queries search one vector
        at a time, and splitting that scan across OpenMP threads costs more than it saves.
        """
        with self._lock:
            epoch = self.epoch
            if self._index is not None and self._index_epoch == epoch:
                return self._index
            faiss.omp_set_num_threads(faiss_threads())
            path, stamp = self.root / VECTORS, self.root / VECTORS_STAMP
            if path.exists() and stamp.exists() and stamp.read_text().strip() == str(epoch):
                self._index = faiss.read_index(str(path))
            else:
                self._index = self._build_index()
            self._index_epoch = epoch
            return self._index

    def _build_index(self) -> faiss.IndexIDMap2:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.dimension))
        last = 0
        while True:
            rows = self.query("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT 5000", (last,))
            if not rows:
                return index
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            index.add_with_ids(vectors.reshape(len(rows), self.manifest.dimension), ids)
            last = int(ids[-1])

    def _sync_index(
        self, removed: np.ndarray | None = None, added: np.ndarray | None = None, vectors: np.ndarray | None = None
    ) -> None:
        """Apply a committed change to the in-memory index, if one is loaded and was current."""
        with self._lock:
            if self._index is None or self._index_epoch != self.epoch - 1:
                self._index = None
                return
            if removed is not None and len(removed):
                self._index.remove_ids(removed)
            if added is not None and len(added):
                self._index.add_with_ids(vectors, added)
            self._index_epoch = self.epoch

    def save_vectors(self) -> None:
        """Persist the vector index atomically, stamped with the epoch it reflects (if not already)."""
        with self._lock:
            stamp = self.root / VECTORS_STAMP
            if not (stamp.exists() and stamp.read_text().strip() == str(self.epoch)):
                self._write_vectors(self.vector_index())

    def _write_vectors(self, index: faiss.Index) -> None:
        atomic_write(self.root / VECTORS, lambda tmp: faiss.write_index(index, str(tmp)))
        _write_text(self.root / VECTORS_STAMP, str(self._index_epoch))

    def vectors_of(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of the given chunks, in the given order."""
        dim = self.manifest.dimension
        by_id = {}
        ids = [int(i) for i in chunk_ids]
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for cid, blob in self.query(f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(part))})", part):
                by_id[cid] = np.frombuffer(blob, dtype=np.float32)
        return np.stack([by_id[i] for i in ids]) if ids else np.zeros((0, dim), dtype=np.float32)

    def reembed(self, embedding_model: str, dimension: int, embed: Callable[[list[str]], np.ndarray],
                progress: Callable[[int], None] = lambda n: None, batch: int = 256) -> None:
        """Re-embed every chunk with another model in one transaction, then switch the manifest."""
        with self.transaction() as conn:
            last = 0
            while True:
                rows = conn.execute("SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
                if not rows:
                    break
                vectors = np.ascontiguousarray(embed([r[1] for r in rows]), dtype=np.float32)
                conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                                 [(v.tobytes(), r[0]) for v, r in zip(vectors, rows)])
                last = rows[-1][0]
                progress(len(rows))
            self.manifest = Manifest(SCHEMA_VERSION, embedding_model, int(dimension), time.time())
            _write_text(self.root / MANIFEST, json.dumps(self.manifest.__dict__, indent=2))
        self._index = None

    def reindex(self) -> int:
        """Rebuild the vector index from SQLite and save it; returns the number of vectors."""
        with self._lock:
            self._index = self._build_index()
            self._index_epoch = self.epoch
            self._write_vectors(self._index)
            return int(self._index.ntotal)


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
