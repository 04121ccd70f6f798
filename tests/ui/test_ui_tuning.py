"""The Evaluation page lists the knowledge base's tuning runs with their before/after table; an admin
starts a run from it; a non-admin sees neither the runs nor the start button."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from apptest import add_users, no_errors, sign_in, start
from eval.metrics import Estimate
from tune.holdout import as_json
from tune.pipeline import RunRecord, StageRecord, append_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tune"))
from pair_corpus import SECRET, build_pair_kb  # noqa: E402


def a_run() -> RunRecord:
    figures = lambda mean: {"ndcg@10": Estimate(mean, mean - 0.05, mean + 0.05, 40)}  # noqa: E731
    return RunRecord(
        started="2026-12-02 10:00:00 UTC", seconds=600.0, train_pairs=160, held_out=40,
        stages=[StageRecord("pairs", "done", "160 train, 40 held out", 30.0),
                StageRecord("reranker", "kept", "hybrid+rerank 0.700 ndcg@10 against hybrid 0.600", 500.0),
                StageRecord("evaluate", "done", "held-out pairs, before and after", 20.0)],
        before=as_json({"vector": figures(0.5), "hybrid": figures(0.6)}),
        after=as_json({"vector": figures(0.5), "hybrid": figures(0.6), "hybrid+rerank": figures(0.7)}),
        models_before={"embedding_model": "minilm", "reranker": "none"},
        models_after={"embedding_model": "minilm", "reranker": "/kb/models/reranker-1"},
    )


def test_the_evaluation_page_shows_each_tuning_run_with_its_before_and_after(ui_kb: Path) -> None:
    append_run(ui_kb, a_run())
    at = start().switch_page("views/evaluation.py").run()
    no_errors(at)
    assert "Tuning runs" in [h.value for h in at.subheader]
    stages, table = at.dataframe[0].value, at.dataframe[1].value
    assert list(stages["decision"]) == ["done", "kept", "done"]
    assert table.loc[("hybrid+rerank", "ndcg@10"), "after"] == "0.700 [0.65, 0.75]"
    assert table.loc[("hybrid+rerank", "ndcg@10"), "before"] == "–"  # no reranker before the run
    assert "Start tuning" in [b.label for b in at.button]


def test_a_non_admin_sees_no_tuning_run_and_cannot_start_one(ui_kb: Path) -> None:
    append_run(ui_kb, a_run())
    add_users(ui_kb)
    at = sign_in(start(), "bob", "bob-password")
    no_errors(at)
    assert "Start tuning" not in [b.label for b in at.button]
    assert "Tuning runs" not in [h.value for h in at.subheader]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/evaluation.py")


@pytest.mark.slow
def test_an_admin_starts_a_tuning_run_that_never_shows_restricted_text(tmp_path: Path, embedder,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    kb = build_pair_kb(tmp_path / "kb", embedder)
    monkeypatch.setenv("ZHIKU_KB", str(kb))
    monkeypatch.setenv("ZHIKU_LLM", "extractive")
    monkeypatch.chdir(tmp_path)
    at = start().switch_page("views/evaluation.py").run()
    assert any("No tuning run yet" in i.value for i in at.info)
    at.number_input(key="tune_n").set_value(40)
    at.multiselect(key="tune_stages").set_value(["pairs", "evaluate"])
    at.button[[b.label for b in at.button].index("Start tuning")].click().run(timeout=600)
    no_errors(at)
    assert any("Tuning run recorded" in s.value for s in at.success)
    assert list(at.dataframe[0].value["stage"]) == ["pairs", "evaluate"]
    shown = [str(e.value) for kind in ("markdown", "caption", "success", "info") for e in getattr(at, kind)]
    shown += [at.dataframe[i].value.to_string() for i in range(len(at.dataframe))]
    assert not any(SECRET in text for text in shown)
