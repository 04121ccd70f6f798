"""The audit log (``zhiku.audit``, ``zhiku audit``): every event kind is kept with who and when, the
command filters by user and time, and question text is kept only while ``audit_questions`` is on."""
from __future__ import annotations

import json
import shutil
import time
from cli_runner import run_zhiku as zhiku
from pathlib import Path

import pytest

from leak_probe import build_leak_corpus
from zhiku import audit
from zhiku.accounts import authenticate
from zhiku.errors import UsageError
from zhiku.kb import KnowledgeBase

PASSWORD = "hana-password"


@pytest.fixture()
def kb_path(leak_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the leak-probe knowledge base (the audit writes to it)."""
    copy = tmp_path / "kb"
    shutil.copytree(leak_kb, copy)
    monkeypatch.setenv("ZHIKU_LLM", "extractive")
    monkeypatch.chdir(tmp_path)
    return copy




def audit_json(capsys, monkeypatch, kb: Path, *flags: str) -> list[dict]:
    code, out, err = zhiku(capsys, monkeypatch, "audit", "--json", "--kb", str(kb), *flags)
    assert code == 0, err
    return json.loads(out)


def test_sign_ins_questions_ingests_and_account_changes_are_all_recorded(
    kb_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = str(kb_path)
    assert zhiku(capsys, monkeypatch, "user", "add", "hana", "--groups", "hr", "--password-stdin", "--kb", kb,
                 stdin=f"{PASSWORD}\n")[0] == 0
    assert zhiku(capsys, monkeypatch, "user", "groups", "hana", "hr,finance", "--kb", kb)[0] == 0
    with KnowledgeBase.open(kb_path, "minilm") as opened:
        assert authenticate(opened, "hana", PASSWORD) is not None
        assert authenticate(opened, "hana", "not-the-password") is None
    assert zhiku(capsys, monkeypatch, "search", "annual leave", "--user", "hana", "--mode", "keyword",
                 "--kb", kb)[0] == 0
    assert zhiku(capsys, monkeypatch, "ask", "Who is the CEO?", "--groups", "hr", "--kb", kb, "--json")[0] == 0
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "canteen.md").write_text("# Canteen\n\nThe canteen opens at eight.\n", encoding="utf-8")
    assert zhiku(capsys, monkeypatch, "ingest", str(folder), "--groups", "staff", "--no-graph", "--workers", "1",
                 "--kb", kb, "--json")[0] == 0
    assert zhiku(capsys, monkeypatch, "user", "remove", "hana", "--kb", kb)[0] == 0

    records = audit_json(capsys, monkeypatch, kb_path)
    assert all(set(r) == {"id", "time", "user", "event", "detail"} for r in records)
    assert [r["event"] for r in records] == ["user_add", "user_groups", "sign_in", "sign_in", "question",
                                             "question", "ingest", "user_remove"]
    by_event = [(r["event"], r["user"], r["detail"]) for r in records]
    assert by_event[0][2] == {"name": "hana", "groups": ["hr"]}
    assert by_event[1][2] == {"name": "hana", "groups": ["hr", "finance"]}
    assert [d["ok"] for e, u, d in by_event if e == "sign_in"] == [True, False]
    assert by_event[4][1:] == ("hana", {"mode": "keyword", "surface": "search", "question": "annual leave"})
    assert by_event[5][1:] == ("cli", {"mode": "hybrid", "surface": "ask", "question": "Who is the CEO?"})
    assert by_event[6][2] == {"paths": [str(folder)], "groups": ["staff"], "added": 1, "updated": 0,
                              "unchanged": 0, "removed": 0, "failed": 0}
    assert by_event[7][2] == {"name": "hana"}
    assert records[0]["time"][:4] == time.strftime("%Y")

    code, out, err = zhiku(capsys, monkeypatch, "audit", "--kb", kb)  # for people: one line per event
    assert code == 0 and len(out.splitlines()) == len(records) and "user_add" in out.splitlines()[0]


def test_the_audit_command_filters_by_user_and_since(
    kb_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_days_ago = time.time() - 2 * 86400
    with KnowledgeBase.open(kb_path, "minilm") as kb:
        audit.record(kb, "x", audit.DOWNLOAD, clock=lambda: two_days_ago, doc_id=1, ok=True)
        audit.record(kb, "x", audit.DOWNLOAD, doc_id=2, ok=True)
        audit.record(kb, "y", audit.DOWNLOAD, doc_id=3, ok=True)
    recent = audit_json(capsys, monkeypatch, kb_path, "--user", "x", "--since", "1d")
    assert [(r["user"], r["event"], r["detail"]["doc_id"]) for r in recent] == [("x", "download", 2)]
    assert [r["detail"]["doc_id"] for r in audit_json(capsys, monkeypatch, kb_path, "--user", "x")] == [1, 2]
    assert len(audit_json(capsys, monkeypatch, kb_path, "--since", "3d")) == 3
    date = time.strftime("%Y-%m-%d", time.localtime(two_days_ago + 86400))
    assert [r["user"] for r in audit_json(capsys, monkeypatch, kb_path, "--since", date)] == ["x", "y"]
    code, out, err = zhiku(capsys, monkeypatch, "audit", "--since", "last week", "--kb", str(kb_path))
    assert code == 2 and "duration like 7d" in err


def test_since_reads_durations_and_iso_dates() -> None:
    now = 1_000_000.0
    assert audit.parse_since("7d", now) == now - 7 * 86400
    assert audit.parse_since("12h", now) == now - 12 * 3600
    assert audit.parse_since("30m", now) == now - 1800 and audit.parse_since("2w", now) == now - 14 * 86400
    assert audit.parse_since("2026-01-31T00:00:00+00:00") == 1769817600.0
    with pytest.raises(UsageError):
        audit.parse_since("soon")


def test_question_text_is_left_out_when_audit_questions_is_off(
    kb_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_AUDIT_QUESTIONS", "false")
    assert zhiku(capsys, monkeypatch, "search", "annual leave days", "--kb", str(kb_path), "--json")[0] == 0
    [record] = audit_json(capsys, monkeypatch, kb_path)
    assert (record["event"], record["user"], record["detail"]) == (
        "question", "local", {"mode": "hybrid", "surface": "search"})


def test_an_acl_edit_picked_up_by_an_ingest_records_each_documents_groups_before_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = build_leak_corpus(tmp_path / "corpus")
    kb = tmp_path / "kb"
    ingest = ("ingest", str(corpus), "--no-graph", "--workers", "1", "--kb", str(kb), "--json")
    assert zhiku(capsys, monkeypatch, *ingest)[0] == 0
    (corpus / "zhiku-acl.toml").write_text('"hr/**" = ["legal"]\n"finance/**" = ["finance"]\n', encoding="utf-8")
    assert zhiku(capsys, monkeypatch, *ingest)[0] == 0
    records = audit_json(capsys, monkeypatch, kb)
    assert [r["event"] for r in records] == ["ingest", "ingest", "acl_change"]
    assert records[2]["detail"] == {"source": str((corpus / "hr" / "salary_bands.md").resolve()),
                                    "before": ["hr"], "after": ["legal"]}
    assert records[2]["user"] == records[1]["user"]
