"""Settings come from defaults, zhiku.toml (working folder, then the knowledge base), ZHIKU_* and flags."""
from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.settings import Settings, SettingsError


def test_precedence_files_then_environment_then_flags(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (tmp_path / "zhiku.toml").write_text(f'kb = "{kb}"\ntop_k = 3\nmode = "vector"\nllm = "local"\n')
    (kb / "zhiku.toml").write_text('[zhiku]\ntop_k = 4\nmode = "keyword"\n')
    settings = Settings.load({"mode": "graph", "llm": None}, env={"ZHIKU_TOP_K": "7"}, cwd=tmp_path)
    assert settings.kb == kb
    assert (settings.top_k, settings.mode, settings.llm) == (7, "graph", "local")


def test_kb_from_environment_else_default(tmp_path: Path) -> None:
    assert Settings.load(env={"ZHIKU_KB": str(tmp_path / "x")}, cwd=tmp_path).kb == tmp_path / "x"
    assert Settings.load(env={}, cwd=tmp_path).kb == Path("zhiku-kb")


def test_bad_values_and_unknown_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="'top_k'.*ZHIKU_TOP_K.*int"):
        Settings.load(env={"ZHIKU_TOP_K": "many"}, cwd=tmp_path)
    (tmp_path / "zhiku.toml").write_text('topk = 3\n')
    with pytest.raises(SettingsError, match="unknown setting 'topk'"):
        Settings.load(env={}, cwd=tmp_path)
    (tmp_path / "zhiku.toml").write_text('top_k = \n')
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(env={}, cwd=tmp_path)


def test_fusion_weights_hold_only_what_was_set(tmp_path: Path) -> None:
    assert Settings().fusion_weights == {}  # the embedder's defaults apply (retrieval.fusion.default_weights)
    (tmp_path / "zhiku.toml").write_text("fusion_weights = {graph = 1.0}\n")
    assert Settings.load(env={}, cwd=tmp_path).fusion_weights == {"graph": 1.0}
    from_env = Settings.load(env={"ZHIKU_FUSION_WEIGHTS": "keyword=2, graph=0"}, cwd=tmp_path)
    assert from_env.fusion_weights == {"keyword": 2.0, "graph": 0.0}


def test_the_fusion_method_and_adaptation_are_typed_settings(tmp_path: Path) -> None:
    assert (Settings().fusion_method, Settings().fusion_adapt) == ("score", True)
    settings = Settings.load(env={"ZHIKU_FUSION_METHOD": "rrf", "ZHIKU_FUSION_ADAPT": "no"}, cwd=tmp_path)
    assert (settings.fusion_method, settings.fusion_adapt) == ("rrf", False)
    with pytest.raises(SettingsError, match="fusion_method"):
        Settings.load(env={"ZHIKU_FUSION_METHOD": "borda"}, cwd=tmp_path)


@pytest.mark.parametrize("name, bad", [("mode", "semantic"), ("llm", "gpt"), ("extractor", "spacy"), ("pii", "mask")])
def test_a_choice_setting_is_checked_once_wherever_it_comes_from(name, bad, tmp_path):
    for make in (
        lambda: Settings(**{name: bad}),
        lambda: Settings().replace(**{name: bad}),
        lambda: Settings.load(env={f"ZHIKU_{name.upper()}": bad}, cwd=tmp_path),
    ):
        with pytest.raises(SettingsError, match=f"'{name}' .*must be one of"):
            make()


def test_a_request_mode_is_checked_like_the_setting():
    from zhiku.settings import MODES, check_mode

    assert check_mode("graph") == "graph" and "hybrid+rerank" in MODES
    with pytest.raises(SettingsError, match="vector, keyword, graph, hybrid, hybrid\\+rerank"):
        check_mode("semantic")


def test_pii_masking_is_off_unless_chosen(tmp_path: Path) -> None:
    assert Settings().pii == "off"
    (tmp_path / "zhiku.toml").write_text('pii = "mask-answers"\n', encoding="utf-8")
    assert Settings.load(env={}, cwd=tmp_path).pii == "mask-answers"
    assert Settings.load(env={"ZHIKU_PII": "mask-ingest"}, cwd=tmp_path).pii == "mask-ingest"
    with pytest.raises(SettingsError, match="off, mask-answers, mask-ingest; got 'on'"):
        Settings.load(env={"ZHIKU_PII": "on"}, cwd=tmp_path)


def test_the_store_is_the_folder_unless_a_postgresql_uri_is_given(tmp_path: Path) -> None:
    assert Settings.load(env={}, cwd=tmp_path).store == "folder"
    uri = "postgresql://zhiku:secret@db/kb"
    assert Settings.load(env={"ZHIKU_STORE": uri}, cwd=tmp_path).store == uri
    with pytest.raises(SettingsError, match="ZHIKU_STORE.*postgresql://"):
        Settings.load(env={"ZHIKU_STORE": "mysql://db/kb"}, cwd=tmp_path)
