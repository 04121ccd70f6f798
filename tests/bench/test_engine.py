"""Engine speed-ups that must not change results: the ONNX Runtime embedder and FAISS threading."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from zhiku.kb import KnowledgeBase, KnowledgeBaseError, faiss_threads
from zhiku.models import ModelError, load_embedder
from zhiku.records import Chunk, Document

TEXTS = [
    "The travel policy allows economy flights for trips under six hours.",
    "Anna Schmidt, the head of security in Berlin, approved the plan.",
    "差旅报销须在出差结束后三十天内提交。",
    "Budget for procurement is 450000 EUR for the year 2026; requests must be filed within 30 days.",
    "ok",
]


def test_onnx_backend_gives_the_same_vectors_as_pytorch(embedder):
    assert embedder.backend == "onnx"
    onnx = embedder.embed(TEXTS)
    torch = load_embedder("minilm", backend="torch").embed(TEXTS)
    assert onnx.shape == torch.shape == (len(TEXTS), 384)
    assert onnx.dtype == np.float32 and np.allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-5)
    assert (onnx * torch).sum(axis=1).min() > 0.9999


def test_onnx_backend_keeps_input_order_across_length_sorted_batches(embedder):
    one_by_one = np.stack([embedder.embed([t])[0] for t in TEXTS])
    together = load_embedder("minilm", batch_size=2).embed(TEXTS)
    assert (one_by_one * together).sum(axis=1).min() > 0.9999


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ModelError, match="onnx, onnx-int8, torch"):
        load_embedder("minilm", backend="tensorrt")


def test_faiss_runs_single_threaded_unless_configured(tmp_path, monkeypatch):
    with KnowledgeBase.open(tmp_path / "kb", "test", 4) as kb:
        kb.put_document(Document(source="a.txt", content_hash="1"), [Chunk(text="x", position=0, n_tokens=1)],
                        np.full((1, 4), 0.5, dtype=np.float32))
        monkeypatch.setenv("ZHIKU_FAISS_THREADS", "2")
        kb.vector_index()
        assert faiss.omp_get_max_threads() == 2
        monkeypatch.delenv("ZHIKU_FAISS_THREADS")
        kb.reindex()
        kb.put_document(Document(source="b.txt", content_hash="2"), [Chunk(text="y", position=0, n_tokens=1)],
                        np.full((1, 4), 0.5, dtype=np.float32))
    with KnowledgeBase.open(tmp_path / "kb", "test") as kb:
        assert kb.vector_index().ntotal == 2
        assert faiss.omp_get_max_threads() == 1


def test_a_bad_thread_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("ZHIKU_FAISS_THREADS", "many")
    with pytest.raises(KnowledgeBaseError, match="ZHIKU_FAISS_THREADS"):
        faiss_threads()


def test_int8_minilm_is_a_model_of_its_own_close_to_the_float_one(embedder):
    int8 = load_embedder("minilm-int8")
    assert int8.name == "minilm-int8" and int8.dimension == embedder.dimension
    assert (int8.embed(TEXTS) * embedder.embed(TEXTS)).sum(axis=1).min() > 0.97


def test_the_torch_free_onnx_encoder_matches_sentence_transformers(embedder):
    """Once the export is cached, a new process embeds with ONNX Runtime and ``tokenizers`` alone:
    the same token counts, dimension, window and vectors as the sentence-transformers path."""
    texts = [*TEXTS, "  padded with spaces  ", "word " * 400, "", "émoji 😀 and\ttabs"]
    embedder.embed(TEXTS)  # the export exists from here on
    light = load_embedder("minilm")
    full = load_embedder("minilm")
    full.__dict__["_light"] = None  # what a first run, before the export, goes through
    assert light._light is not None and full._onnx is not None
    assert (light.dimension, light.max_tokens) == (full.dimension, full.max_tokens) == (384, 256)
    assert light.count_tokens(texts) == full.count_tokens(texts)
    assert np.abs(light.embed(texts) - full.embed(texts)).max() < 1e-5
