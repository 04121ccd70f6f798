"""LoRA tuning of the local LLM: the keep/reject decision on fixed figures, versioned folders,
the choice recorded in the knowledge base's zhiku.toml, and (slow) a few real training steps on
SmolLM2 giving a merged model that CTranslate2 loads and runs."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tune.llm import Behaviour, decide, next_version, record_model
from zhiku.settings import Settings


def rates(citation, refusal) -> Behaviour:
    return Behaviour(citation_rate=citation, refusal_rate=refusal)


@pytest.mark.parametrize("base, tuned, kept", [
    (rates(0.2, 0.5), rates(0.6, 0.5), True),    # cites more, refuses as often
    (rates(0.2, 0.5), rates(0.2, 0.9), True),    # refuses more, cites as often
    (rates(0.2, 0.5), rates(0.9, 0.4), False),   # cites more but refuses less
    (rates(0.2, 0.5), rates(0.0, 1.0), False),   # a model that only refuses
    (rates(0.5, 0.5), rates(0.5, 0.5), False),   # no better
    (rates(None, 0.5), rates(0.9, 0.9), False),  # nothing answerable was measured
])
def test_a_tuned_model_is_kept_only_if_it_cites_and_refuses_at_least_as_well_and_one_better(base, tuned, kept):
    decision = decide(base, tuned)
    assert decision.kept is kept and decision.reason


def test_models_are_versioned_inside_the_knowledge_base(tmp_path: Path):
    models = tmp_path / "models"
    assert next_version(models).name == "llm-1"
    (models / "llm-1").mkdir(parents=True)
    (models / "llm-1-ct2-int8").mkdir()
    (models / "llm-3").mkdir()
    assert next_version(models).name == "llm-4"


def test_the_kept_model_is_recorded_as_llm_model_and_other_settings_stay(tmp_path: Path):
    (tmp_path / "zhiku.toml").write_text('top_k = 3  # mine\nllm_model = "smollm2"\n', encoding="utf-8")
    folder = tmp_path / "models" / "llm-2"
    record_model(tmp_path, folder)
    text = (tmp_path / "zhiku.toml").read_text(encoding="utf-8")
    assert "# mine" in text and tomllib.loads(text) == {"top_k": 3, "llm_model": str(folder.resolve())}
    assert Settings.load(cwd=tmp_path, env={}, overrides={"kb": tmp_path}).llm_model == str(folder.resolve())


def test_with_llm_auto_the_recorded_model_is_the_one_loaded(monkeypatch):
    import retrieval.llm

    loaded = []
    monkeypatch.setattr(retrieval.llm, "_load_local", lambda s: loaded.append((s.llm, s.llm_model)))
    retrieval.llm.load_llm(Settings(llm="auto", llm_model="/kb/models/llm-1"))
    assert loaded == [("local", "/kb/models/llm-1")]
