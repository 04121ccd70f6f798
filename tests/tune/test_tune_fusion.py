"""Choosing fusion weights: the simplex grid, the two guards on hand-made pools, and ``zhiku tune
fusion`` on a tiny knowledge base writing ``fusion_weights`` into its zhiku.toml."""
from __future__ import annotations

import json
import math
import shutil
import tomllib
from pathlib import Path

import pytest

from cli_runner import run_zhiku
from tune.fusion import choose, measure, measure_single, normalised, simplex, tune
from zhiku.records import Chunk, Document, Hit, User
from zhiku.settings import Settings, save_kb_settings

EVERYONE = User("eval", sees_all=True)


def hits(name: str, scored: list[tuple[str, float]]) -> list[Hit]:
    """A retriever's hits: one chunk per document source, with its raw score, best first."""
    return [
        Hit(Chunk(text="", position=0, n_tokens=1, doc_id=ord(s), id=ord(s)), Document(source=s, content_hash="h", id=ord(s)),
            score=score, found_by={name: rank})
        for rank, (s, score) in enumerate(scored, start=1)
    ]


def test_the_grid_covers_the_simplex_corners_included():
    grid = simplex(("vector", "keyword", "graph"), 0.5)
    assert len(grid) == 6 and all(sum(w.values()) == pytest.approx(1.0) for w in grid)
    assert {"vector": 0.0, "keyword": 0.0, "graph": 1.0} in grid and {"vector": 0.5, "keyword": 0.5, "graph": 0.0} in grid
    assert len(simplex(("vector", "keyword", "graph"), 0.1)) == 66
    with pytest.raises(ValueError, match="divide 1"):
        simplex(("vector", "keyword"), 0.3)
    assert normalised({"vector": 1.0, "keyword": 1.0, "graph": 0.5}) == {"vector": 0.4, "keyword": 0.4, "graph": 0.2}


# Two questions. Each retriever alone puts one question's document second (nDCG 1/log2(3) = 0.63);
# fused half and half, both come first: question 1 fuses a to (1 + 0.95) / 2 against x's (0.9 + 1) / 2.
POOLS = [
    {"vector": hits("vector", [("a", 1.0), ("x", 0.9), ("y", 0.0)]),
     "keyword": hits("keyword", [("x", 2.0), ("a", 1.9), ("q", 0.0)]), "graph": []},
    {"vector": hits("vector", [("z", 1.0), ("b", 0.95), ("w", 0.0)]),
     "keyword": hits("keyword", [("b", 2.0), ("z", 1.8), ("r", 0.0)]), "graph": []},
]
GOLDS = [{"a": 1.0}, {"b": 1.0}]
QUERIES = ["first question", "second question"]


def test_measure_fuses_as_hybrid_does_and_singles_use_their_own_ranking():
    second = 1 / math.log2(3)
    assert measure_single("vector", POOLS, GOLDS) == pytest.approx(((1 + second) / 2, 1.0))
    assert measure_single("keyword", POOLS, GOLDS) == pytest.approx(((second + 1) / 2, 1.0))
    assert measure_single("graph", POOLS, GOLDS) == (0.0, 0.0)
    assert measure({"vector": 0.5, "keyword": 0.5, "graph": 0.0}, QUERIES, POOLS, GOLDS, adapt=False) == (1.0, 1.0)


def test_the_best_candidate_is_chosen_when_it_clearly_beats_the_default():
    figures = {(0.5, 0.5, 0.0): (0.9, 1.0), (1.0, 0.0, 0.0): (0.6, 1.0), (0.0, 1.0, 0.0): (0.7, 1.0)}
    grid = [dict(zip(("vector", "keyword", "graph"), k)) for k in figures] + [{"vector": 0.0, "keyword": 0.0, "graph": 1.0}]
    decision = choose(grid, {"vector": 1.0, "keyword": 0.0, "graph": 0.0},
                      lambda w: figures.get(tuple(w.values()), (0.1, 0.1)), {"vector": (0.6, 1.0), "keyword": (0.7, 1.0), "graph": (0.1, 0.1)},
                      margin=0.01, progress=False)
    assert decision.chosen.weights == {"vector": 0.5, "keyword": 0.5, "graph": 0.0}
    assert decision.best_single.label == "keyword alone" and decision.default.ndcg == 0.6


def test_the_default_stays_within_the_margin_unless_a_single_retriever_beats_it():
    singles = {"vector": (0.80, 1.0), "keyword": (0.70, 1.0), "graph": (0.1, 0.1)}
    grid = [{"vector": 1.0, "keyword": 0.0, "graph": 0.0}, {"vector": 0.0, "keyword": 1.0, "graph": 0.0},
            {"vector": 0.0, "keyword": 0.0, "graph": 1.0}, {"vector": 0.5, "keyword": 0.5, "graph": 0.0}]
    default = {"vector": 0.6, "keyword": 0.4, "graph": 0.0}
    figures = {"vector": 0.80, "keyword": 0.70, "graph": 0.1}

    def score(w):
        if w == normalised(default):
            return (0.81, 1.0)
        return (0.815, 1.0) if w["vector"] == 0.5 else (figures[max(w, key=w.get)], 1.0)

    kept = choose(grid, default, score, singles, margin=0.01, progress=False)
    assert kept.chosen.label == "default" and "kept the default" in kept.reason
    # The never-lose guard: a default below the best single retriever is replaced, margin or not.
    worse = choose(grid, default, lambda w: (0.79, 1.0) if w == normalised(default) else score(w), singles,
                   margin=0.5, progress=False)
    assert worse.chosen.weights == {"vector": 0.5, "keyword": 0.5, "graph": 0.0}
    assert worse.chosen.ndcg >= worse.best_single.ndcg


class Fixed:
    def __init__(self, name: str, per_query: dict[str, list[Hit]]) -> None:
        self.name, self.per_query = name, per_query

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        return self.per_query[query][:k]


def test_tune_never_picks_weights_worse_than_the_best_single_retriever():
    retrievers = {name: Fixed(name, {q: pool[name] for q, pool in zip(QUERIES, POOLS)}) for name in ("vector", "keyword", "graph")}
    decision = tune(retrievers, list(zip(QUERIES, GOLDS)), {"vector": 0.0, "keyword": 0.0, "graph": 1.0}, EVERYONE,
                    step=0.25, progress=False)
    assert decision.questions == 2
    assert decision.chosen.ndcg >= decision.best_single.ndcg
    assert decision.chosen.weights["graph"] < 1.0  # the graph-only default finds nothing here


def test_save_kb_settings_keeps_other_keys_and_the_zhiku_table(tmp_path: Path):
    (tmp_path / "zhiku.toml").write_text('top_k = 7\n\n[zhiku]\nmode = "keyword"\n', encoding="utf-8")
    save_kb_settings(tmp_path, {"fusion_weights": {"vector": 0.3, "keyword": 0.7, "graph": 0.0}})
    data = tomllib.loads((tmp_path / "zhiku.toml").read_text(encoding="utf-8"))
    assert data == {"top_k": 7, "zhiku": {"mode": "keyword", "fusion_weights": {"vector": 0.3, "keyword": 0.7, "graph": 0.0}}}
    flat = tmp_path / "flat"
    flat.mkdir()
    save_kb_settings(flat, {"fusion_weights": {"vector": 1.0}})
    assert Settings.load(env={}, cwd=tmp_path, overrides={"kb": flat}).fusion_weights["vector"] == 1.0
    with pytest.raises(Exception, match="fusion_weights"):
        save_kb_settings(flat, {"fusion_weights": "vector=lots"})


@pytest.fixture
def tiny_kb(leak_kb: Path, tmp_path: Path) -> Path:
    """A copy of the leak-probe knowledge base (three documents) that this test may write into."""
    return Path(shutil.copytree(leak_kb, tmp_path / "kb"))


def test_zhiku_tune_fusion_writes_the_weights_the_next_settings_load_sees(tiny_kb, tmp_path, capsys, monkeypatch):
    (tiny_kb / "zhiku.toml").write_text("top_k = 4\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "fusion", "--kb", str(tiny_kb), "--n", "20", "--step", "0.25", "--json")
    assert code == 0, err
    payload = json.loads(out)
    chosen = payload["chosen"]["weights"]
    assert payload["saved_to"] == str(tiny_kb / "zhiku.toml") and payload["questions"] >= 1
    assert payload["chosen"]["ndcg@10"] >= payload["best_single"]["ndcg@10"]
    settings = Settings.load(overrides={"kb": tiny_kb}, env={})
    assert dict(settings.fusion_weights) == chosen and settings.top_k == 4

    code, text, _ = run_zhiku(capsys, monkeypatch, "tune", "fusion", "--kb", str(tiny_kb), "--n", "20", "--step", "0.5", "--dry-run")
    assert code == 0 and "chosen:" in text and "not saved (--dry-run)" in text and "default" in text
