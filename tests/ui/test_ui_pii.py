"""The app with personal-data masking on: the chat, its source cards and the documents page show
masked text and offer no original file; with ``mask-ingest`` an upload is stored masked and not kept."""
from __future__ import annotations

from pathlib import Path

import pytest

from apptest import no_errors, plain, start
from zhiku.kb import KnowledgeBase

PERSON = "Maria Keller"  # the founder named in the tiny knowledge base (conftest.py)


def everything(at) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.text, *at.info, *at.warning, *at.success)]
    parts += [e.label for e in at.expander] + [b.label for b in at.button]
    return plain("\n".join(map(str, parts)))


def test_chat_answers_and_source_cards_are_masked_and_originals_not_offered(
    ui_kb: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZHIKU_PII", "mask-answers")
    at = start()
    at.chat_input[0].set_value("Who founded Acme Robotics?").run()
    no_errors(at)
    _, answer = at.chat_message
    shown = everything(answer)
    assert PERSON not in shown and "[PERSON]" in shown
    assert not [b for b in answer.button if b.label.startswith("Download")]
    assert "Original files are not offered while personal data is masked" in shown


def test_documents_page_shows_masked_entities_and_chunks(ui_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_PII", "mask-answers")
    at = start().switch_page("views/documents.py").run()
    at.text_input(key="documents_search").input("acme").run()
    at.selectbox(key="documents_open").select_index(0).run()
    no_errors(at)
    shown = everything(at)
    assert PERSON not in shown and "[PERSON]" in shown and "founded in 2011" in shown


def test_a_masked_ingest_keeps_no_uploaded_original(ui_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_PII", "mask-ingest")
    at = start().switch_page("views/ingest.py").run()
    at.file_uploader(key="ingest_uploads").set_value(
        ("contacts.md", b"# Contacts\n\nAsk John Smith (john.smith@example.com, +44 20 7946 0958).\n",
         "text/markdown"))
    at.button(key="ingest_start").click().run(timeout=300)
    no_errors(at)
    assert not list((ui_kb / "uploads").glob("*/contacts.md"))
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        [doc] = [d for d in kb.documents() if d.source.endswith("contacts.md")]
        assert kb.chunks_of(int(doc.id or 0))[0].text.endswith("Ask [PERSON] ([EMAIL], [PHONE]).")
