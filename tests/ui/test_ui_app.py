"""The Streamlit app driven through ``AppTest``: each page's behaviour, sign-in and access control.

Every test runs the real entry script against a private copy of the tiny knowledge base (see
conftest.py) with the ``extractive`` answer backend, so no LLM is loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from apptest import add_users, no_errors, plain, sign_in, start
from zhiku.accounts import remove_user
from zhiku.kb import KnowledgeBase


def test_chat_streams_an_answer_with_source_cards_facts_and_feedback(ui_kb: Path) -> None:
    at = start()
    no_errors(at)
    assert any("local user" in i.value for i in at.info)  # no users configured: the page says so
    at.chat_input[0].set_value("How much can I spend on a hotel in Berlin?").run()
    no_errors(at)
    user, assistant = at.chat_message
    assert user.markdown[0].value == "How much can I spend on a hotel in Berlin?"
    assert "180 euros" in assistant.markdown[0].value and "[1]" in plain(assistant.markdown[0].value)
    cards = [e for e in assistant.expander if plain(e.label).startswith("[1] travel-policy.md")]
    assert cards, [e.label for e in assistant.expander]
    passage = cards[0].markdown[0].value
    assert ":orange-background[**hotels**]" in passage and ":orange-background[**Berlin**]" in passage
    assert any(e.label.startswith("Graph facts used") for e in assistant.expander)
    assert plain(cards[0].button[0].label) == "Download travel-policy.md"
    assert any(c.value.startswith("Answers: cited sentences") for c in at.sidebar.caption)  # which backend answers
    assert any(c.value.startswith("retrieval ") and c.value.endswith(" ms") for c in assistant.caption)

    at.feedback[0].set_value(0).run()  # thumbs down
    at.text_input(key="comment-text-0-0").input("the Berlin figure is right")
    at.button[[b.label for b in at.button].index("Send comment")].click().run()
    no_errors(at)
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        rows = kb.query("SELECT user, question, rating, comment, citations FROM feedback")
    assert len(rows) == 1
    assert rows[0][:4] == ("local", "How much can I spend on a hotel in Berlin?", -1, "the Berlin figure is right")
    assert json.loads(rows[0][4])[0]["source"].endswith("travel-policy.md")


def test_follow_ups_keep_the_conversation_until_a_new_one_starts(ui_kb: Path) -> None:
    at = start()
    at.chat_input[0].set_value("Who founded Acme Robotics?").run()
    at.chat_input[0].set_value("What does it build?").run()
    no_errors(at)
    messages = at.chat_message
    assert len(messages) == 4
    assert messages[2].markdown[0].value == "What does it build?"  # what was typed, not the rewrite
    assert "Shelfmate" in messages[3].markdown[0].value
    at.sidebar.button(key="chat_new").click().run()
    assert len(at.chat_message) == 0


def test_retrieval_mode_and_top_k_are_sidebar_controls(ui_kb: Path) -> None:
    at = start()
    at.sidebar.selectbox(key="chat_mode").select("keyword")
    at.sidebar.slider(key="chat_k").set_value(1)
    at.chat_input[0].set_value("business class flights").run()
    no_errors(at)
    cards = [e for e in at.chat_message[1].expander if plain(e.label).startswith("[")]
    assert len(cards) == 1 and "travel-policy.md" in plain(cards[0].label)


def test_documents_page_lists_documents_and_opens_a_cached_summary(ui_kb: Path) -> None:
    at = start().switch_page("views/documents.py").run()
    no_errors(at)
    table = at.dataframe[0].value
    assert sorted(table["title"]) == ["Acme Robotics profile", "Salary bands", "Travel policy"]
    assert {"type", "size (KB)", "pages", "chunks", "ingested", "groups"} <= set(table.columns)
    at.text_input(key="documents_search").input("acme").run()
    assert list(at.dataframe[0].value["title"]) == ["Acme Robotics profile"]
    at.selectbox(key="documents_open").select_index(0).run()
    assert any("Maria Keller" in m.value for m in at.markdown)  # key entities
    at.button(key=[b.key for b in at.button if (b.key or "").startswith("summarize-")][0]).click().run()
    no_errors(at)
    assert any("founded in 2011" in m.value for m in at.markdown)
    assert any(e.label == "Chunks (2)" for e in at.expander)

    again = start().switch_page("views/documents.py").run()  # a new session finds it cached
    again.selectbox(key="documents_open").set_value(_doc_id(ui_kb, "Acme Robotics profile")).run()
    assert any("(cached)" in c.value for c in again.caption)


def _doc_id(kb: Path, title: str) -> int:
    with KnowledgeBase.open(kb, "minilm") as opened:
        return next(d.id for d in opened.documents() if d.title == title)


def test_sign_in_gives_each_user_their_documents_and_pages(ui_kb: Path) -> None:
    add_users(ui_kb)
    at = start()
    assert at.button[0].label == "Sign in" and not at.chat_input
    sign_in(at, "bob", "wrong")
    assert "Wrong user name or password" in at.error[0].value
    sign_in(at, "bob", "bob-password")
    no_errors(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/ingest.py")  # st.navigation does not offer it
    at.chat_input[0].set_value("How much do senior engineers at Acme Robotics earn?").run()
    shown = " ".join(m.value for m in at.markdown) + " ".join(e.label for e in at.expander)
    assert "salaries.md" not in shown and "120000" not in shown and "Senior engineers" not in shown
    at.switch_page("views/documents.py").run()
    assert "Salary bands" not in list(at.dataframe[0].value["title"])  # restricted to hr

    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        remove_user(kb, "bob")
    assert at.run().button[0].label == "Sign in"  # a removed account is signed out on its next page run

    admin = start()
    sign_in(admin, "ada", "ada-password")
    admin.switch_page("views/ingest.py").run()
    no_errors(admin)
    assert admin.title[0].value == "Ingest documents"


def test_ingest_page_adds_a_server_folder_and_reports_failures_with_reasons(
    ui_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_UI_INGEST_ROOTS", str(tmp_path))
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "holidays.md").write_text("# Holidays\n\nEvery employee gets 30 days of paid holiday per year.\n",
                                        encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    at = start().switch_page("views/ingest.py").run()
    no_errors(at)
    at.text_area(key="ingest_paths").input(str(folder))
    at.button(key="ingest_start").click().run(timeout=300)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Added"], metrics["Failed"], metrics["Documents now"]) == ("1", "1", "4")
    failures = at.dataframe[0].value
    assert failures["file"][0].endswith("broken.pdf") and failures["reason"][0]
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        assert kb.get_document(str((folder / "holidays.md").resolve())) is not None

    at.text_area(key="ingest_paths").input(str(tmp_path / "missing"))
    at.button(key="ingest_start").click().run()
    assert "no such file or folder" in at.error[0].value.lower() and not at.exception


def test_ingest_page_saves_uploads_under_the_knowledge_base_and_ingests_them(ui_kb: Path) -> None:
    at = start().switch_page("views/ingest.py").run()
    at.file_uploader(key="ingest_uploads").set_value(
        ("benefits.md", b"# Benefits\n\nStaff get a yearly public transport pass.\n", "text/markdown"))
    at.text_input(key="ingest_groups").input("hr")
    at.button(key="ingest_start").click().run(timeout=300)
    no_errors(at)
    [saved] = (ui_kb / "uploads").glob("*/benefits.md")
    with KnowledgeBase.open(ui_kb, "minilm") as kb:
        assert kb.get_document(str(saved.resolve())).groups == ("hr",)


def test_graph_explorer_draws_a_neighbourhood_and_opens_the_passage_behind_an_edge(ui_kb: Path) -> None:
    at = start().switch_page("views/graph.py").run()
    no_errors(at)
    at.text_input(key="graph_search").input("acme").run()
    entity = at.selectbox(key="graph_entity")
    assert entity.value == "acme robotics" or "Acme Robotics" in entity.format_func(entity.value)
    assert at.get("graphviz_chart")
    edges = at.selectbox(key="graph_edge")
    label = next(o for o in edges.options if "founded" in o)
    edges.select(label).run()
    no_errors(at)
    assert any("founded in 2011" in m.value for m in at.markdown)


def test_evaluation_page_runs_and_shows_a_report(ui_kb: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_UI_INGEST_ROOTS", str(tmp_path))
    dataset = tmp_path / "questions.jsonl"
    rows = [{"id": "q1", "query": "hotel limit in Berlin", "relevant": ["travel-policy.md"]},
            {"id": "q2", "query": "who founded Acme Robotics", "relevant": ["acme-profile.md"]}]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    at = start().switch_page("views/evaluation.py").run()
    no_errors(at)
    assert any("No evaluation reports" in i.value for i in at.info)
    at.text_input(key="eval_dataset").input(str(dataset))
    at.multiselect(key="eval_modes").set_value(["vector", "keyword"])
    at.button[[b.label for b in at.button].index("Run")].click().run(timeout=300)
    no_errors(at)
    table = at.dataframe[0].value
    assert set(table.index) == {"vector", "keyword"} and list(table.columns) == [
        "hit_rate@10", "recall@10", "precision@10", "mrr@10", "ndcg@10", "map@10"]
    assert table.loc["vector", "recall@10"] == 1.0  # both questions find their document
    assert at.get("image")  # the recall@k plot


def test_a_broken_knowledge_base_shows_a_friendly_error_not_a_traceback(ui_kb: Path) -> None:
    (ui_kb / "kb.sqlite").write_bytes(b"this is not a database" * 100)
    for name in ("kb.sqlite-wal", "kb.sqlite-shm"):
        (ui_kb / name).unlink(missing_ok=True)
    at = start()
    assert not at.exception
    assert len(at.error) == 1 and "rebuild it" in at.error[0].value and "Traceback" not in at.error[0].value


def test_a_missing_knowledge_base_points_at_the_sample_corpus(ui_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_KB", str(ui_kb.parent / "nothing-here"))
    at = start()
    assert not at.exception and "zhiku ingest examples/corpus" in at.error[0].value
