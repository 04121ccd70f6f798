"""Chat page: streamed, grounded answers with their sources, graph facts and feedback.

The conversation (a list of ``Turn``) lives in the browser session; each question is sent with the
earlier turns so a follow-up ("and in 2023?") is understood. Under each answer: the cited passages as
cards (matched words highlighted, original file downloadable), the graph facts used, and thumbs
up/down with an optional comment stored in the knowledge base's ``feedback`` table. Questions and
answers are shown escaped (``safe_markdown``), while streaming too; each question goes to the audit log.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import streamlit as st

from retrieval import MODES, Tokenizer
from ui.cards import Tokenize, facts_block, safe_markdown, source_card
from ui.context import Context, current
from zhiku.feedback import DOWN, UP, save_feedback
from zhiku.audit import record_question
from retrieval.llm import describe_llm
from zhiku.records import Answer, Timing

CONVERSATION = "chat_turns"
#: Bumped by "New conversation", so widgets of a new conversation never inherit the old ones' state.
GENERATION = "chat_generation"
FEEDBACK_ROWS = "chat_feedback_rows"


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user typed, and the answer (whose ``question`` is the standalone rewrite)."""

    question: str
    answer: Answer


def controls(ctx: Context) -> tuple[str, int]:
    """The sidebar: retrieval mode, how many passages, and a fresh start."""
    with st.sidebar:
        st.subheader("Retrieval")
        mode = st.selectbox("Mode", MODES, index=MODES.index(ctx.settings.mode), key="chat_mode",
                            help="vector: meaning · keyword: BM25 words · graph: entities and relations · "
                                 "hybrid: all three fused")
        k = st.slider("Passages (top-k)", 1, 20, min(max(ctx.settings.top_k, 1), 20), key="chat_k")
        st.button("New conversation", icon=":material/add_comment:", on_click=new_conversation, key="chat_new")
        with st.spinner("Loading the answer model…"):
            st.caption(f"Answers: {answer_backend(describe_llm(ctx.assistant.llm))}")
    return mode, k


def answer_backend(llm: dict[str, str]) -> str:
    """``qwen0.5b (local, ctranslate2)``, ``tiny-chat (openai)`` or the extractive fallback, for people."""
    if llm["backend"] == "extractive":
        return "cited sentences from the passages (no language model installed or configured)"
    runtime = f", {llm['runtime']}" if llm["backend"] == "local" else ""
    return f"{llm['model']} ({llm['backend']}{runtime})"


def timing_caption(timing: Timing) -> str:
    """``first token 1.4 s · 13.2 tokens/s · retrieval 15 ms`` (only retrieval for an unwritten answer)."""
    parts = []
    if timing.first_token_ms is not None:
        parts.append(f"first token {timing.first_token_ms / 1000:.1f} s")
    if timing.tokens_per_s:
        parts.append(f"{timing.tokens_per_s:.1f} tokens/s")
    parts.append(f"retrieval {timing.retrieval_ms:.0f} ms")
    return " · ".join(parts)


def new_conversation() -> None:
    st.session_state[CONVERSATION] = []
    st.session_state[FEEDBACK_ROWS] = {}
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1


def stream_answer(ctx: Context, question: str, mode: str, k: int, history: list[Answer]) -> Answer:
    """Write the answer's tokens as they come, then replace them with the final, citation-checked text."""
    final: list[Answer] = []

    def tokens() -> Iterator[str]:
        for item in ctx.assistant.ask_stream(question, user=ctx.user, mode=mode, k=k, history=history):
            if isinstance(item, Answer):
                final.append(item)
            else:
                yield safe_markdown(item)

    placeholder = st.empty()
    with placeholder:
        st.write_stream(tokens())
    if not final:
        raise RuntimeError("the answer stream ended without an answer")
    placeholder.markdown(safe_markdown(final[0].text))
    return final[0]


def answer_details(ctx: Context, answer: Answer, turn: int, tokenize: Tokenize) -> None:
    """Warnings, source cards, graph facts and the feedback control under one answer."""
    for warning in answer.warnings:
        st.caption(f":material/warning: {safe_markdown(warning)}")
    st.caption(timing_caption(answer.timing))
    prefix = f"{st.session_state.get(GENERATION, 0)}-{turn}"
    if answer.citations:
        st.caption(f"Sources ({len(answer.citations)})")
        for citation in answer.citations:
            source_card(ctx.kb, ctx.user, citation, answer.question, tokenize, key=f"download-{prefix}-{citation.n}",
                        originals=ctx.settings.pii == "off")
    facts_block(answer.facts)
    feedback(ctx, answer, prefix)


def feedback(ctx: Context, answer: Answer, prefix: str) -> None:
    """Thumbs are stored as soon as they are clicked; a comment can be added to the same row."""
    choice = st.feedback("thumbs", key=f"rating-{prefix}")
    if choice is None:
        return
    rows: dict[str, tuple[int, int]] = st.session_state.setdefault(FEEDBACK_ROWS, {})
    rating = UP if choice == 1 else DOWN
    stored = rows.get(prefix)
    if stored is None or stored[1] != rating:  # one write per change of thumb, not one per page run
        row = save_feedback(ctx.kb, ctx.user, answer, rating, feedback_id=stored[0] if stored else None)
        rows[prefix] = (row, rating)
    with st.form(f"comment-{prefix}", clear_on_submit=True, border=False):
        comment = st.text_input("Comment (optional)", key=f"comment-text-{prefix}",
                                placeholder="What was right or wrong?")
        if st.form_submit_button("Send comment") and comment.strip():
            save_feedback(ctx.kb, ctx.user, answer, rating, comment, feedback_id=rows[prefix][0])
            st.toast("Thank you: your comment was saved.")


def render(ctx: Context) -> None:
    st.title("Ask your documents")
    mode, k = controls(ctx)
    turns: list[Turn] = st.session_state.setdefault(CONVERSATION, [])
    tokenize = Tokenizer()
    if not turns:
        st.caption("Answers cite the passages they come from; open a source to see the passage and the file.")
    for n, turn in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(safe_markdown(turn.question))
        with st.chat_message("assistant"):
            st.markdown(safe_markdown(turn.answer.text))
            answer_details(ctx, turn.answer, n, tokenize)
    question = st.chat_input("Ask a question about your documents…")
    if question:
        record_question(ctx.kb, ctx.settings, ctx.user.name, question, mode, "ui")
        with st.chat_message("user"):
            st.markdown(safe_markdown(question))
        with st.chat_message("assistant"):
            answer = stream_answer(ctx, question, mode, k, history=[t.answer for t in turns])
            turns.append(Turn(question, answer))
            answer_details(ctx, answer, len(turns) - 1, tokenize)


if __name__ == "__main__":
    render(current())
