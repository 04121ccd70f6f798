"""Document summaries: extractive fallback, key entities from the triples, caching in SQLite and its
invalidation, Chinese documents, lenient parsing of a model's reply, and the LLM path: one call for a
document that fits the window, map-reduce for a longer one, and (slow) SmolLM2 on CTranslate2."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from retrieval.summary import cached_summary, parse_summary, summarize
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Document, Triple

ACME = [
    "Acme Robotics builds warehouse robots. The company was founded by Jane Smith in 2009 in Berlin.",
    "Acme Robotics sells its robots to logistics firms across Europe. Revenue grew by forty percent last year.",
    "The robots navigate warehouses with lidar sensors. Each robot carries up to 500 kilograms of goods.",
    "Jane Smith remains the chief executive of Acme Robotics. The board approved a new factory in Poland.",
]
ACME_FACTS = [
    [Triple("Acme Robotics", "founded by", "Jane Smith"), Triple("Acme Robotics", "located in", "Berlin")],
    [Triple("Acme Robotics", "sells to", "logistics firms")],
    [],
    [Triple("Jane Smith", "leads", "Acme Robotics"), Triple("Acme", "builds factory in", "Poland")],
]
SHANGHAI = [
    "公司总部位于上海，研发中心设在杭州。公司成立于二零一零年，现有员工三千人。",
    "研发中心负责机器人导航算法的开发。杭州团队去年申请了二十项专利。",
    "公司的主要客户是国内的物流企业。去年的营业收入增长了百分之三十。",
]
SHANGHAI_FACTS = [[Triple("公司总部", "位于", "上海"), Triple("研发中心", "位于", "杭州")], [], []]


def put(kb: KnowledgeBase, embedder, source: str, texts: list[str], facts: list[list[Triple]], version: str,
        language: str = "en") -> Document:
    doc = Document(source=source, content_hash=version, title=Path(source).stem, language=language)
    chunks = [Chunk(text=t, position=i, n_tokens=len(t.split())) for i, t in enumerate(texts)]
    return kb.put_document(doc, chunks, embedder.embed(texts), facts)


@pytest.fixture
def kb(tmp_path: Path, embedder):
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as opened:
        yield opened


def test_extractive_summary_has_central_sentences_points_and_entities(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    summary = summarize(kb, doc, llm=None, embedder=embedder)
    sentences = {s for t in ACME for s in t.split(". ")}
    assert summary.text and summary.backend == "extractive" and summary.language == "en"
    assert summary.key_points and all(any(p.rstrip(".") in s or s in p for s in sentences) for p in summary.key_points)
    assert summary.entities[0] == "Acme Robotics"  # "Acme" counts as the same entity
    assert "Jane Smith" in summary.entities[:3] and summary.cached is False


def test_summary_without_an_embedder_still_works(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    summary = summarize(kb, doc)
    assert "Acme Robotics" in summary.text + " ".join(summary.key_points)


def test_summary_is_cached_and_invalidated_when_the_document_changes(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    first = summarize(kb, doc, embedder=embedder)
    again = summarize(kb, kb.get_document("/docs/acme.md"), embedder=embedder)
    assert again.cached and again.text == first.text and again.entities == first.entities
    stored = kb.query("SELECT content_hash, backend, body FROM summaries WHERE doc_id = ?", (doc.id,))
    assert stored[0][0] == "v1" and stored[0][1] == "extractive"
    assert json.loads(stored[0][2])["text"] == first.text

    changed = put(kb, embedder, "/docs/acme.md", SHANGHAI, SHANGHAI_FACTS, "v2")
    fresh = summarize(kb, changed, embedder=embedder)
    assert not fresh.cached and fresh.text != first.text and "上海" in fresh.text + "".join(fresh.key_points)


def test_a_stored_summary_of_other_content_or_another_backend_is_not_used(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    with kb.transaction() as conn:
        conn.execute("INSERT INTO summaries VALUES (?, ?, ?, ?, ?)",
                     (doc.id, "an-old-hash", "extractive", json.dumps({"text": "stale"}), time.time()))
    assert cached_summary(kb, doc, "extractive") is None
    assert summarize(kb, doc, embedder=embedder).text != "stale"
    assert cached_summary(kb, doc, "OpenAILike:some-model") is None


def test_chinese_document_is_summarised_in_chinese(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/shanghai.md", SHANGHAI, SHANGHAI_FACTS, "v1", language="zh")
    summary = summarize(kb, doc, embedder=embedder)
    assert summary.language == "zh"
    assert "。" in summary.text and " " not in summary.text  # Chinese sentences joined without spaces
    assert set(summary.entities) >= {"上海", "杭州"}


def test_chinese_is_detected_even_when_the_document_is_tagged_english(kb: KnowledgeBase, embedder) -> None:
    doc = put(kb, embedder, "/docs/untagged.md", SHANGHAI, SHANGHAI_FACTS, "v1", language="en")
    assert summarize(kb, doc, embedder=embedder).language == "zh"


@pytest.mark.parametrize("reply, text, points", [
    ("SUMMARY: Acme builds robots.\nKEY POINTS:\n- Founded 2009\n- Based in Berlin",
     "Acme builds robots.", ["Founded 2009", "Based in Berlin"]),
    ("**Summary**: Acme builds robots.\n\n**Key points:**\n1. Founded 2009\n2. Based in Berlin",
     "Acme builds robots.", ["Founded 2009", "Based in Berlin"]),
    ("摘要：公司总部位于上海。\n要点：\n- 研发中心在杭州\n- 员工三千人", "公司总部位于上海。", ["研发中心在杭州", "员工三千人"]),
    ("Acme builds robots in Berlin.", "Acme builds robots in Berlin.", []),
])
def test_model_replies_are_parsed_leniently(reply: str, text: str, points: list[str]) -> None:
    assert parse_summary(reply) == (text, points)


def test_zhiku_summarize_by_path_or_id(tmp_path: Path, embedder, capsys: pytest.CaptureFixture[str]) -> None:
    from zhiku.cli import main

    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    assert main(["summarize", "/docs/acme.md", "--kb", str(tmp_path / "kb"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"doc", "doc_id", "source", "summary", "key_points", "entities", "language", "backend",
                            "cached"}
    assert payload["doc_id"] == doc.id and payload["entities"][0] == "Acme Robotics" and not payload["cached"]
    assert main(["summarize", str(doc.id), "--kb", str(tmp_path / "kb")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("acme (/docs/acme.md)") and "Key entities: Acme Robotics" in out
    assert main(["summarize", "nope.md", "--kb", str(tmp_path / "kb")]) == 1
    assert "zhiku summarize: unknown document 'nope.md'" in capsys.readouterr().err


def test_the_assistant_shows_a_cached_summary_without_computing_one(kb: KnowledgeBase, embedder) -> None:
    from retrieval.assistant import Assistant
    from zhiku.settings import Settings

    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    assistant = Assistant(Settings(kb=kb.root, embedding_model=embedder.name), kb, embedder)
    assert assistant.cached_summary("acme") is None
    made = assistant.summarize(doc.id)
    assert assistant.cached_summary("acme").text == made.text


# ------------------------------------------------------------------------------------ with an LLM
class ScriptedLLM:
    """Records each (system, user) prompt and replies in the summary format; counts a word a token."""

    def __init__(self, context_window: int) -> None:
        from llama_index.core.base.llms.types import LLMMetadata

        self.metadata = LLMMetadata(context_window=context_window, num_output=64, model_name="scripted")
        self.calls: list[tuple[str, str]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat(self, messages):
        from llama_index.core.base.llms.types import ChatMessage, ChatResponse

        self.calls.append((messages[0].content, messages[1].content))
        reply = f"SUMMARY: part {len(self.calls)}.\nKEY POINTS:\n- point {len(self.calls)}"
        return ChatResponse(message=ChatMessage(role="assistant", content=reply))


def test_a_document_that_fits_the_window_is_summarised_in_one_call(kb: KnowledgeBase, embedder) -> None:
    from zhiku.prompts import SUMMARY

    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    llm = ScriptedLLM(context_window=4096)
    summary = summarize(kb, doc, llm=llm)
    assert len(llm.calls) == 1 and llm.calls[0][0] == SUMMARY["en"]["whole"]
    assert all(text in llm.calls[0][1] for text in ACME)
    assert summary.text == "part 1." and summary.key_points == ["point 1"] and summary.backend == "ScriptedLLM:scripted"


def test_a_long_document_is_mapped_part_by_part_then_reduced(kb: KnowledgeBase, embedder) -> None:
    from zhiku.prompts import SUMMARY

    doc = put(kb, embedder, "/docs/acme.md", ACME * 10, ACME_FACTS * 10, "v1")
    llm = ScriptedLLM(context_window=470)  # a part budget of about 130 words: several parts
    summary = summarize(kb, doc, llm=llm)
    maps, reduce = llm.calls[:-1], llm.calls[-1]
    assert len(maps) > 1 and all(system == SUMMARY["en"]["map"] for system, _ in maps)
    assert reduce[0] == SUMMARY["en"]["reduce"] and all(f"part {i}." in reduce[1] for i in range(1, len(maps) + 1))
    assert summary.text == f"part {len(llm.calls)}."


@pytest.mark.slow
def test_smollm2_on_ctranslate2_summarises_a_document(kb: KnowledgeBase, embedder, smollm2_cache: Path) -> None:
    from retrieval.llm import load_llm
    from zhiku.settings import Settings

    llm = load_llm(Settings(llm="local", llm_model="smollm2", model_cache=str(smollm2_cache), llm_max_new_tokens=60))
    doc = put(kb, embedder, "/docs/acme.md", ACME, ACME_FACTS, "v1")
    summary = summarize(kb, doc, llm=llm)
    assert summary.backend == "LocalLLM:smollm2" and not summary.warnings and summary.text
