"""The store contract: every knowledge-base operation behaves the same on the folder store
(SQLite + FAISS) and on PostgreSQL + pgvector (``zhiku.pg_store``).

Each test runs once per backend against the leak-probe corpus (public, hr and finance documents).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from leak_probe import FINANCE_USER, HR_MARKER, HR_USER, PUBLIC_USER, assert_no_marker, build_leak_corpus
from pg_server import store_setting

from ingest.pipeline import ingest
from kg.extract import load_extractor
from retrieval import build_retriever
from retrieval.summary import Summary, cached_summary, store_summary
from retrieval.vector import VectorRetriever
from zhiku import accounts, audit
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, Chunk, Document, User
from zhiku.settings import MODES, Settings

SEARCH_MODES = [m for m in MODES if m != "hybrid+rerank"]


@pytest.fixture(scope="module", params=["folder", "postgresql"])
def store(request: pytest.FixtureRequest) -> str:
    """The backend's kind; each test asks ``fresh_store`` for an empty one of it."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_server")
    return request.param


def fresh_store(request: pytest.FixtureRequest, kind: str) -> str:
    return store_setting(kind, request.getfixturevalue("pg_server") if kind == "postgresql" else None)


def run_ingest(settings: Settings, embedder, corpus: Path, prune: bool = False):
    exists = KnowledgeBase.exists(settings.kb, settings.store)
    with KnowledgeBase.open(settings.kb, embedder.name, None if exists else embedder.dimension,
                            store=settings.store) as kb, kb.writer():
        return ingest(kb, embedder, [corpus], settings, extractor=load_extractor(settings), prune=prune)


def ingested(request: pytest.FixtureRequest, folder: Path, kind: str, embedder) -> tuple[Settings, Path]:
    """The leak corpus written under ``folder`` and ingested into a new store of ``kind``."""
    corpus = build_leak_corpus(folder / "corpus")
    settings = Settings(kb=folder / "kb", store=fresh_store(request, kind), embedding_model="minilm", workers=1)
    report = run_ingest(settings, embedder, corpus)
    assert not report.failed and report.added == 3
    return settings, corpus


@pytest.fixture(scope="module")
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, store: str, embedder):
    """One ingested knowledge base per backend for the tests that only read (or add bookkeeping rows)."""
    return ingested(request, tmp_path_factory.mktemp("store"), store, embedder)


@pytest.fixture
def settings(shared) -> Settings:
    return shared[0]


@pytest.fixture
def kb(settings: Settings, embedder):
    with KnowledgeBase.open(settings.kb, embedder.name, store=settings.store) as kb:
        yield kb


def test_ingest_stores_documents_chunks_and_triples(kb):
    stats = kb.stats()
    assert stats["documents"] == 3 and stats["chunks"] >= 3 and stats["triples"] > 0
    assert {Path(d.source).name for d in kb.documents()} == {"handbook.md", "salary_bands.md", "acquisition.md"}
    assert {Path(d.source).name for d in kb.documents(PUBLIC_USER)} == {"handbook.md"}
    doc = kb.get_document(kb.documents()[0].source)
    assert doc is not None and [c.position for c in kb.chunks_of(doc.id)] == list(range(doc.n_chunks))
    assert kb.vectors_of([c.id for c in kb.chunks_of(doc.id)]).shape == (doc.n_chunks, kb.manifest.dimension)


def test_reingest_skips_unchanged_replaces_changed_and_prunes_removed(request, tmp_path, store, embedder):
    settings, corpus = ingested(request, tmp_path, store, embedder)
    kb = KnowledgeBase.open(settings.kb, embedder.name, store=settings.store)
    request.addfinalizer(kb.close)
    epoch = kb.epoch
    again = run_ingest(settings, embedder, corpus)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)
    assert kb.epoch == epoch  # nothing written
    (corpus / "handbook.md").write_text("# Employee handbook\n\nEmployees get 40 days of leave.\n", encoding="utf-8")
    shutil.rmtree(corpus / "finance")
    changed = run_ingest(settings, embedder, corpus, prune=True)
    assert (changed.added, changed.updated, changed.unchanged, changed.removed) == (0, 1, 1, 1)
    assert {Path(d.source).name for d in kb.documents()} == {"handbook.md", "salary_bands.md"}
    hits = build_retriever(kb, embedder, settings, "keyword").retrieve("40 days of leave", 3, PUBLIC_USER)
    assert hits and "40 days" in hits[0].chunk.text


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_every_search_mode_answers_and_filters_by_access(kb, settings, embedder, mode):
    retriever = build_retriever(kb, embedder, settings, mode)
    for question in ("What are the salary bands?", "Who approved the bands?", "annual leave days"):
        hits = retriever.retrieve(question, 5, PUBLIC_USER)
        assert_no_marker([h.chunk.text for h in hits] + [f.subject for h in hits for f in h.facts], PUBLIC_USER)
        assert_no_marker([h.chunk.text for h in retriever.retrieve(question, 5, FINANCE_USER)], FINANCE_USER)
    member = retriever.retrieve("What does the L5 salary band pay?", 5, HR_USER)
    assert any(HR_MARKER in h.chunk.text for h in member), mode


def test_vector_search_returns_the_exact_nearest_visible_chunks(kb, embedder):
    ids = np.array([c.id for d in kb.documents() for c in kb.chunks_of(d.id)])
    vectors = kb.vectors_of(ids)
    query = embedder.embed(["salary band pay"])[0]
    exact = ids[np.argsort(-(vectors @ query))][:3]
    found = build_retriever(kb, embedder, Settings(kb=kb.root), "vector").search(query, 3, LOCAL_USER)[0]
    assert list(found) == list(exact)
    nobody = User("nobody", ())
    visible = {c.id for d in kb.documents(nobody) for c in kb.chunks_of(d.id)}
    found = build_retriever(kb, embedder, Settings(kb=kb.root), "vector").search(query, 10, nobody)[0]
    assert set(found) == visible  # every visible chunk, none other, though most are hidden


def test_summaries_are_cached_per_document_and_replaced(kb):
    doc = kb.documents()[0]
    assert cached_summary(kb, doc, "extractive") is None
    for text in ("first", "second"):
        store_summary(kb, doc, Summary(doc_id=doc.id, text=text, key_points=["p"], entities=[], language="en",
                                       backend="extractive"))
    cached = cached_summary(kb, doc, "extractive")
    assert cached is not None and cached.text == "second" and cached.cached


def test_users_tokens_feedback_and_audit(kb):
    accounts.add_user(kb, "hana", "correct horse battery", ("hr",))
    assert accounts.authenticate(kb, "hana", "correct horse battery") == User("hana", ("hr",))
    assert accounts.authenticate(kb, "hana", "wrong password") is None
    token, key = accounts.create_token(kb, "hana")
    assert token.id > 0 and accounts.user_for_key(kb, key) == User("hana", ("hr",))
    assert accounts.revoke_token(kb, token.id) and accounts.user_for_key(kb, key) is None
    assert accounts.set_groups(kb, "hana", ("hr", "finance"))
    assert [a.user.groups for a in accounts.accounts(kb)] == [("hr", "finance")]
    audit.record(kb, "hana", audit.QUESTION, mode="hybrid")
    assert [e.detail for e in audit.events(kb, user="hana") if e.event == audit.QUESTION] == [{"mode": "hybrid"}]
    assert accounts.remove_user(kb, "hana") and not accounts.has_users(kb)


def test_a_second_writer_is_refused_while_one_holds_the_lock(kb, settings, embedder):
    from zhiku.errors import KnowledgeBaseBusyError

    with kb.writer(), KnowledgeBase.open(settings.kb, embedder.name, store=settings.store) as other:
        with pytest.raises(KnowledgeBaseBusyError, match="another ingest is running"):
            with other.writer(wait=False):
                pass


def test_a_snapshot_never_sees_a_commit_made_after_it_began(kb, settings, embedder):
    vector = embedder.embed(["a note written meanwhile"])
    doc = Document(source=str(settings.kb.parent / "meanwhile.md"), content_hash="x", title="meanwhile")
    with KnowledgeBase.open(settings.kb, embedder.name, store=settings.store) as other:
        with kb.snapshot():
            before = kb.stats()
            other.put_document(doc, [Chunk(id=0, doc_id=0, position=0, text="a note written meanwhile",
                                           n_tokens=5)], vector)
            assert kb.stats() == before and kb.get_document(doc.source) is None
        assert kb.stats()["documents"] == before["documents"] + 1
        assert other.remove_document(doc.source)


def test_reembed_switches_model_and_dimension_and_search_follows(request, tmp_path, store):
    rng = np.random.default_rng(0)

    def unit(n: int, d: int) -> np.ndarray:
        v = rng.standard_normal((n, d)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    setting = fresh_store(request, store)
    with KnowledgeBase.open(tmp_path / "kb", "small", 4, store=setting) as kb:
        for name in ("a", "b"):
            kb.put_document(Document(source=f"/{name}.md", content_hash=name), [
                Chunk(id=0, doc_id=0, position=i, text=f"{name} {i}", n_tokens=2) for i in range(3)], unit(3, 4))
        kb.reembed("wider", 6, lambda texts: unit(len(texts), 6))
        assert kb.manifest.dimension == 6
        target = kb.vectors_of([2])[0]
        assert VectorRetriever(kb, embedder=None).search(target, 1, LOCAL_USER)[0].tolist() == [2]
    with pytest.raises(Exception, match="built with embedding model 'wider'"):
        KnowledgeBase.open(tmp_path / "kb", "small", store=setting)
