"""Driving the real entry script through ``AppTest``: start a session, sign in, read what a page shows."""
from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from zhiku.accounts import add_user
from zhiku.kb import KnowledgeBase

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
TIMEOUT = 120


def start() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input[0].input(name)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def add_users(kb: Path) -> None:
    """``ada`` (admin) and ``bob`` (no groups: public documents only)."""
    with KnowledgeBase.open(kb, "minilm") as opened:
        add_user(opened, "ada", "ada-password", ("admin",))
        add_user(opened, "bob", "bob-password", ())


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plain(markdown: str) -> str:
    """What escaped markdown shows: the text without its backslash escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)
