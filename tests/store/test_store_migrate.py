"""``zhiku migrate``: a folder knowledge base copied into PostgreSQL answers every search exactly as
the folder did, with every table's rows, and an occupied target is refused."""
from __future__ import annotations

import json

import pytest
from cli_runner import run_zhiku
from leak_probe import FINANCE_USER, HR_USER, PUBLIC_USER, build_leak_corpus
from pg_server import fresh_database

from ingest.pipeline import ingest
from kg.extract import load_extractor
from retrieval import build_retriever
from retrieval.summary import Summary, store_summary
from zhiku import accounts, audit
from zhiku.feedback import save_feedback
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, Answer
from zhiku.settings import Settings

QUESTIONS = ("What are the salary bands?", "Who is the CFO?", "annual leave days", "Kestrel Robotics")
USERS = (LOCAL_USER, PUBLIC_USER, HR_USER, FINANCE_USER)
MODES = ("vector", "keyword", "graph", "hybrid")


@pytest.fixture(scope="module")
def folder_kb(tmp_path_factory, embedder):
    """A folder knowledge base with a row in every table migrate copies."""
    root = tmp_path_factory.mktemp("migrate")
    settings = Settings(kb=root / "kb", embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [build_leak_corpus(root / "corpus")], settings, extractor=load_extractor(settings))
        doc = kb.documents()[0]
        store_summary(kb, doc, Summary(doc_id=doc.id, text="a summary"))
        accounts.add_user(kb, "hana", "correct horse battery", ("hr",))
        accounts.create_token(kb, "hana")
        save_feedback(kb, LOCAL_USER, Answer(question="q", text="a"), 1)
        audit.record(kb, "hana", audit.QUESTION, mode="hybrid")
    return settings


def results(settings: Settings, embedder) -> dict:
    with KnowledgeBase.open(settings.kb, embedder.name, store=settings.store) as kb:
        found = {}
        for mode in MODES:
            retriever = build_retriever(kb, embedder, settings, mode)
            for user in USERS:
                for question in QUESTIONS:
                    hits = retriever.retrieve(question, 5, user)
                    found[mode, user.name, question] = [(h.chunk.id, round(h.score, 4)) for h in hits]
        return found


def test_migrated_store_has_every_row_and_answers_like_the_folder(folder_kb, pg_server, embedder, capsys, monkeypatch):
    target = fresh_database(pg_server)
    code, out, err = run_zhiku(capsys, monkeypatch, "migrate", "--from", str(folder_kb.kb), "--to", target, "--json")
    assert code == 0, err
    counts = json.loads(out)["counts"]
    assert counts["documents"] == 3 and counts["chunks"] >= 3 and counts["triples"] > 0
    assert {t: counts[t] for t in ("summaries", "users", "api_tokens", "feedback")} == \
        {"summaries": 1, "users": 1, "api_tokens": 1, "feedback": 1}
    assert counts["audit"] >= 1
    migrated = folder_kb.replace(store=target)
    assert results(migrated, embedder) == results(folder_kb, embedder)
    with KnowledgeBase.open(migrated.kb, embedder.name, store=target) as kb:
        assert accounts.authenticate(kb, "hana", "correct horse battery") is not None
        # ids continue after the copied ones: a new row never reuses one
        assert kb.query("SELECT nextval(pg_get_serial_sequence('chunks', 'id'))")[0][0] > max(
            r[0] for r in kb.query("SELECT id FROM chunks"))

    code, _, err = run_zhiku(capsys, monkeypatch, "migrate", "--from", str(folder_kb.kb), "--to", target)
    assert code == 1 and "already holds a knowledge base" in err


def test_migrate_refuses_a_target_that_is_not_postgresql(folder_kb, capsys, monkeypatch, tmp_path):
    code, _, err = run_zhiku(capsys, monkeypatch, "migrate", "--from", str(folder_kb.kb), "--to", str(tmp_path))
    assert code == 1 and "postgresql://" in err
