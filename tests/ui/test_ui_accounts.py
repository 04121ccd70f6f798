"""User accounts and feedback: what sign-in and the chat page's thumbs store in the knowledge base."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ui.auth import (
    AccountError,
    accounts,
    add_user,
    authenticate,
    has_users,
    hash_password,
    is_admin,
    parse_groups,
    remove_user,
    verify_password,
)
from ui.feedback import DOWN, UP, save_feedback
from zhiku.cli import main
from zhiku.cli.ui import streamlit_command
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, Answer, Chunk, Citation, Document, Hit, User


@pytest.fixture()
def kb(tmp_path: Path) -> KnowledgeBase:
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 384) as kb:
        yield kb


def test_password_hashes_are_salted_and_verified() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("S3cret", first)
    assert not verify_password("s3cret", "garbage") and not verify_password("s3cret", "md5$1$2$3$00$00")


def test_a_knowledge_base_without_users_has_one_all_seeing_local_user(kb: KnowledgeBase) -> None:
    assert not has_users(kb)
    assert LOCAL_USER.sees_all and LOCAL_USER.can_see(("hr",))
    assert is_admin(LOCAL_USER, "admin")


def test_users_sign_in_with_their_groups(kb: KnowledgeBase) -> None:
    add_user(kb, "alice", "pw-alice", ("hr", "admin"))
    add_user(kb, "bob", "pw-bob", ())
    assert has_users(kb)
    alice = authenticate(kb, "alice", "pw-alice")
    assert alice == User(name="alice", groups=("hr", "admin"))
    assert is_admin(alice, "admin") and not is_admin(authenticate(kb, "bob", "pw-bob"), "admin")
    assert authenticate(kb, "alice", "pw-bob") is None
    assert authenticate(kb, "nobody", "pw-alice") is None
    assert [a.user.name for a in accounts(kb)] == ["alice", "bob"]


def test_account_mistakes_are_refused_with_the_fix(kb: KnowledgeBase) -> None:
    add_user(kb, "alice", "pw")
    with pytest.raises(AccountError, match="zhiku user remove alice"):
        add_user(kb, "alice", "other")
    with pytest.raises(AccountError, match="password is empty"):
        add_user(kb, "carol", "")
    with pytest.raises(AccountError, match="not allowed"):
        add_user(kb, "with space", "pw")
    with pytest.raises(AccountError, match="group name"):
        parse_groups("hr, fin ance")
    assert parse_groups(" hr, finance ,hr,") == ("hr", "finance")
    assert remove_user(kb, "alice") and not remove_user(kb, "alice")


def _answer() -> Answer:
    doc = Document(source="/docs/policy.pdf", content_hash="h", id=7)
    hit = Hit(chunk=Chunk(text="Hotels up to $200.", position=0, n_tokens=5, page=2, doc_id=7, id=42),
              document=doc, score=1.0)
    return Answer(text="Up to $200 [1].", citations=[Citation(1, hit)], hits=[hit], question="Hotel limit?")


def test_feedback_is_one_row_per_answer_updated_by_later_thumbs_and_comments(kb: KnowledgeBase) -> None:
    user = User(name="alice", groups=("hr",))
    row = save_feedback(kb, user, _answer(), UP)
    assert save_feedback(kb, user, _answer(), DOWN, feedback_id=row) == row
    save_feedback(kb, user, _answer(), DOWN, "  too vague ", feedback_id=row)
    save_feedback(kb, user, _answer(), DOWN, "", feedback_id=row)  # an empty comment keeps the old one
    rows = kb.query("SELECT user, question, answer, rating, comment, citations FROM feedback")
    assert len(rows) == 1
    name, question, text, rating, comment, citations = rows[0]
    assert (name, question, text, rating, comment) == ("alice", "Hotel limit?", "Up to $200 [1].", DOWN, "too vague")
    assert json.loads(citations) == [{"n": 1, "doc_id": 7, "chunk_id": 42, "source": "/docs/policy.pdf", "page": 2}]
    with pytest.raises(ValueError, match="rating"):
        save_feedback(kb, user, _answer(), 5)


def _zhiku(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
           stdin: str = "") -> tuple[int, str, str]:
    """Run the ``zhiku`` command in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_commands_add_list_and_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    KnowledgeBase.open(tmp_path / "kb", "minilm", 384).close()
    kb = str(tmp_path / "kb")
    code, out, err = _zhiku(capsys, monkeypatch, "user", "add", "alice", "--groups", "hr,admin", "--password-stdin",
                            "--kb", kb, stdin="pw\n")
    assert code == 0, err
    code, out, err = _zhiku(capsys, monkeypatch, "user", "add", "alice", "--password-stdin", "--kb", kb, stdin="pw\n")
    assert code == 2 and "already exists" in err and "Traceback" not in err
    code, out, err = _zhiku(capsys, monkeypatch, "user", "list", "--json", "--kb", kb)
    assert [(u["name"], u["groups"]) for u in json.loads(out)] == [("alice", ["hr", "admin"])]
    with KnowledgeBase.open(kb, "minilm") as opened:
        assert authenticate(opened, "alice", "pw") is not None
    assert _zhiku(capsys, monkeypatch, "user", "remove", "alice", "--kb", kb)[0] == 0
    code, out, err = _zhiku(capsys, monkeypatch, "user", "remove", "alice", "--kb", kb)
    assert code == 1 and "no user named 'alice'" in err


def test_ui_command_without_a_knowledge_base_points_at_the_sample_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _zhiku(capsys, monkeypatch, "ui", "--kb", str(tmp_path / "none"), "--port", "8999")
    assert code == 1
    assert "no knowledge base" in err and "zhiku ingest examples/corpus" in err


def test_ui_command_serves_the_app_headless_on_loopback_without_error_details() -> None:
    command = streamlit_command(8765)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("ui/app.py")
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "false"
