"""``zhiku tune reranker``: a tiny training gives a versioned ONNX reranker folder that ``hybrid+rerank``
loads from the knowledge base's settings; a reranker that does not beat hybrid is never switched to;
the decision's rules on hand-made figures."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from tune_corpus import SECRET

from eval.metrics import Estimate
from retrieval import build_retriever, load_reranker
from retrieval.rerank import ONNX_MANIFEST, CrossEncoderReranker, OnnxCrossEncoder
from tune.fusion import LOCAL_ADMIN
from tune.pairs import PairSet, TrainingPair
from tune.reranker import RerankerConfig, choose_engine, decide, tune_reranker
from zhiku.kb import KnowledgeBase
from zhiku.records import PUBLIC
from zhiku.settings import Settings, save_kb_settings

#: A few steps on short inputs: the mechanics, not a useful model.
TINY = RerankerConfig(max_steps=3, batch_size=4, max_length=64)


def hand_pairs(kb: KnowledgeBase) -> PairSet:
    """Questions written by hand for the public chunks (as ``tune.pairs`` would generate them), the
    other public documents' chunks as negatives; the last two held out."""
    public = [c for c in kb.iter_chunks() if PUBLIC in kb.get_document(c.doc_id).groups]
    pairs = [TrainingPair(" ".join(c.text.split()[:7]), c.id,
                          tuple(o.id for o in public if o.doc_id != c.doc_id)[:3], "cloze") for c in public]
    return PairSet(train=pairs[:-2], holdout=pairs[-2:])


@pytest.fixture()
def kb_copy(tune_kb_path: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tune_kb_path, tmp_path / "kb"))


@pytest.mark.slow
def test_a_trained_reranker_is_an_onnx_folder_that_hybrid_rerank_loads(kb_copy, embedder):
    settings = Settings(kb=kb_copy, embedding_model="minilm")
    with KnowledgeBase.open(kb_copy, "minilm") as kb:
        # margin -1: keep whatever it scores, to follow the kept path to the end
        report = tune_reranker(kb, embedder, settings, hand_pairs(kb), RerankerConfig(**{**TINY.__dict__, "margin": -1.0}))
    folder = kb_copy / "models" / "reranker-1"
    assert report.kept and report.model_path == str(folder.resolve())
    assert {"hybrid", "onnx", "onnx-int8"} <= set(report.figures)
    assert (folder / "onnx" / "model.onnx").is_file() and (folder / "onnx" / "model_int8.onnx").is_file()
    assert json.loads((folder / ONNX_MANIFEST).read_text())["engine"] == report.engine
    assert SECRET not in json.dumps(report.to_json()) + report.table()  # figures only, no passage

    recorded = tomllib.loads((kb_copy / "zhiku.toml").read_text())["reranker"]
    reranker = load_reranker(Settings.load({"kb": kb_copy}, env={}))
    assert recorded == str(folder.resolve()) and isinstance(reranker._model, OnnxCrossEncoder)
    with KnowledgeBase.open(kb_copy, "minilm") as kb:
        retriever = build_retriever(kb, embedder, settings, "hybrid+rerank", reranker=reranker)
        hits = retriever.retrieve("How much is the hotel allowance per night?", 3, LOCAL_ADMIN)
    assert retriever.name == "hybrid+rerank" and len(hits) == 3

    # the float ONNX export scores as the saved CrossEncoder does in PyTorch
    from sentence_transformers import CrossEncoder

    pairs = [(h.chunk.text[:40], h.chunk.text) for h in hits]
    choose_engine(folder, "onnx", TINY.max_length)
    onnx_scores = CrossEncoderReranker(folder)._model.predict(pairs)
    torch_scores = CrossEncoder(str(folder), device="cpu", max_length=TINY.max_length).predict(pairs)
    assert np.allclose(onnx_scores, torch_scores, atol=1e-4)


@pytest.mark.slow
def test_a_reranker_that_does_not_beat_the_current_setup_is_not_switched_to(kb_copy, embedder):
    save_kb_settings(kb_copy, {"top_k": 3})
    before = (kb_copy / "zhiku.toml").read_text()
    settings = Settings(kb=kb_copy, embedding_model="minilm")
    with KnowledgeBase.open(kb_copy, "minilm") as kb:
        # nDCG@10 is at most 1, so no reranker gains a margin of 1 over hybrid
        report = tune_reranker(kb, embedder, settings, hand_pairs(kb), RerankerConfig(**{**TINY.__dict__, "margin": 1.0}))
    assert not report.kept and report.model_path is None and report.recorded_in is None
    assert "does not beat hybrid" in report.reason and "settings stay" in report.reason
    assert (kb_copy / "zhiku.toml").read_text() == before
    assert not any((kb_copy / "models").iterdir())  # the candidate folder is removed


def figures(**means: float) -> dict[str, dict[str, Estimate]]:
    return {name: {"ndcg@10": Estimate(mean, mean, mean, 10)} for name, mean in means.items()}


def test_int8_is_used_unless_it_loses_more_than_the_tolerance():
    assert decide(figures(hybrid=0.5, onnx=0.700, **{"onnx-int8": 0.697}), 0.005, 0.005).engine == "onnx-int8"
    assert decide(figures(hybrid=0.5, onnx=0.700, **{"onnx-int8": 0.690}), 0.005, 0.005).engine == "onnx"


def test_the_new_reranker_must_beat_hybrid_and_the_current_one_by_the_margin():
    kept = decide(figures(hybrid=0.60, onnx=0.70, **{"onnx-int8": 0.70}), 0.005, 0.005)
    assert kept.kept and "hybrid 0.600" in kept.reason
    near = decide(figures(hybrid=0.698, onnx=0.70, **{"onnx-int8": 0.70}), 0.005, 0.005)
    assert not near.kept
    worse_than_current = decide(figures(hybrid=0.60, current=0.75, onnx=0.70, **{"onnx-int8": 0.70}), 0.005, 0.005)
    assert not worse_than_current.kept and "current 0.750" in worse_than_current.reason


def test_a_reranker_manifest_naming_a_missing_file_is_a_clear_error(tmp_path):
    from zhiku.errors import ModelError

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / ONNX_MANIFEST).write_text(json.dumps({"onnx": "onnx/model.onnx"}))
    with pytest.raises(ModelError, match="missing; train the reranker again"):
        CrossEncoderReranker(tmp_path)
