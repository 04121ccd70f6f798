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


class Replies:
    """An LLM that streams the given replies, one per prompt, in order."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = iter(replies)

    def stream_chat(self, messages):
        from types import SimpleNamespace

        yield SimpleNamespace(delta=next(self.replies), raw=None)


def test_citing_means_saying_something_from_the_gold_passage_and_refusing_means_the_phrase(tune_kb_path: Path, embedder):
    from retrieval.llm import estimate_tokens
    from tune.examples import build_examples
    from tune.llm import measure
    from zhiku.kb import KnowledgeBase

    with KnowledgeBase.open(tune_kb_path, embedder.name) as kb:
        examples = build_examples(kb, questions=6, count_tokens=estimate_tokens)
    answerable = [e for e in examples if e.answerable][:3]
    unanswerable = [e for e in examples if not e.answerable][:2]
    good, bare, wrong = (f"{answerable[0].gold} [{answerable[0].cite}]", f"[{answerable[1].cite}]",
                         "not in the documents")
    measured = measure(Replies([good, bare, wrong, "not in the documents", "It is 42 [1]."]),
                       answerable + unanswerable, timeout_s=5)
    assert measured.citation_rate == pytest.approx(1 / 3) and measured.false_refusals == pytest.approx(1 / 3)
    assert measured.refusal_rate == 0.5 and (measured.answerable, measured.unanswerable) == (3, 2)


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
    assert tomllib.loads(text) == {"top_k": 3, "llm_model": str(folder.resolve())}
    assert Settings.load(cwd=tmp_path, env={}, overrides={"kb": tmp_path}).llm_model == str(folder.resolve())


def test_with_llm_auto_the_recorded_model_is_the_one_loaded(monkeypatch):
    import retrieval.llm

    loaded = []
    monkeypatch.setattr(retrieval.llm, "_load_local", lambda s: loaded.append((s.llm, s.llm_model)))
    retrieval.llm.load_llm(Settings(llm="auto", llm_model="/kb/models/llm-1"))
    assert loaded == [("local", "/kb/models/llm-1")]


def test_zhiku_tune_llm_is_a_command_with_its_options(capsys, tune_kb_path: Path):
    from zhiku.cli import main

    with pytest.raises(SystemExit) as done:
        main(["tune", "llm", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and all(flag in out for flag in ("--model", "--steps", "--kb", "--json"))
    assert main(["tune", "llm", "--kb", str(tune_kb_path), "--steps", "0"]) == 2
    assert "--steps must be 1 or more" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ SmolLM2 (slow)
@pytest.mark.slow
def test_a_few_lora_steps_on_smollm2_give_a_merged_model_that_ctranslate2_runs(
    smollm2_cache: Path, tune_kb_path: Path, embedder, tmp_path: Path,
):
    from retrieval.llm import describe_llm, estimate_tokens, load_llm
    from retrieval.local_llm import LocalLLM
    from retrieval.local_models import ct2_folder, resolve_local_model
    from tune.examples import build_examples
    from tune.llm import TuneConfig, save_merged, train_adapter
    from zhiku.kb import KnowledgeBase

    with KnowledgeBase.open(tune_kb_path, embedder.name) as kb:
        examples = build_examples(kb, questions=2, count_tokens=estimate_tokens, passages=2, budget=384)
    base = resolve_local_model("smollm2", smollm2_cache)
    merged, tokenizer, losses = train_adapter(base, examples, TuneConfig(steps=3, rank=4, alpha=8))
    assert len(losses) == 3 and all(0 < loss < 20 for loss in losses)

    models = tmp_path / "kb" / "models"
    models.mkdir(parents=True)
    target = save_merged(merged, tokenizer, next_version(models))
    ct2 = ct2_folder(target, models)
    assert ct2 == models / "llm-1-ct2-int8" and (target / "model.safetensors").exists()
    llm = LocalLLM.open(target, "llm-1", context_window=2048, max_new_tokens=8, timeout_s=60, ct2=ct2)
    assert llm.runtime_name == "ctranslate2" and llm.complete("What is the capital of France?").text.strip()

    elsewhere = tmp_path / "user-cache"  # the product loads the copy beside the folder, converting nothing
    again = load_llm(Settings(llm="local", llm_model=str(target), model_cache=str(elsewhere), llm_max_new_tokens=4))
    assert describe_llm(again)["runtime"] == "ctranslate2" and not elsewhere.exists()
