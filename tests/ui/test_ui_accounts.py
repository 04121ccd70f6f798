"""What the UI stores besides accounts (feedback), and how ``zhiku ui`` decides to start.

Accounts themselves are specified in ``tests/test_accounts.py``.
"""
from __future__ import annotations

import json
from cli_runner import run_zhiku as _zhiku
from pathlib import Path

import pytest

from zhiku.feedback import DOWN, UP, save_feedback
from zhiku.accounts import add_user
from zhiku.cli.ui import is_loopback, open_access_refusal, streamlit_command
from zhiku.kb import KnowledgeBase
from zhiku.records import Answer, Chunk, Citation, Document, Hit, User


@pytest.fixture()
def kb(tmp_path: Path) -> KnowledgeBase:
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 384) as kb:
        yield kb


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




def test_ui_command_without_a_knowledge_base_points_at_the_sample_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _zhiku(capsys, monkeypatch, "ui", "--kb", str(tmp_path / "none"), "--port", "8999")
    assert code == 1
    assert "no knowledge base" in err and "zhiku ingest examples/corpus" in err


def test_ui_command_serves_the_app_headless_on_loopback_without_error_details() -> None:
    command = streamlit_command(8765, upload_max_mb=50)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("ui/app.py")
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "false" and flags["--server.maxUploadSize"] == "50"
    assert dict(zip(*[iter(streamlit_command(1, "0.0.0.0")[5:])] * 2))["--server.address"] == "0.0.0.0"


def test_serving_off_loopback_needs_users_and_require_sign_in_or_allow_anonymous() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.1.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("zhiku.example")
    for has_users, require in ((False, False), (False, True), (True, False)):
        assert open_access_refusal("127.0.0.1", has_users, require, allow_anonymous=False) is None
        assert open_access_refusal("0.0.0.0", has_users, require, allow_anonymous=True) is None
        refusal = open_access_refusal("0.0.0.0", has_users, require, allow_anonymous=False)
        assert refusal and "--allow-anonymous" in refusal
    assert "zhiku user add" in open_access_refusal("0.0.0.0", False, True, False)
    assert "require_sign_in" in open_access_refusal("0.0.0.0", True, False, False)
    assert open_access_refusal("0.0.0.0", True, True, allow_anonymous=False) is None


def test_ui_command_on_all_interfaces_without_users_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    KnowledgeBase.open(tmp_path / "kb", "minilm", 384).close()
    monkeypatch.setenv("ZHIKU_REQUIRE_SIGN_IN", "true")
    code, out, err = _zhiku(capsys, monkeypatch, "ui", "--kb", str(tmp_path / "kb"), "--host", "0.0.0.0")
    assert code == 2 and "refusing to serve on 0.0.0.0" in err and "zhiku user add" in err
    with KnowledgeBase.open(tmp_path / "kb", "minilm") as kb:
        add_user(kb, "ada", "ada-password-long", ("admin",))
    monkeypatch.setenv("ZHIKU_REQUIRE_SIGN_IN", "false")
    code, out, err = _zhiku(capsys, monkeypatch, "ui", "--kb", str(tmp_path / "kb"), "--host", "0.0.0.0")
    assert code == 2 and "require_sign_in" in err
