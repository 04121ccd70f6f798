"""``pii = "mask-answers"``: what leaves the Assistant is masked, whoever calls it; what is sent to an
``openai`` backend is masked; the knowledge base keeps the original text; access checks still apply."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_server import ChatServer, server  # noqa: F401 - the fixture
from ingest.pipeline import ingest
from leak_probe import FINANCE_MARKER, FINANCE_PERSON, FINANCE_USER, HR_USER, PUBLIC_USER
from retrieval.assistant import Assistant, AssistantError
from zhiku.kb import KnowledgeBase
from zhiku.records import Answer
from zhiku.settings import Settings

HANDBOOK = (
    "# Contacts of John Smith\n\n"
    "John Smith manages the Berlin office. His e-mail is john.smith@example.com and his phone "
    "is +44 20 7946 0958.\n\n"
    "Travel refunds are paid to IBAN DE89 3704 0044 0532 0130 00 within five days.\n\n"
    "张伟负责上海分公司，电话13812345678。\n"
)
RAW = ("John Smith", "john.smith@example.com", "+44 20 7946 0958", "DE89 3704 0044 0532 0130 00", "张伟",
       "13812345678")


def assert_masked(*texts: str) -> None:
    joined = "\n".join(texts)
    leaked = [raw for raw in RAW if raw in joined]
    assert not leaked, f"raw personal data shown: {leaked}"


@pytest.fixture(scope="module")
def raw_kb(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """A knowledge base ingested without masking: it holds the raw text."""
    root = tmp_path_factory.mktemp("pii-answers")
    (root / "docs").mkdir()
    (root / "docs" / "contacts.md").write_text(HANDBOOK, encoding="utf-8")
    settings = Settings(kb=root / "kb", embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        assert ingest(kb, embedder, [root / "docs"], settings).added == 1
    return settings.kb


def masking_assistant(kb_path: Path, embedder, pii_masker, **changes: object) -> Assistant:
    settings = Settings(kb=kb_path, embedding_model=embedder.name, llm="extractive", pii="mask-answers").replace(**changes)
    return Assistant(settings, KnowledgeBase.open(kb_path, embedder.name), embedder, masker=pii_masker)


@pytest.fixture(scope="module")
def assistant(raw_kb: Path, embedder, pii_masker):
    with masking_assistant(raw_kb, embedder, pii_masker) as opened:
        yield opened


def test_search_hits_are_masked_and_the_knowledge_base_keeps_the_original(assistant: Assistant) -> None:
    hits = assistant.search("John Smith e-mail phone Berlin office", mode="keyword")
    assert hits
    assert_masked(*(h.chunk.text for h in hits), *(h.document.title for h in hits))
    assert any("[EMAIL]" in h.chunk.text and "[PHONE]" in h.chunk.text for h in hits)
    stored = " ".join(c.text for c in assistant.kb.iter_chunks())
    assert "john.smith@example.com" in stored  # masked copies were shown; nothing changed underneath
    again = assistant.retriever("keyword").retrieve("John Smith e-mail", 5, PUBLIC_USER)
    assert any("John Smith" in h.chunk.text for h in again)  # the retriever's own chunks are untouched


def test_answers_their_stream_and_citations_are_masked(assistant: Assistant) -> None:
    items = list(assistant.ask_stream("What is the e-mail and phone of John Smith?", mode="keyword"))
    answer = items[-1]
    assert isinstance(answer, Answer) and answer.citations
    pieces = [i for i in items[:-1] if isinstance(i, str)]
    assert_masked(*pieces, answer.text, answer.question, *(c.hit.chunk.text for c in answer.citations),
                  *(h.chunk.text for h in answer.hits))
    assert "[EMAIL]" in answer.text or "[PHONE]" in answer.text
    assert all(c.hit in answer.hits for c in answer.citations)


def test_summaries_documents_entities_and_chunks_are_masked(assistant: Assistant) -> None:
    doc = assistant.document("contacts.md")
    assert doc.title == "Contacts of [PERSON]"
    summary = assistant.summarize(doc.id)
    cached = assistant.cached_summary(doc.id)
    assert cached is not None and cached.cached
    assert_masked(summary.text, *summary.key_points, *summary.entities, cached.text, *cached.key_points,
                  *assistant.key_entities(doc.id), *(c.text for c in assistant.chunks(doc.id)))
    assert "[IBAN]" in " ".join(c.text for c in assistant.chunks(doc.id))


def test_with_pii_off_nothing_is_masked(raw_kb: Path, embedder) -> None:
    settings = Settings(kb=raw_kb, embedding_model=embedder.name, llm="extractive")
    with Assistant(settings, KnowledgeBase.open(raw_kb, embedder.name), embedder) as plain:
        assert plain.masker is None
        assert any("john.smith@example.com" in c.text for c in plain.chunks("contacts.md"))


def test_requests_to_an_openai_backend_are_masked_and_so_is_its_reply(
    raw_kb: Path, embedder, pii_masker, server: ChatServer,
) -> None:
    server.reply = lambda messages: "Write to John Smith at john.smith@example.com [1]. 电话13812345678。"
    with masking_assistant(raw_kb, embedder, pii_masker, llm="openai", openai_base_url=server.base_url,
                           openai_model="tiny-chat") as assistant:
        items = list(assistant.ask_stream("How do I reach John Smith (john.smith@example.com)?", mode="keyword"))
        summary = assistant.summarize("contacts.md", refresh=True)
    sent = json.dumps(server.requests, ensure_ascii=False)
    assert len(server.requests) >= 2  # the answer, the summary's map and reduce
    assert_masked(sent)
    assert "[EMAIL]" in sent and "[PERSON]" in sent
    answer = items[-1]
    assert isinstance(answer, Answer) and not answer.warnings
    assert_masked(*(i for i in items[:-1] if isinstance(i, str)), answer.text, summary.text)
    assert "[EMAIL]" in answer.text and "[1]" in answer.text


# ------------------------------------------------------------------------------------ leak probes
@pytest.fixture(scope="module")
def leak_assistant(leak_kb: Path, embedder, pii_masker):
    with masking_assistant(leak_kb, embedder, pii_masker) as opened:
        yield opened


@pytest.mark.parametrize("source, words, owner", [("hr/salary_bands.md", "band L5", HR_USER),
                                                   ("finance/acquisition.md", FINANCE_MARKER, FINANCE_USER)])
def test_document_chunks_and_entities_are_refused_to_users_outside_the_group(
    leak_assistant: Assistant, source: str, words: str, owner,
) -> None:
    """The new document surfaces (chunks, key entities) check access like ``document``. (The HR
    marker itself is an unknown capitalised word that English NER takes for a name: masked.)"""
    doc_id = next(d.id for d in leak_assistant.kb.documents() if d.source.endswith(source))
    for outsider in (PUBLIC_USER, HR_USER if owner is FINANCE_USER else FINANCE_USER):
        for surface in (leak_assistant.chunks, leak_assistant.key_entities, leak_assistant.document):
            with pytest.raises(AssistantError, match="unknown document"):
                surface(doc_id, outsider)
    assert any(words in c.text for c in leak_assistant.chunks(doc_id, owner))


def test_masking_hides_the_finance_persons_name_even_from_its_group(leak_assistant: Assistant) -> None:
    doc_id = next(d.id for d in leak_assistant.kb.documents() if d.source.endswith("finance/acquisition.md"))
    shown = " ".join(c.text for c in leak_assistant.chunks(doc_id, FINANCE_USER))
    assert FINANCE_MARKER in shown and FINANCE_PERSON not in shown
