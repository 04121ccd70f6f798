"""Zhiku's Streamlit entry point (``zhiku ui`` runs it): sign-in, navigation, friendly errors.

Each page is a script under ``views/`` that renders from ``ui.context.current()``. Any exception on a
page ends as one friendly ``st.error`` line; the full traceback goes to the server log only. With
``require_sign_in`` on and no accounts yet, nobody gets in: the page says how to create an admin.
"""
from __future__ import annotations

import streamlit as st

from ui import context
from ui.cards import safe_markdown
from zhiku.accounts import authenticate, has_users, is_admin
from zhiku.errors import SignInLockedError
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings

#: (script, title, icon, admins only)
PAGES = (
    ("views/chat.py", "Chat", ":material/chat:", False),
    ("views/documents.py", "Documents", ":material/description:", False),
    ("views/ingest.py", "Ingest", ":material/upload_file:", True),
    ("views/graph.py", "Graph explorer", ":material/hub:", False),
    ("views/evaluation.py", "Evaluation", ":material/monitoring:", True),
)


def no_accounts_page(settings: Settings) -> None:
    st.title("Zhiku 知库")
    st.warning(
        "Sign-in is required (`require_sign_in`), but this knowledge base has no users yet. An administrator "
        f"creates the first one on the server: `zhiku user add NAME --groups {settings.admin_group} "
        f"--kb {settings.kb}`; then reload this page.",
        icon=":material/lock:",
    )


def sign_in_form(kb: KnowledgeBase) -> None:
    st.title("Zhiku 知库")
    reason = st.session_state.pop(context.SIGNED_OUT_KEY, "")
    if reason:
        st.info(reason, icon=":material/logout:")
    st.write("Sign in to ask questions about the documents your groups may see.")
    with st.form("sign-in"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                user = authenticate(kb, name.strip(), password)
            except SignInLockedError as exc:
                st.error(safe_markdown(str(exc)[0].upper() + str(exc)[1:]))
                return
            if user is None:
                st.error("Wrong user name or password. Try again, or ask an administrator (`zhiku user add`).")
            else:
                context.sign_out()  # start from a clean session: nothing of an earlier user carries over
                st.session_state[context.USER_KEY] = user
                st.rerun()


def account_box(user: User) -> None:
    with st.sidebar:
        if user.sees_all:
            st.info("No users are configured, so you are the local user and see every document. "
                    "`zhiku user add NAME --groups …` turns on sign-in and access control.",
                    icon=":material/lock_open:")
        else:
            st.caption(f"Signed in as **{safe_markdown(user.name)}** · groups: "
                       f"{safe_markdown(', '.join(user.groups)) or 'none'}")
            if st.button("Sign out", key="sign-out"):
                context.sign_out()
                st.rerun()


def main() -> None:
    settings = context.load_settings()
    kb = context.open_assistant(settings).kb
    user = context.signed_in(kb, settings)
    if user is None:
        if has_users(kb):
            sign_in_form(kb)
        else:
            no_accounts_page(settings)
        return
    account_box(user)
    admin = is_admin(user, settings.admin_group)
    pages = [st.Page(path, title=title, icon=icon)
             for path, title, icon, admin_only in PAGES if admin or not admin_only]
    st.navigation(pages).run()


# Streamlit runs this file as ``__main__``; the guard keeps worker processes that re-import the main
# module (the ingest pipeline's forkserver) from running the app.
if __name__ == "__main__":
    st.set_page_config(page_title="Zhiku 知库", page_icon=":material/menu_book:", layout="wide")
    try:
        main()
    except Exception as exc:  # the boundary: a page never shows a traceback
        context.show_error(exc)
