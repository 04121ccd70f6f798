"""Leak probes for ``zhiku tune fusion`` and ``zhiku eval generate``.

``tune fusion`` asks questions generated from every document (restricted ones included) as the local
admin, but what it prints, in text or JSON, and what it writes into zhiku.toml are weights and figures
only: no marker of a restricted document ever shows. ``eval generate --groups``/``--user`` writes
questions from that user's documents only."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from leak_probe import FINANCE_MARKER, HR_MARKER, PUBLIC_USER, assert_no_marker

from cli_runner import run_zhiku
from eval.generate import generate
from zhiku.kb import KnowledgeBase


@pytest.fixture
def kb_copy(leak_kb: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(leak_kb, tmp_path / "kb"))


def test_the_generated_questions_do_hold_restricted_text(leak_kb, embedder):
    """The probe below means something: tuning really asks about the restricted documents."""
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        questions = generate(kb, n=50, progress=False)
    with pytest.raises(AssertionError):
        assert_no_marker([(q.query, q.answer, q.evidence) for q in questions], PUBLIC_USER)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_tune_fusion_output_and_saved_settings_hold_no_restricted_marker(kb_copy, capsys, monkeypatch, tmp_path, as_json):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "fusion", "--kb", str(kb_copy), "--n", "50",
                               "--step", "0.25", *(["--json"] if as_json else []))
    assert code == 0, err
    assert_no_marker(out + err, PUBLIC_USER)
    assert_no_marker((kb_copy / "zhiku.toml").read_text(encoding="utf-8"), PUBLIC_USER)


def test_zhiku_eval_generate_for_a_user_writes_only_questions_from_their_documents(
        leak_kb, capsys, monkeypatch, tmp_path):
    written = {}
    for who in (("--groups", "eng"), ("--groups", "hr,finance"), ()):
        out = tmp_path / f"questions{len(written)}.jsonl"
        code, _, err = run_zhiku(capsys, monkeypatch, "eval", "generate", "--kb", str(leak_kb), "--out", str(out),
                                 "--n", "50", "--llm", "extractive", *who)
        assert code == 0, err
        written[who] = out.read_text(encoding="utf-8")
    assert_no_marker(written[("--groups", "eng")], PUBLIC_USER)
    assert written[("--groups", "hr,finance")] == written[()]  # these groups see every document, as the operator
    assert HR_MARKER in written[()] and FINANCE_MARKER in written[()]
