"""The knowledge base's guarantees: ids never reused, schema migration, crash order of re-embedding,
torn index files rebuilt, private file modes, read snapshots, copy-on-write vectors, the writer lock."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import zhiku.kb
from zhiku.errors import KnowledgeBaseBusyError
from zhiku.kb import DATABASE, MANIFEST, VECTORS, KnowledgeBase
from zhiku.records import Chunk, Document, Triple

#: The schema of version 1 knowledge bases (zhiku/kb.py before ids were AUTOINCREMENT), verbatim.
V1_SCHEMA = """
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
DIM = 8


def vectors(n: int, seed: int = 0) -> np.ndarray:
    found = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return found / np.linalg.norm(found, axis=1, keepdims=True)


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(text=t, position=i, n_tokens=len(t.split())) for i, t in enumerate(texts)]


def put(kb: KnowledgeBase, source: str, *texts: str, seed: int = 0, groups: tuple[str, ...] = ("*",)) -> Document:
    return kb.put_document(Document(source=source, content_hash=f"{source}:{texts}", groups=groups),
                           chunks(*texts), vectors(len(texts), seed))


@pytest.fixture
def kb(tmp_path: Path):
    with KnowledgeBase.open(tmp_path / "kb", "tiny", DIM) as opened:
        yield opened


def test_ids_are_never_reused_after_a_delete_and_an_insert(kb: KnowledgeBase) -> None:
    first = put(kb, "/a.md", "alpha one", "alpha two")
    first_chunks = [c.id for c in kb.chunks_of(first.id)]
    kb.replace_triples({first.id: [Triple("alpha", "is", "first", first_chunks[0])]})
    first_triple = kb.query("SELECT max(id) FROM triples")[0][0]
    assert kb.remove_document("/a.md")
    second = put(kb, "/b.md", "beta one", "beta two")
    kb.replace_triples({second.id: [Triple("beta", "is", "second", kb.chunks_of(second.id)[0].id)]})
    assert second.id > first.id
    assert min(c.id for c in kb.chunks_of(second.id)) > max(first_chunks)
    assert kb.query("SELECT min(id) FROM triples")[0][0] > first_triple


def test_a_version_1_database_is_migrated_in_place_keeping_rows_and_ids(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    with sqlite3.connect(root / DATABASE) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('epoch', '5')")
        conn.execute("INSERT INTO documents (id, source, content_hash, groups, ingested_at) VALUES (7, '/old.md', 'h', '[\"hr\"]', 1.0)")
        for chunk_id, text in ((3, "old three"), (9, "old nine")):
            conn.execute("INSERT INTO chunks (id, doc_id, position, text, n_tokens, vector) VALUES (?, 7, 0, ?, 2, ?)",
                         (chunk_id, text, vectors(1, chunk_id)[0].tobytes()))
        conn.execute("INSERT INTO triples (id, chunk_id, doc_id, subject, relation, object) VALUES (4, 9, 7, 's', 'r', 'o')")
        conn.execute("INSERT INTO feedback (id, created_at, user, question, answer, rating) VALUES (2, 1.0, 'u', 'q', 'a', 1)")
        conn.execute("INSERT INTO users VALUES ('hana', 'hash', '[\"hr\"]', 1.0)")
    (root / MANIFEST).write_text(json.dumps({"schema_version": 1, "embedding_model": "tiny", "dimension": DIM, "created_at": 1.0}))

    with KnowledgeBase.open(root, "tiny") as kb:
        doc = kb.get_document(7)
        assert doc is not None and doc.source == "/old.md" and doc.groups == ("hr",)
        assert {c.id: c.text for c in kb.chunks_of(7)} == {3: "old three", 9: "old nine"}
        assert [(t.subject, t.chunk_id) for t in kb.triples(7)] == [("s", 9)]
        assert kb.query("SELECT id FROM feedback")[0][0] == 2
        assert kb.query("SELECT name FROM users")[0][0] == "hana"
        assert kb.epoch == 5 and kb.vector_index().ntotal == 2
        tables = dict(kb.query("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        assert all("AUTOINCREMENT" in tables[t] for t in ("documents", "chunks", "triples", "feedback"))
        assert kb.manifest.schema_version == zhiku.kb.SCHEMA_VERSION
        # the highest ids go, and are still never given out again
        assert kb.remove_document("/old.md")
        new = put(kb, "/new.md", "new one")
        assert new.id > 7 and kb.chunks_of(new.id)[0].id > 9
    assert json.loads((root / MANIFEST).read_text())["schema_version"] == zhiku.kb.SCHEMA_VERSION


def test_a_reembed_failing_midway_leaves_manifest_and_vectors_unchanged(kb: KnowledgeBase) -> None:
    doc = put(kb, "/a.md", *(f"text {i}" for i in range(5)))
    ids = [c.id for c in kb.chunks_of(doc.id)]
    before_vectors, before_manifest = kb.vectors_of(ids), (kb.root / MANIFEST).read_bytes()
    calls = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("the model crashed")
        return np.ones((len(texts), 4), np.float32)

    with pytest.raises(RuntimeError):
        kb.reembed("other", 4, embed, batch=2)
    assert (kb.root / MANIFEST).read_bytes() == before_manifest
    assert kb.manifest.embedding_model == "tiny"
    np.testing.assert_array_equal(kb.vectors_of(ids), before_vectors)
    assert kb.vector_index().ntotal == 5


def test_a_reembed_commits_before_it_writes_the_manifest_and_a_crash_between_is_healed(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(kb, "/a.md", "one", "two")
    root = kb.root
    real_write = zhiku.kb._write_text
    seen_committed = []

    def crash_at_manifest(path: Path, text: str) -> None:
        if path.name == MANIFEST:
            with sqlite3.connect(root / DATABASE) as other:  # what another process sees at this point
                seen_committed.append(json.loads(other.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()[0]))
            raise KeyboardInterrupt  # the process dies here
        real_write(path, text)

    monkeypatch.setattr(zhiku.kb, "_write_text", crash_at_manifest)
    with pytest.raises(KeyboardInterrupt):
        kb.reembed("other", 4, lambda texts: np.ones((len(texts), 4), np.float32))
    monkeypatch.setattr(zhiku.kb, "_write_text", real_write)
    assert seen_committed[0]["embedding_model"] == "other"
    assert json.loads((root / MANIFEST).read_text())["embedding_model"] == "tiny"  # stale

    assert KnowledgeBase.resolve_model(root, "") == "other"  # the meta table is the truth
    with KnowledgeBase.open(root, "other") as reopened:
        assert reopened.manifest.dimension == 4 and reopened.vector_index().d == 4
    assert json.loads((root / MANIFEST).read_text())["embedding_model"] == "other"  # healed


def test_a_torn_vector_index_is_rebuilt_from_sqlite(kb: KnowledgeBase) -> None:
    put(kb, "/a.md", *(f"text {i}" for i in range(50)))
    kb.save_vectors()
    path = kb.root / VECTORS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the stamp still matches
    with KnowledgeBase.open(kb.root, "tiny") as reopened:
        index = reopened.vector_index()
        assert index.ntotal == 50
        scores, ids = index.search(vectors(1, 0), 3)
        assert ids[0][0] in {c.id for c in reopened.iter_chunks()}


def test_a_torn_bm25_index_is_rebuilt_and_keyword_search_works(kb: KnowledgeBase) -> None:
    from retrieval.keyword import INDEX_FILE, KeywordRetriever
    from zhiku.records import LOCAL_USER

    put(kb, "/a.md", "Employees get thirty days of annual leave.", "The office opens at eight.")
    assert KeywordRetriever(kb).retrieve("annual leave", 2, LOCAL_USER)
    path = kb.root / INDEX_FILE
    for torn in (path.read_bytes()[: path.stat().st_size // 2], b""):
        path.write_bytes(torn)
        hits = KeywordRetriever(kb).retrieve("annual leave", 2, LOCAL_USER)
        assert hits and "annual leave" in hits[0].chunk.text


def test_every_file_is_0600_and_every_folder_0700_whatever_the_umask(tmp_path: Path, embedder) -> None:
    from ingest.pipeline import ingest
    from kg.graph import load_graph
    from retrieval.keyword import KeywordRetriever
    from zhiku.records import LOCAL_USER
    from zhiku.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Leave\n\nEmployees get 30 days of annual leave.", encoding="utf-8")
    settings = Settings(kb=tmp_path / "kb", embedding_model="minilm", workers=0, extractor="none")
    previous = os.umask(0o022)
    try:
        with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb, kb.writer():
            ingest(kb, embedder, [docs], settings)
            KeywordRetriever(kb).retrieve("leave", 1, LOCAL_USER)
            load_graph(kb)
            kb.folder("uploads")
            assert (kb.root / f"{DATABASE}-wal").exists()
            modes = {p.relative_to(kb.root): stat.S_IMODE(p.stat().st_mode) for p in [kb.root, *kb.root.rglob("*")]}
    finally:
        os.umask(previous)
    expected = {"kb.sqlite", "kb.sqlite-wal", "vectors.faiss", "bm25.npz", "graph.json", "ingest.lock", "uploads"}
    assert expected <= {str(p) for p in modes}
    wrong = {str(p): oct(m) for p, m in modes.items()
             if m != (0o700 if (settings.kb / p).is_dir() else 0o600)}
    assert not wrong


def test_opening_a_knowledge_base_with_loose_modes_makes_it_private(kb: KnowledgeBase) -> None:
    put(kb, "/a.md", "one")
    for path, loose in ((kb.root, 0o755), (kb.root / DATABASE, 0o644), (kb.root / f"{DATABASE}-wal", 0o644)):
        os.chmod(path, loose)
    with KnowledgeBase.open(kb.root, "tiny"):
        assert stat.S_IMODE(kb.root.stat().st_mode) == 0o700
        assert {stat.S_IMODE((kb.root / n).stat().st_mode) for n in (DATABASE, f"{DATABASE}-wal")} == {0o600}


def test_a_snapshot_sees_one_state_while_another_thread_commits(kb: KnowledgeBase) -> None:
    put(kb, "/a.md", "one")
    with kb.snapshot():
        before = [d.source for d in kb.documents()]
        writer = threading.Thread(target=put, args=(kb, "/b.md", "two"))
        writer.start()
        writer.join()
        assert [d.source for d in kb.documents()] == before == ["/a.md"]
        assert kb.stats()["chunks"] == 1
    assert [d.source for d in kb.documents()] == ["/a.md", "/b.md"]


def test_an_index_handed_to_a_search_is_never_modified_by_later_writes(kb: KnowledgeBase) -> None:
    put(kb, "/a.md", "one", "two")
    held = kb.vector_index()
    put(kb, "/a.md", "one", "two", "three", seed=1)  # replaces a's vectors
    put(kb, "/b.md", "four", seed=2)
    assert held.ntotal == 2
    current = kb.vector_index()
    assert current is not held and current.ntotal == 4
    stored = {c.id for c in kb.iter_chunks()}
    assert {int(current.id_map.at(i)) for i in range(current.ntotal)} == stored


def test_a_second_writer_is_refused_at_once_without_wait(kb: KnowledgeBase) -> None:
    with KnowledgeBase.open(kb.root, "tiny") as other, kb.writer():
        with pytest.raises(KnowledgeBaseBusyError, match=f"another ingest is running on .* \\(pid {os.getpid()}\\)"):
            with other.writer(wait=False):
                pass
    with kb.writer(wait=False):  # released
        pass


def test_a_second_writer_waits_until_the_first_is_done(kb: KnowledgeBase) -> None:
    told, order = [], []
    with kb.writer():
        waiter = threading.Thread(target=lambda: _write_after(kb, told, order))
        waiter.start()
        deadline = time.time() + 10
        while not told and time.time() < deadline:
            time.sleep(0.01)
        order.append("first done")
    waiter.join()
    assert told and "waiting" in told[0]
    assert order == ["first done", "second"]


def _write_after(kb: KnowledgeBase, told: list[str], order: list[str]) -> None:
    with KnowledgeBase.open(kb.root, "tiny") as other, other.writer(notify=told.append):
        order.append("second")


# ------------------------------------------------------------------ two processes
def _ingest_command(docs: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "zhiku.cli", "ingest", str(docs), "--kb", str(root), "--no-graph", "--json", *extra]


@pytest.fixture
def held_kb(tmp_path: Path, embedder):
    """A knowledge base whose writer lock this test process holds, and a folder to ingest."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Employees get 30 days of annual leave.", encoding="utf-8")
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        yield kb, docs


@pytest.mark.integration
def test_a_second_ingest_process_waits_with_a_message_then_succeeds(held_kb) -> None:
    kb, docs = held_kb
    lines: list[str] = []
    with kb.writer():
        process = subprocess.Popen(_ingest_command(docs, kb.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: lines.extend(process.stderr))
        reader.start()
        deadline = time.time() + 180
        while not any("waiting" in line for line in lines) and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the second ingest did not wait"
        assert kb.stats()["documents"] == 0
    out, _ = process.communicate(timeout=180)
    reader.join()
    assert process.returncode == 0, "".join(lines)
    assert f"another ingest is running on {kb.root} (pid {os.getpid()}); waiting" in "".join(lines)
    assert json.loads(out)["added"] == 1


@pytest.mark.integration
def test_an_ingest_with_no_wait_fails_at_once_when_another_is_running(held_kb) -> None:
    kb, docs = held_kb
    with kb.writer():
        done = subprocess.run(_ingest_command(docs, kb.root, "--no-wait"), capture_output=True, text=True, timeout=180)
    assert done.returncode == 1
    assert f"another ingest is running on {kb.root} (pid {os.getpid()})" in done.stderr
    assert "Traceback" not in done.stderr and kb.stats()["documents"] == 0


def test_removing_a_document_removes_its_chunks_and_triples_also_after_reopening(kb: KnowledgeBase) -> None:
    doc = put(kb, "/a.md", "one", "two")
    kb.replace_triples({doc.id: [Triple("a", "b", "c", kb.chunks_of(doc.id)[0].id)]})
    with KnowledgeBase.open(kb.root, "tiny") as reopened:
        assert reopened.remove_document("/a.md")
        assert reopened.stats() == {"documents": 0, "chunks": 0, "triples": 0}
        assert reopened.vector_index().ntotal == 0


def test_opening_a_knowledge_base_twice_in_a_process_keeps_it_safe_from_other_processes(tmp_path: Path) -> None:
    """A second open in the same process must not drop the first one's SQLite locks: another process
    closing last would then delete the WAL and shared memory under it ("disk I/O error")."""
    root = tmp_path / "kb"
    first = KnowledgeBase.open(root, "minilm", 384)
    first.query("SELECT 1")
    with KnowledgeBase.open(root, "minilm"):
        pass
    script = ("import sys; from zhiku.kb import KnowledgeBase\n"
              "with KnowledgeBase.open(sys.argv[1], 'minilm') as kb:\n"
              "    with kb.transaction(content=False) as conn:\n"
              "        conn.execute(\"INSERT INTO meta (key, value) VALUES ('probe', 'x')\")\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", script, str(root)], check=True, env=env)
    try:
        with first.transaction(content=False) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('after', 'y')")
        assert first.query("SELECT value FROM meta WHERE key = 'probe'")[0][0] == "x"
    finally:
        first.close()
