"""What every page of one browser session shares: the process's Assistant, the user, friendly errors.

The ``Assistant`` (models, indexes, LLM) is opened once per server process and knowledge-base
configuration through ``st.cache_resource``; it is the only process-wide object. The signed-in user
lives in the browser session's ``st.session_state``. Pages get both from ``current()``. Signing out
(by the button, or after ``session_idle_minutes`` without a page run) clears the whole session state,
so nothing the previous user saw (the chat, opened summaries) stays in the tab.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from zhiku.accounts import has_users, lookup
from zhiku.errors import USER_ERRORS, KnowledgeBaseError, bug_message
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, User
from zhiku.settings import Settings

if TYPE_CHECKING:
    from retrieval.assistant import Assistant

log = logging.getLogger(__name__)

#: Session-state keys: the signed-in user, the time of their last page run, why the session ended.
USER_KEY = "zhiku_user"
LAST_SEEN_KEY = "zhiku_last_seen"
SIGNED_OUT_KEY = "zhiku_signed_out"


@dataclass(frozen=True)
class Context:
    """One page run's view of the world: the shared assistant, its settings and who is asking."""

    assistant: Assistant
    settings: Settings
    user: User

    @property
    def kb(self) -> KnowledgeBase:
        return self.assistant.kb


def load_settings() -> Settings:
    """Settings from ``zhiku.toml`` and ``ZHIKU_*`` (``zhiku ui`` passes the knowledge base as ``ZHIKU_KB``)."""
    settings = Settings.load()
    if not KnowledgeBase.exists(settings.kb, settings.store):
        raise KnowledgeBaseError(
            f"no knowledge base at {settings.kb.resolve()}: build one with `zhiku ingest examples/corpus "
            f"--kb {settings.kb}` (or your own folder), then reload this page"
        )
    return settings.replace(embedding_model=KnowledgeBase.resolve_model(settings.kb, settings.embedding_model,
                                                                        store=settings.store))


@st.cache_resource(show_spinner="Opening the knowledge base and loading models…", max_entries=4)
def _open_assistant(key: str, _settings: Settings) -> Assistant:
    """One Assistant per distinct configuration (``key``) and server process."""
    from retrieval.assistant import Assistant

    return Assistant.open(_settings)


def open_assistant(settings: Settings) -> Assistant:
    return _open_assistant(repr(settings), settings)


def sign_out(reason: str = "") -> None:
    """Forget everything this browser session held; ``reason`` is shown on the sign-in form."""
    st.session_state.clear()
    if reason:
        st.session_state[SIGNED_OUT_KEY] = reason


def signed_in(kb: KnowledgeBase, settings: Settings) -> User | None:
    """Who is using this browser session (None: nobody may use it now; the entry page says why).

    Without accounts: the local user, unless ``require_sign_in`` is on. With accounts: the signed-in
    user as stored now, so a removed account is signed out and changed groups apply at once; a
    session idle for longer than ``session_idle_minutes`` is signed out.
    """
    if not has_users(kb):
        return None if settings.require_sign_in else LOCAL_USER
    user = st.session_state.get(USER_KEY)
    if user is None:
        return None
    now = time.time()
    if now - st.session_state.get(LAST_SEEN_KEY, now) > settings.session_idle_minutes * 60:
        sign_out(f"You were signed out after {settings.session_idle_minutes} minutes without activity.")
        return None
    current_account = lookup(kb, user.name)
    if current_account is None:
        sign_out()
        return None
    st.session_state[LAST_SEEN_KEY] = now
    return current_account


def current() -> Context:
    """The context of this page run (the entry script has already made sure someone is signed in)."""
    settings = load_settings()
    assistant = open_assistant(settings)
    user = signed_in(assistant.kb, settings)
    if user is None:
        raise PermissionError("you are signed out: sign in again from the start page")
    return Context(assistant, settings, user)


def friendly_message(exc: BaseException) -> str:
    """One line for the page: what went wrong and what to do; never a traceback.

    Only the ``ZhikuError`` family (and file errors, which name the path) speak for themselves;
    anything else is a bug, logged with its traceback and shown with a reference id.
    """
    if isinstance(exc, sqlite3.DatabaseError):
        return (f"The knowledge base database cannot be read ({exc}). Check the folder, or rebuild it "
                "with `zhiku ingest`; then reload the page.")
    if isinstance(exc, USER_ERRORS):
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text[0].upper() + text[1:]
    message = bug_message(log, "the web app", exc)
    return message[0].upper() + message[1:]


def show_error(exc: BaseException) -> None:
    """Show the user one friendly line (a bug is logged with its traceback by ``friendly_message``)."""
    st.error(friendly_message(exc), icon=":material/error:")
