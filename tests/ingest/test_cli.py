"""`zhiku ingest` and `zhiku reindex` as scripts see them: JSON shape, exit codes, --kb / ZHIKU_KB."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhiku.cli import main
from zhiku.kb import KnowledgeBase


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_summary_has_the_contract_keys(tmp_path: Path, capsys) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("The cafeteria opens at noon.")
    (tmp_path / "docs" / "b.xyz").write_text("?")
    code, out, _ = run(capsys, "ingest", str(tmp_path / "docs"), "--kb", str(tmp_path / "kb"), "--json", "--no-graph")
    summary = json.loads(out)
    assert code == 0
    assert set(summary) == {"added", "updated", "unchanged", "removed", "failed", "skipped", "documents", "chunks",
                            "seconds"}
    assert summary["added"] == 1 and summary["documents"] == 1
    assert {"parse", "chunk", "embed", "store"} <= set(summary["seconds"])  # no extraction: --no-graph
    assert summary["failed"] == [{"path": str((tmp_path / "docs" / "b.xyz").resolve()),
                                  "error": summary["failed"][0]["error"], "stage": "parse"}]
    assert summary["skipped"] == []


def test_symlinks_are_listed_as_skipped_and_followed_only_on_request(tmp_path: Path, capsys) -> None:
    docs = (tmp_path / "docs").resolve()
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "bands.md").write_text("The L5 band pays 90,000 EUR.")
    (docs / "link.md").symlink_to(docs / "hr" / "bands.md")
    kb = str(tmp_path / "kb")
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", kb, "--json", "--no-graph")
    skipped = json.loads(out)["skipped"]
    assert code == 0 and [s["path"] for s in skipped] == [str(docs / "link.md")] and set(skipped[0]) == {"path", "reason"}
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", kb, "--no-graph")
    assert "1 skipped" in out and f"skipped: {docs / 'link.md'}: a symbolic link" in out
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", kb, "--json", "--no-graph", "--follow-symlinks")
    summary = json.loads(out)
    assert summary["skipped"] == [] and summary["unchanged"] == 1 and summary["documents"] == 1


def test_exit_codes(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty.txt").write_text("")
    code, _, err = run(capsys, "ingest", str(tmp_path / "empty.txt"), "--kb", str(tmp_path / "kb"), "--no-graph")
    assert code == 1
    code, _, err = run(capsys, "ingest", str(tmp_path / "nope"), "--kb", str(tmp_path / "kb"))
    assert code == 2 and "none of the paths exist" in err
    with pytest.raises(SystemExit) as usage:
        main(["ingest"])
    assert usage.value.code == 2


def test_kb_from_environment_and_reindex(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "a.txt").write_text("Payroll runs on the 25th.")
    monkeypatch.setenv("ZHIKU_KB", str(tmp_path / "env-kb"))
    assert run(capsys, "ingest", str(tmp_path / "a.txt"), "--no-graph")[0] == 0
    assert KnowledgeBase.exists(tmp_path / "env-kb")
    (tmp_path / "env-kb" / "vectors.faiss").unlink()
    code, out, _ = run(capsys, "reindex", "--json")
    assert code == 0 and json.loads(out) == {"vectors": 1, "embedding_model": "minilm"}
    assert (tmp_path / "env-kb" / "vectors.faiss").exists()


def test_mismatched_model_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("Payroll runs on the 25th.")
    kb = str(tmp_path / "kb")
    run(capsys, "ingest", str(tmp_path / "a.txt"), "--kb", kb, "--no-graph")
    code, _, err = run(capsys, "ingest", str(tmp_path / "a.txt"), "--kb", kb, "--embedding-model", "multilingual")
    assert code == 1
    assert err.count("\n") == 1 and "zhiku reindex --embedding-model multilingual" in err
