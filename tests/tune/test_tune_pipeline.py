"""``zhiku tune --kb DIR`` runs every stage, measures before and after and records the run; ``zhiku eval
--tune`` tunes on the dataset's corpus alone: a dataset whose labels are wrong tunes exactly the same."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pair_corpus import CORPUS, SECRET, build_pair_kb

from cli_runner import run_zhiku
from eval.runner import RunConfig, run
from tune.pipeline import STAGES, PipelineConfig, load_runs
from tune.reranker import RerankerConfig
from zhiku.records import PUBLIC
from zhiku.settings import Settings

#: Two reranker steps on short inputs: the mechanics of every stage, in seconds.
TINY_RERANKER = RerankerConfig(max_steps=2, batch_size=4, max_length=64)


@pytest.mark.slow
def test_zhiku_tune_runs_every_stage_and_records_the_run(tmp_path: Path, embedder, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the tuned embedder's ONNX export
    root = build_pair_kb(tmp_path / "kb", embedder)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "--kb", str(root), "--n", "40", "--embedder-steps", "2",
                               "--max-steps", "2", "--batch-size", "4", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert [s["name"] for s in record["stages"]] == list(STAGES)
    assert all(s["status"] in ("done", "kept", "not kept") and s["detail"] for s in record["stages"])
    assert {"vector", "hybrid"} <= set(record["before"]) and {"vector", "hybrid"} <= set(record["after"])
    assert record["before"]["hybrid"]["ndcg@10"]["n"] == record["held_out"] > 0
    assert record["models_before"] == {"embedding_model": "minilm", "reranker": "none"}
    reranker = next(s for s in record["stages"] if s["name"] == "reranker")
    if reranker["status"] == "kept":  # then hybrid+rerank is measured after, with it
        assert record["models_after"]["reranker"] == reranker["report"]["model_path"]
        assert "hybrid+rerank" in record["after"]
    else:  # the previous setting stays
        assert record["models_after"]["reranker"] == "none"
        assert not (root / "models" / "reranker-1").exists()

    runs = load_runs(root)
    assert len(runs) == 1 and runs[0].to_json() == record
    assert SECRET not in out + (root / "tune" / "runs.jsonl").read_text()  # figures only, public pairs only
    assert [r["mode"] for r in runs[0].rows()][:3] == ["vector"] * 3


def _beir(root: Path, qrels: dict[str, str]) -> Path:
    """The pair corpus's passages as a BEIR folder (one document each) with three questions judged by ``qrels``."""
    root.mkdir(parents=True)
    docs = [{"_id": f"{source}-{i}", "title": title, "text": text}
            for source, (title, groups, passages) in CORPUS.items() if groups == (PUBLIC,)
            for i, (text, _) in enumerate(passages)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    questions = {"q1": "How much is a hotel night reimbursed in Germany?", "q2": "How often must passwords change?",
                 "q3": "Who approves large expense claims?"}
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in questions.items()),
                                        encoding="utf-8")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels.items()), encoding="utf-8")
    return root


def _tuning(cache: Path) -> dict:
    """The tuning run's record, less its clock readings."""
    (runs,) = cache.rglob("kb-tuned/tune/runs.jsonl")
    record = json.loads(runs.read_text())
    for stage in record["stages"]:
        stage.pop("seconds")
        stage["report"].pop("train_s", None)
        stage["detail"] = stage["detail"].replace(str(runs.parents[1]), "KB")
        if stage["report"].get("model_path"):
            stage["report"]["model_path"] = stage["report"]["recorded_in"] = "KB"
    record["models_after"]["reranker"] = Path(record["models_after"]["reranker"]).name
    for key in ("started", "seconds"):
        record.pop(key)
    return record


@pytest.mark.slow
def test_eval_tune_never_reads_the_datasets_questions_or_labels(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    right = {"q1": "travel.md-0", "q2": "security.md-0", "q3": "travel.md-1"}
    wrong = {"q1": "security.md-0", "q2": "travel.md-1", "q3": "travel.md-0"}  # every label points elsewhere
    tune = PipelineConfig(pairs=40, stages=("pairs", "reranker", "evaluate"), reranker=TINY_RERANKER)
    settings = Settings(kb=tmp_path / "unused", embedding_model="minilm", workers=1, extractor="none")
    results = {}
    for name, qrels in (("right", right), ("wrong", wrong)):
        config = RunConfig(dataset=_beir(tmp_path / name / "scifact", qrels), modes=["hybrid"], ks=[1, 5],
                           out=tmp_path / name / "out", cache_dir=tmp_path / name / "cache", progress=False, tune=tune)
        result, _, _ = run(config, settings)
        results[name] = result
        assert "tuned first on the corpus knowledge base" in " ".join(result.notes)
    assert _tuning(tmp_path / "right" / "cache") == _tuning(tmp_path / "wrong" / "cache")
    # the labels do reach the measuring after it: the two reports differ
    right_ndcg = results["right"].mode("hybrid").doc["ndcg@5"].mean
    wrong_ndcg = results["wrong"].mode("hybrid").doc["ndcg@5"].mean
    assert right_ndcg > wrong_ndcg


@pytest.mark.slow
def test_zhiku_tune_reranker_dry_run_prints_the_table_and_keeps_nothing(tmp_path: Path, embedder, capsys, monkeypatch):
    root = build_pair_kb(tmp_path / "kb", embedder)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "reranker", "--kb", str(root), "--n", "40",
                               "--max-steps", "1", "--batch-size", "4", "--dry-run")
    assert code == 0, err
    assert "| hybrid |" in out and "| onnx-int8 |" in out and "decision: not kept" in out
    assert (root / "tune" / "pairs.jsonl").is_file() and not any((root / "models").iterdir())
    assert not (root / "zhiku.toml").exists() and SECRET not in out
