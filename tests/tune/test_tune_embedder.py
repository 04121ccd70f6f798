"""Fine-tuning the embedder: the keep/switch decision on fixed figures, the held-out figures, the
refusal of bases without a training path, and (slow) real few-step trainings: one switched to (a
loadable, ONNX-exported ``models/embedder-N`` and a re-embedded knowledge base), one ruined by a
huge learning rate and refused (nothing written, the knowledge base untouched)."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from pair_corpus import build_pair_kb

from cli_runner import run_zhiku
from tune.embedder import EmbedderConfig, Figures, decide, figures, next_version, trainable_base, tune_embedder
from tune.pairs import build_pairs, save_pairs
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings


@pytest.mark.parametrize("after, switched", [
    ({0.5: Figures(0.9, 0.70, 10), 1.0: Figures(0.9, 0.65, 10)}, True),    # MRR up, recall kept
    ({0.5: Figures(0.9, 0.60, 10)}, False),                                # no better
    ({1.0: Figures(0.8, 0.75, 10)}, False),                                # MRR up but recall down
])
def test_a_tuned_embedder_is_switched_to_only_if_it_finds_held_out_chunks_better(after, switched):
    alpha, kept, reason = decide(Figures(0.9, 0.60, 10), after, margin=0.0)
    assert kept is switched and reason
    if switched:
        assert alpha == 0.5 and "better" in reason


def test_too_few_held_out_pairs_decide_nothing():
    alpha, kept, reason = decide(Figures(1.0, 1.0, 2), {1.0: Figures(1.0, 1.0, 2)}, margin=-1.0)
    assert not kept and "held-out pairs" in reason


def test_held_out_figures_rank_each_positive_among_the_chunks():
    chunks = np.eye(3, dtype=np.float32)
    queries = np.array([[1, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)  # first ranks 10 first; second ranks 11 first
    assert figures(queries, chunks, [10, 11, 12], [10, 10], k=1) == Figures(0.5, 0.5, 2)
    assert figures(queries, chunks, [10, 11, 12], [10, 10], k=2) == Figures(1.0, 0.75, 2)


def test_only_sentence_transformers_models_can_be_tuned(tmp_path: Path):
    assert (trainable_base("minilm") / "config.json").exists()
    assert (trainable_base("e5") / "config_sentence_transformers.json").exists()  # the multilingual one
    with pytest.raises(TuneError, match="numpy-only.*--embedding-model e5"):
        trainable_base("multilingual")
    assert next_version(tmp_path).name == "embedder-1"
    (tmp_path / "embedder-3").mkdir()
    assert next_version(tmp_path).name == "embedder-4"


@pytest.fixture
def tuned_kb(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh pair knowledge base, its ONNX exports in a private cache, half its documents held out."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = build_pair_kb(tmp_path / "kb", embedder)
    with KnowledgeBase.open(root, embedder.name) as kb:
        save_pairs(root, build_pairs(kb, Settings(kb=root), n=50, embedder=embedder, holdout_share=0.5))
    return root


@pytest.mark.slow
def test_a_few_training_steps_give_a_versioned_onnx_model_and_re_embed_the_knowledge_base(tuned_kb: Path, embedder):
    from tune.pairs import load_pairs
    from zhiku.models import load_embedder, onnx_cache_dir

    settings = Settings(kb=tuned_kb)
    with KnowledgeBase.open(tuned_kb, embedder.name) as kb:
        # margin -1: the mechanics of switching, whatever two steps at a low rate did to MRR
        report = tune_embedder(kb, settings, load_pairs(tuned_kb), EmbedderConfig(steps=2, batch_size=4, margin=-1.0),
                               embedder=embedder)
        assert report.kept, report.reason
        folder = tuned_kb / "models" / "embedder-1"
        assert report.model_path == str(folder.resolve()) and kb.manifest.embedding_model == report.model_path
        texts = {c.id: c.text for c in kb.iter_chunks()}
        stored = kb.vectors_of(list(texts))
    assert report.reembedded == len(texts) and report.before.pairs >= 5
    written = tomllib.loads((tuned_kb / "zhiku.toml").read_text())
    assert written["embedding_model"] == report.model_path and "fusion_weights" not in written  # MiniLM's are the global ones
    tuned = load_embedder(str(folder))
    fresh = tuned.embed(list(texts.values()))
    assert np.all(np.sum(fresh * stored, axis=1) > 0.999)  # the stored vectors are the tuned model's
    assert list(onnx_cache_dir().glob("embedder-1-*.onnx"))  # exported like the shipped models
    with KnowledgeBase.open(tuned_kb, report.model_path) as kb:  # what every command now opens it with
        from retrieval.vector import VectorRetriever
        from zhiku.records import LOCAL_USER

        hits = VectorRetriever(kb, tuned).retrieve("How long is parental leave?", 1, LOCAL_USER)
    assert "Parental leave" in hits[0].chunk.text


@pytest.mark.slow
def test_a_worse_model_is_refused_and_nothing_changes(tuned_kb: Path, embedder, capsys, monkeypatch):
    with KnowledgeBase.open(tuned_kb, embedder.name) as kb:
        before = kb.vectors_of([c.id for c in kb.iter_chunks()])
    # a learning rate a thousand times too high ruins the model in a few steps
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "embedder", "--kb", str(tuned_kb), "--steps", "6",
                               "--batch-size", "4", "--lr", "0.01", "--alphas", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert not report["kept"] and ("no better" in report["reason"] or "loses recall" in report["reason"])
    assert report["candidates"]["1.0"]["mrr@10"] < report["before"]["mrr@10"]
    assert not (tuned_kb / "models").exists() or not list((tuned_kb / "models").iterdir())
    assert not (tuned_kb / "zhiku.toml").exists()
    with KnowledgeBase.open(tuned_kb, embedder.name) as kb:  # still the old model, the old vectors
        assert np.array_equal(kb.vectors_of([c.id for c in kb.iter_chunks()]), before)


def test_bad_options_are_usage_errors(tuned_kb: Path, capsys, monkeypatch):
    for flags, named in ((["--alphas", "0,1"], "--alphas"), (["--lr", "3"], "--lr"), (["--steps", "0"], "--steps")):
        code, _, err = run_zhiku(capsys, monkeypatch, "tune", "embedder", "--kb", str(tuned_kb), *flags)
        assert code == 2 and named in err


def test_a_model_tuned_from_e5_keeps_e5s_fusion_weights(tuned_kb: Path, embedder):
    import shutil

    from retrieval.fusion import default_weights
    from tune.embedder import switch
    from zhiku.models import minilm_path

    folder = tuned_kb / "models" / "embedder-1"
    shutil.copytree(minilm_path(), folder)  # stands in for a tuned e5: switching is what is tested
    settings = Settings(kb=tuned_kb, fusion_weights={"graph": 0.0})
    with KnowledgeBase.open(tuned_kb, embedder.name) as kb:
        switch(kb, folder, settings, progress=False, base="e5")
    written = tomllib.loads((tuned_kb / "zhiku.toml").read_text())
    assert written["fusion_weights"] == {**default_weights("e5"), "graph": 0.0}  # set weights stay over them
