"""``pii = "mask-ingest"``: the knowledge base holds masked text only, and an uploaded original is not kept.

The probe reads ``kb.sqlite`` directly (every text column of every table) rather than through the
Assistant, so a masked view cannot hide raw data stored underneath.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from kg.extract import load_extractor
from zhiku.kb import DATABASE, UPLOADS, KnowledgeBase
from zhiku.settings import Settings

#: The raw personal data in the corpus below; none of it may be stored.
RAW = ("John Smith", "john.smith@example.com", "+44 20 7946 0958", "4111 1111 1111 1111",
       "DE89 3704 0044 0532 0130 00", "张伟", "13812345678", "11010519491231002X", "Mary Johnson",
       "mary.johnson@example.org")

CONTACTS = (
    "# Contacts for John Smith\n\n"
    "John Smith leads the Berlin office. Write to john.smith@example.com or call +44 20 7946 0958.\n\n"
    "Travel refunds go to IBAN DE89 3704 0044 0532 0130 00; the corporate card is 4111 1111 1111 1111.\n"
)
CHINESE = "# 通讯录\n\n张伟负责上海分公司，电话13812345678，身份证号11010519491231002X。\n"
UPLOADED = "# Uploaded note\n\nMary Johnson (mary.johnson@example.org) approved the budget.\n"


def every_text(db: Path) -> str:
    """Every text value of every table in the database, joined (users and audit included)."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values = [str(v) for t in tables for row in conn.execute(f"SELECT * FROM {t}") for v in row
                  if isinstance(v, str)]
    return "\n".join(values)


@pytest.fixture(scope="module")
def masked_kb(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("pii-ingest")
    docs = root / "docs"
    docs.mkdir()
    (docs / "contacts.md").write_text(CONTACTS, encoding="utf-8")
    (docs / "chinese.md").write_text(CHINESE, encoding="utf-8")
    settings = Settings(kb=root / "kb", embedding_model="minilm", workers=1, pii="mask-ingest")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        upload = kb.folder(UPLOADS) / "0123456789abcdef" / "note.md"
        upload.parent.mkdir(mode=0o700)
        upload.write_text(UPLOADED, encoding="utf-8")
        report = ingest(kb, embedder, [docs, upload], settings, extractor=load_extractor(settings))
    assert not report.failed and report.added == 3
    return settings.kb, upload, report


def test_the_knowledge_base_stores_no_raw_personal_data(masked_kb) -> None:
    kb_path, _, _ = masked_kb
    stored = every_text(kb_path / DATABASE)
    leaked = [raw for raw in RAW if raw in stored or raw.replace(" ", "") in stored]
    assert not leaked, f"raw personal data in kb.sqlite: {leaked}"
    for placeholder in ("[PERSON]", "[EMAIL]", "[PHONE]", "[IBAN]", "[BANK_CARD]", "[ID_NUMBER]"):
        assert placeholder in stored
    assert "Berlin office" in stored and "上海分公司" in stored  # the rest of the text is kept


def test_titles_are_masked_and_no_triple_is_about_a_placeholder(masked_kb) -> None:
    kb_path, _, _ = masked_kb
    with sqlite3.connect(kb_path / DATABASE) as conn:
        titles = {r[0] for r in conn.execute("SELECT title FROM documents")}
        triples = list(conn.execute("SELECT subject, object FROM triples"))
    assert "Contacts for [PERSON]" in titles
    assert not [t for t in triples if "[" in t[0] or "[" in t[1]]


def test_the_uploaded_original_is_not_kept_but_its_masked_text_is(masked_kb) -> None:
    kb_path, upload, _ = masked_kb
    assert not upload.exists() and not upload.parent.exists()
    assert (kb_path / UPLOADS).is_dir()  # the folder itself stays, empty
    with KnowledgeBase.open(kb_path, "minilm") as kb:
        doc = kb.get_document(str(upload))
        assert doc is not None
        assert "[PERSON] ([EMAIL]) approved the budget." in kb.chunks_of(int(doc.id or 0))[0].text


def test_search_by_the_raw_value_finds_only_masked_passages(masked_kb, embedder) -> None:
    from retrieval.assistant import Assistant

    kb_path, _, _ = masked_kb
    settings = Settings(kb=kb_path, embedding_model=embedder.name, llm="extractive", pii="mask-ingest")
    with Assistant(settings, KnowledgeBase.open(kb_path, embedder.name), embedder) as assistant:
        hits = assistant.search("john.smith@example.com John Smith phone", mode="keyword")
    assert hits and all(raw not in h.chunk.text for h in hits for raw in RAW)


def test_without_masking_uploads_are_kept(tmp_path: Path, embedder) -> None:
    settings = Settings(kb=tmp_path / "kb", embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        upload = kb.folder(UPLOADS) / "fedcba9876543210" / "note.md"
        upload.parent.mkdir(mode=0o700)
        upload.write_text(UPLOADED, encoding="utf-8")
        ingest(kb, embedder, [upload], settings)
        assert upload.exists() and "Mary Johnson" in every_text(settings.kb / DATABASE)
