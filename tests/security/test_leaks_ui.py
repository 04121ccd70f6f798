"""Leak probes for the web app and the audit log, on the leak-probe corpus (``tests/leak_probe.py``).

Signed in through ``AppTest`` as an account with the probe users' groups, the Chat page (answers,
source cards, graph facts), the Documents page (table, summary, entities, chunks) and the Graph
explorer (entities, the drawn neighbourhood, the passage behind each relation) never show a
marker of a group the user lacks, and do show the markers of the user's own groups. The audit log
keeps questions as typed, never the passages they found.
"""
from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from leak_probe import (
    FINANCE_ENTITY, FINANCE_MARKER, FINANCE_USER, HR_MARKER, HR_USER, MARKERS, PUBLIC_USER, assert_no_marker,
)
from zhiku.accounts import add_user
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import User

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
QUESTIONS = ("What does the salary band L5 pay?", "Which company does Kestrel Robotics plan to acquire?")
USERS = (PUBLIC_USER, HR_USER, FINANCE_USER)


def password(user: User) -> str:
    return f"{user.name}-password-long"


@pytest.fixture()
def kb_path(leak_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the leak-probe knowledge base with an account for each probe user."""
    copy = tmp_path / "kb"
    shutil.copytree(leak_kb, copy)
    with KnowledgeBase.open(copy, "minilm") as kb:
        for user in USERS:
            add_user(kb, user.name, password(user), user.groups)
    monkeypatch.setenv("ZHIKU_KB", str(copy))
    monkeypatch.setenv("ZHIKU_LLM", "extractive")
    monkeypatch.chdir(tmp_path)
    return copy


def signed_in(user: User) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input(user.name)
    at.text_input[1].input(password(user))
    at.button[0].click().run()
    assert not at.exception and at.chat_input, "sign-in failed"
    return at


def page_text(at: AppTest) -> str:
    """Everything the page shows as text, escapes removed."""
    parts = [e.value for e in (*at.markdown, *at.caption, *at.text, *at.title, *at.subheader, *at.info,
                               *at.warning, *at.success)]
    parts += [e.label for e in at.expander] + [b.label for b in at.button]
    parts += [d.value.to_csv() for d in at.dataframe] + [" ".join(map(str, s.options)) for s in at.selectbox]
    return re.sub(r"\\(.)", r"\1", "\n".join(map(str, parts)))


def chat_text(user: User) -> str:
    at = signed_in(user)
    for question in QUESTIONS:
        at.chat_input[0].set_value(question).run()
        assert not at.exception, [e.value for e in at.exception]
    return page_text(at)


def documents_text(user: User, kb: Path) -> str:
    """The documents table, then every visible document opened and summarised."""
    at = signed_in(user).switch_page("views/documents.py").run()
    shown = [page_text(at)]
    with KnowledgeBase.open(kb, "minilm") as opened:
        visible = [d.id for d in opened.documents(user)]
    for doc_id in visible:
        at.selectbox(key="documents_open").set_value(doc_id).run()
        at.button(key=f"summarize-{doc_id}").click().run()
        assert not at.exception, [e.value for e in at.exception]
        shown.append(page_text(at))
    return "\n".join(shown)


def graph_text(user: User) -> str:
    """The Graph explorer: every entity it offers, then Kestrel Robotics' 2-hop neighbourhood drawn and
    the passage behind each of its relations opened."""
    at = signed_in(user).switch_page("views/graph.py").run()
    shown = [page_text(at)]
    at.slider(key="graph_hops").set_value(2)
    at.selectbox(key="graph_entity").set_value("kestrel robotics").run()
    assert not at.exception, [e.value for e in at.exception]
    shown += [chart.proto.spec for chart in at.get("graphviz_chart")]
    for edge in range(len(at.selectbox(key="graph_edge").options)):
        at.selectbox(key="graph_edge").set_value(edge).run()
        shown.append(page_text(at))
    return "\n".join(shown)


def own_markers(user: User) -> list[str]:
    return [marker for group, marker in MARKERS.items() if group in user.groups]


@pytest.mark.slow
@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_the_chat_page_shows_markers_only_to_their_groups(kb_path: Path, user: User) -> None:
    text = chat_text(user)
    assert_no_marker(text, user)
    for marker in own_markers(user):
        assert marker in text


@pytest.mark.slow
@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_the_documents_page_shows_markers_only_to_their_groups(kb_path: Path, user: User) -> None:
    text = documents_text(user, kb_path)
    assert_no_marker(text, user)
    for marker in own_markers(user):
        assert marker in text


@pytest.mark.slow
@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_the_graph_explorer_shows_finance_entities_only_to_the_finance_group(kb_path: Path, user: User) -> None:
    text = graph_text(user)
    assert_no_marker(text, user)
    assert "Kestrel Robotics" in text and (FINANCE_ENTITY in text) == ("finance" in user.groups)


@pytest.mark.slow
def test_the_audit_log_keeps_questions_but_never_the_passages_they_found(
    kb_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HR_MARKER in chat_text(HR_USER) and FINANCE_MARKER in chat_text(FINANCE_USER)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    for args in (["audit", "--json"], ["audit"]):
        assert main([*args, "--kb", str(kb_path)]) == 0
        out = capsys.readouterr().out
        assert_no_marker(out, PUBLIC_USER)
        assert all(question in out for question in QUESTIONS)
