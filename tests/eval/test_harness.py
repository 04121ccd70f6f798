"""The harness end to end on a tiny corpus: a cached knowledge base, every mode, the report files."""
import json
from pathlib import Path

import pytest

from eval.datasets import cache_slot, load_dataset, prepare_kb
from eval.gold import resolve
from eval.runner import RunConfig, run
from zhiku.cli import main
from zhiku.kb import KnowledgeBase

MODES = ["vector", "keyword", "graph", "hybrid", "hybrid+rerank"]


@pytest.fixture(scope="module")
def outcome(tiny, settings, embedder):
    config = RunConfig(dataset=tiny / "qa.jsonl", modes=MODES, ks=[1, 3], out=tiny / "out", corpus=tiny / "corpus",
                       cache_dir=tiny / "cache", answers=True, progress=False)
    return run(config, settings, embedder)


def test_every_artefact_is_written(outcome, tiny):
    _, _, paths = outcome
    for name in ("metrics.json", "per_query.jsonl", "report.md", "recall_at_k_doc.png", "recall_at_k_chunk.png",
                 "wins_losses.png"):
        assert (tiny / "out" / name).stat().st_size > 0, name
    assert paths["report"] == tiny / "out" / "report.md"


def test_metrics_cover_each_mode_level_and_k(outcome, tiny):
    metrics = json.loads((tiny / "out" / "metrics.json").read_text())
    assert metrics["ks"] == [1, 3]
    assert metrics["setup"]["embedding_model"] == "minilm" and metrics["setup"]["documents"] == 4
    assert metrics["setup"]["depth"] == 6  # twice the largest k
    assert metrics["coverage"] == {"queries": 5, "judged": 4, "judged_chunk_level": 3, "unanswerable": 1,
                                   "unresolved_labels": 0, "unresolved_queries": 0}
    vector = metrics["modes"]["vector"]
    assert set(vector["doc"]) == {f"{m}@{k}" for m in ("hit_rate", "recall", "precision", "mrr", "ndcg", "map")
                                  for k in (1, 3)}
    assert vector["doc"]["hit_rate@3"]["n"] == 4 and vector["chunk"]["hit_rate@3"]["n"] == 3
    low, mean, high = (vector["doc"]["recall@3"][x] for x in ("low", "mean", "high"))
    assert 0 <= low <= mean <= high <= 1
    assert metrics["modes"]["hybrid"]["doc"]["recall@3"]["mean"] >= 0.75  # four tiny documents: easy


def test_a_mode_without_its_reranker_is_skipped_with_the_reason(outcome, tiny):
    result, _, _ = outcome
    rerank = next(m for m in result.modes if m.mode == "hybrid+rerank")
    assert "needs a reranker" in rerank.skipped and not rerank.queries
    assert "hybrid+rerank" in (tiny / "out" / "report.md").read_text() and "Skipped modes" in (tiny / "out" / "report.md").read_text()


def test_per_query_rows_name_query_mode_and_ranking(tiny, outcome):
    rows = [json.loads(line) for line in (tiny / "out" / "per_query.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 4  # judged queries x modes that ran
    leave = next(r for r in rows if r["query_id"] == "leave" and r["mode"] == "vector")
    assert leave["docs"][0].endswith("hr/leave.md") and leave["doc"]["mrr@3"] == 1.0


def test_report_has_a_table_per_level_and_k(tiny, outcome):
    report = (tiny / "out" / "report.md").read_text()
    assert "**Document level, k = 3** (4 queries)" in report and "**Chunk level, k = 1** (3 queries)" in report
    assert "| hybrid | " in report and "![wins_losses](wins_losses.png)" in report


def test_answers_are_scored_with_the_method_named(tiny, outcome):
    answers = json.loads((tiny / "out" / "metrics.json").read_text())["answers"]
    assert answers["backend"] == "extractive" and answers["citation_method"] == "token overlap + embedding similarity"
    assert answers["answers"] == 5 and answers["with_gold"] == 3 and answers["unanswerable"] == 1
    assert answers["refusal_rate_unanswerable"] == 1.0  # "What is the capital of Mars?"
    assert answers["contains_gold"] >= 2 / 3
    rows = [json.loads(line) for line in (tiny / "out" / "answers.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (tiny / "qa.jsonl").read_text().splitlines()]
    assert {r["query_id"] for r in rows} == {q["id"] for q in questions}
    assert "## Answer quality (mode hybrid, answer backend extractive)" in (tiny / "out" / "report.md").read_text()


def test_the_knowledge_base_is_cached_and_reused(tiny, settings, embedder, outcome):
    dataset = load_dataset(tiny / "qa.jsonl", corpus=tiny / "corpus")
    first = prepare_kb(dataset, tiny / "cache", settings, embedder, progress=False)
    stamp = (first / "kb.sqlite").stat().st_mtime_ns
    assert prepare_kb(dataset, tiny / "cache", settings, embedder, progress=False) == first
    assert (first / "kb.sqlite").stat().st_mtime_ns == stamp
    assert cache_slot(dataset, tiny / "cache", settings) == first.parent
    for changed in (settings.replace(chunk_tokens=64), settings.replace(embedding_model="multilingual")):
        assert cache_slot(dataset, tiny / "cache", changed) != first.parent


def test_beir_corpus_ids_map_to_the_ingested_documents(tmp_path, settings, embedder):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": "doc:1", "title": "Aspirin", "text": "Aspirin lowers fever and eases mild pain."},
              {"_id": "doc:2", "title": "Tides", "text": "Ocean tides follow the pull of the moon."}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "what lowers a fever"}), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tdoc:1\t1\n", encoding="utf-8")
    dataset = load_dataset(root)
    kb_dir = prepare_kb(dataset, tmp_path / "cache", settings, embedder, progress=False)
    from eval.datasets import corpus_files, corpus_folder

    files = corpus_files(dataset, corpus_folder(dataset, tmp_path / "cache", settings))
    with KnowledgeBase.open(kb_dir, embedder.name) as kb:
        [judgement] = resolve(dataset, kb, files)
        assert [d.title for d in kb.documents()] and not judgement.unresolved
        [source] = judgement.docs
        assert kb.get_document(source).source == str(files["doc:1"])


def test_cli_prints_json_with_the_contract_shape(tiny, capsys):
    code = main(["eval", "--dataset", str(tiny / "qa.jsonl"), "--corpus", str(tiny / "corpus"), "--modes",
                 "vector,keyword", "--k", "1,3", "--out", str(tiny / "cli"), "--cache", str(tiny / "cache"),
                 "--limit", "2", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["modes"]) == {"vector", "keyword"} and payload["coverage"]["queries"] == 2
    assert Path(payload["out"]["report"]).exists()


def test_cli_without_dataset_is_a_usage_error(capsys):
    assert main(["eval"]) == 2
    assert "--dataset PATH is required" in capsys.readouterr().err


def test_relative_sources_match_an_existing_knowledge_base_by_path_suffix(tiny, tiny_kb, embedder, tmp_path):
    row = {"id": "a", "query": "leave", "relevant": ["hr/leave.md", "hr/missing.md"], "answer": "25 days"}
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with KnowledgeBase.open(tiny_kb, embedder.name) as kb:
        [judgement] = resolve(load_dataset(path), kb)  # no corpus folder given: the knowledge base's sources
    assert [Path(s).relative_to(tiny / "corpus").as_posix() for s in judgement.docs] == ["hr/leave.md"]
    assert judgement.unresolved == ["hr/missing.md"]
    assert judgement.chunks  # the chunk holding "25 days"
