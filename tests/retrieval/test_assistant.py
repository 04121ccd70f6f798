"""The Assistant: answers with real citations, streaming, follow-ups, refusals; the ``zhiku ask`` contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.assistant import Assistant, AssistantError
from retrieval.factory import QueryError
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import Answer, Chunk, Document, User
from zhiku.settings import Settings

def open_assistant(root: Path, embedder) -> Assistant:
    """An Assistant sharing the session's embedder (``Assistant.open`` is exercised by the CLI tests)."""
    return Assistant(Settings(kb=root, embedding_model=embedder.name), KnowledgeBase.open(root, embedder.name), embedder)


@pytest.fixture(scope="module")
def assistant(small_kb_path: Path, embedder) -> Assistant:
    with open_assistant(small_kb_path, embedder) as opened:
        yield opened


def test_assistant_answers_with_real_citations(assistant: Assistant) -> None:
    answer = assistant.ask("How many days of paid vacation do employees get?", mode="hybrid", k=4)
    assert "25 days" in answer.text and answer.citations
    for citation in answer.citations:
        assert citation.hit in answer.hits
        assert citation.hit.chunk.text.split(".")[0] in answer.text or citation.hit.chunk.text in answer.text


def test_assistant_says_not_in_documents_for_an_off_topic_question(assistant: Assistant) -> None:
    answer = assistant.ask("What is the recipe for chocolate cake?", mode="vector")
    assert answer.text == "not in the documents" and answer.hits


def test_assistant_streams_text_then_the_answer(assistant: Assistant) -> None:
    items = list(assistant.ask_stream("When does the Berlin office open?", mode="keyword"))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "8am" in items[-1].text


def test_assistant_rewrites_followups_before_retrieving(assistant: Assistant) -> None:
    first = assistant.ask("Where is the Berlin office?", mode="keyword")
    second = assistant.ask("When does it open?", mode="keyword", history=[first])
    assert second.question == "When does it open? (Berlin office)" and "8am" in second.text


def test_assistant_refuses_bad_requests_in_one_line(assistant: Assistant) -> None:
    with pytest.raises(QueryError, match="empty"):
        assistant.ask("   ")
    with pytest.raises(QueryError, match="characters long"):
        assistant.ask("why " * 2000)


def test_user_without_documents_and_unknown_documents_are_refused(tmp_path: Path, embedder) -> None:
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        kb.put_document(Document(source="/hr/pay.md", content_hash="p", title="pay", groups=("hr",)),
                        [Chunk(text="Salaries are paid monthly.", position=0, n_tokens=4)],
                        embedder.embed(["Salaries are paid monthly."]))
    with open_assistant(tmp_path / "kb", embedder) as assistant:
        with pytest.raises(AssistantError, match="user 'guest' \\(groups: none\\) may see none of the 1 documents"):
            assistant.ask("When are salaries paid?", user=User("guest"))
        assert "monthly" in assistant.ask("When are salaries paid?", user=User("hana", ("hr",))).text
        hidden = "unknown document '/hr/pay.md'"
        with pytest.raises(AssistantError, match=hidden):
            assistant.summarize("/hr/pay.md", user=User("guest", ("eng",)))
        with pytest.raises(AssistantError, match="unknown document 'nothing.md'"):
            assistant.summarize("nothing.md")


def test_empty_knowledge_base_is_refused(tmp_path: Path, embedder) -> None:
    KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension).close()
    with open_assistant(tmp_path / "kb", embedder) as assistant:
        with pytest.raises(AssistantError, match="has no documents: ingest some first"):
            assistant.ask("Anything?")


def test_zhiku_ask_json_keeps_its_keys(small_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", "Who founded Acme Robotics?", "--kb", str(small_kb_path), "--mode", "hybrid",
                 "--k", "3", "--llm", "extractive", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(payload) == {"answer", "citations", "hits", "llm", "timing"}
    assert payload["llm"] == {"backend": "extractive", "model": "", "runtime": ""}
    assert set(payload["timing"]) == {"retrieval_ms", "first_token_ms", "tokens", "tokens_per_s"}
    assert payload["timing"]["retrieval_ms"] > 0 and payload["timing"]["tokens"] == 0
    assert "Jane Smith" in payload["answer"] and payload["citations"]
    assert set(payload["citations"][0]) == {"n", "doc", "source", "chunk_id", "text"}
    assert payload["citations"][0]["source"].endswith("handbook.md") and len(payload["hits"]) <= 3


def test_zhiku_ask_prints_the_answer_and_its_sources(small_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "When does the Berlin office open?", "--kb", str(small_kb_path), "--mode", "keyword"]) == 0
    out = capsys.readouterr().out
    assert "8am" in out and "\nSources:\n[1] handbook, p. 1, Intro — /corpus/handbook.md" in out


def test_zhiku_ask_rejects_an_empty_question_and_a_bad_mode(small_kb_path: Path, capsys) -> None:
    assert main(["ask", " ", "--kb", str(small_kb_path)]) == 2
    assert main(["ask", "x", "--mode", "psychic", "--kb", str(small_kb_path)]) == 2
    err = capsys.readouterr().err
    assert "zhiku ask: the question is empty" in err and "--mode must be one of" in err
