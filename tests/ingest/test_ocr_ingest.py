"""Scans through the whole ingest: parsed in a worker under its memory cap, chunks marked as OCR text,
the confidence kept with the document, source cards saying so, and access groups still applied."""
from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parse import ParsedFile
from ingest.pipeline import ingest
from ingest.workers import ParseLimits, ParserPool
from retrieval import build_retriever
from tests.ingest.scanned_files import drawn
from tests.leak_probe import HR_MARKER, HR_USER, PUBLIC_USER
from ui.cards import card_title
from zhiku.kb import KnowledgeBase
from zhiku.records import Citation
from zhiku.settings import Settings

pytestmark = pytest.mark.slow

LINES = [f"The {HR_MARKER} bonus is paid in March", "Each bonus is capped at 4,000 EUR"]


def test_a_worker_reads_an_image_under_the_default_memory_cap(tmp_path: Path) -> None:
    path = tmp_path / "bonus.png"
    drawn(LINES).save(path)
    with ParserPool(1, ParseLimits(timeout_s=120, memory_mb=Settings().parse_memory_mb)) as pool, \
            ParserPool(1, ParseLimits(timeout_s=60, memory_mb=0), ocr="off") as off:
        (read,), (refused,) = list(pool.parse([path])), list(off.parse([path]))
    assert isinstance(read, ParsedFile), read
    assert [e.text for e in read.elements] == LINES
    assert refused.startswith("images are read by OCR, which is off")


def test_ocr_chunks_are_marked_carded_and_kept_from_users_without_the_group(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    drawn(LINES).save(docs / "hr" / "bonus_scan.png")
    (docs / "handbook.md").write_text("# Handbook\n\nEmployees get 30 days of annual leave.\n", encoding="utf-8")
    (docs / "zhiku-acl.toml").write_text('"hr/**" = ["hr"]\n', encoding="utf-8")
    settings = Settings(kb=tmp_path / "kb", embedding_model="minilm", workers=1, extractor="none")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [docs], settings)
        assert not report.failed, report.failed
        scan = next(d for d in kb.documents() if d.source.endswith("bonus_scan.png"))
        assert scan.kind == "image" and scan.groups == ("hr",)
        assert set(scan.metadata["ocr_pages"]) == {"1"}
        chunks = kb.chunks_of(scan.id)
        assert {(c.kind, c.page) for c in chunks} == {("ocr", 1)}
        assert chunks[0].text == "\n".join(LINES)  # line breaks kept
        keyword = build_retriever(kb, embedder, settings, "keyword")
        assert keyword.retrieve(f"{HR_MARKER} bonus", 5, PUBLIC_USER) == []
        hits = keyword.retrieve(f"{HR_MARKER} bonus", 5, HR_USER)
        assert hits and hits[0].chunk.kind == "ocr"
        assert "· scanned page 1 · OCR " in card_title(Citation(1, hits[0]))
