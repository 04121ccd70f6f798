"""Documents page: the documents the user may see, filterable; one opened shows summary, entities, chunks.

Summaries are made on demand (the button) and cached in the knowledge base by the summariser, so the
second visit, by anyone, is instant; a summary already cached is shown as soon as the document opens.
Titles, paths, sections, summaries and entity names are document text: shown escaped (``safe_markdown``)
or as plain text (tables, ``st.text``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from retrieval.catalog import filter_documents
from retrieval.summary import Summary
from ui.cards import safe_markdown
from ui.context import Context, current
from zhiku.records import PUBLIC, Document

SUMMARIES = "documents_summaries"


def document_table(docs: Sequence[Document]) -> pd.DataFrame:
    """One row per document with what the issue's table shows: type, size, pages, chunks, date, groups."""
    return pd.DataFrame(
        [
            {
                "title": d.title or Path(d.source).name,
                "file": Path(d.source).name,
                "type": d.kind,
                "size (KB)": round(d.size / 1024, 1),
                "pages": d.pages,
                "chunks": d.n_chunks,
                "ingested": dt.datetime.fromtimestamp(d.ingested_at or 0).strftime("%Y-%m-%d %H:%M"),
                "groups": ", ".join("everyone" if g == PUBLIC else g for g in d.groups),
                "path": d.source,
            }
            for d in docs
        ],
        columns=["title", "file", "type", "size (KB)", "pages", "chunks", "ingested", "groups", "path"],
    )


def summary_section(ctx: Context, doc: Document) -> None:
    shown: dict[int, Summary] = st.session_state.setdefault(SUMMARIES, {})
    summary = shown.get(doc.id) or ctx.assistant.cached_summary(doc.id, ctx.user)
    if summary is None:
        slot = st.empty()
        if not slot.button("Summarize", type="primary", icon=":material/summarize:", key=f"summarize-{doc.id}"):
            st.caption("No summary yet: it is made on demand and then cached for everyone.")
            return
        slot.empty()
        with st.spinner(f"Summarizing {doc.n_chunks} passages…", show_time=True):
            summary = ctx.assistant.summarize(doc.id, ctx.user)
    shown[doc.id] = summary
    for warning in summary.warnings:
        st.caption(f":material/warning: {safe_markdown(warning)}")
    st.markdown(safe_markdown(summary.text))
    if summary.key_points:
        st.markdown("\n".join(f"- {safe_markdown(p)}" for p in summary.key_points))
    st.caption(f"Summary by {summary.backend}" + (" (cached)" if summary.cached else ""))


def document_detail(ctx: Context, doc: Document) -> None:
    """One document as the Assistant shows it (title, entities and chunks masked when ``pii`` is on)."""
    doc = ctx.assistant.document(int(doc.id or 0), ctx.user)
    st.subheader(safe_markdown(doc.title or Path(doc.source).name))
    st.caption(safe_markdown(f"{doc.source} · {doc.kind} · pages: {doc.pages or '?'} · chunks: {doc.n_chunks} · "
                             f"language: {doc.language}"))
    entities = ctx.assistant.key_entities(int(doc.id or 0), ctx.user)
    if entities:
        st.markdown("**Key entities** " + " ".join(f":blue-badge[{safe_markdown(e)}]" for e in entities))
    summary_section(ctx, doc)
    chunks = ctx.assistant.chunks(int(doc.id or 0), ctx.user)
    with st.expander(f"Chunks ({len(chunks)})"):
        for chunk in chunks:
            where = " · ".join(x for x in (f"p. {chunk.page}" if chunk.page else "", chunk.section) if x)
            st.caption(safe_markdown(f"#{chunk.position} {where} · {chunk.n_tokens} tokens"))
            st.text(chunk.text)


def render(ctx: Context) -> None:
    st.title("Documents")
    docs = ctx.kb.documents(ctx.user)
    if not docs:
        st.info("No documents you may see yet. An administrator can add some on the Ingest page "
                "or with `zhiku ingest`.")
        return
    search, kinds, groups = st.columns([2, 1, 1])
    text = search.text_input("Search titles and paths", key="documents_search")
    kind_filter = kinds.multiselect("Type", sorted({d.kind for d in docs}), key="documents_kinds")
    group_filter = groups.multiselect("Group", sorted({g for d in docs for g in d.groups}), key="documents_groups",
                                      format_func=lambda g: "everyone" if g == PUBLIC else g)
    shown = filter_documents(docs, text, kind_filter, group_filter)
    st.caption(f"{len(shown)} of {len(docs)} documents")
    st.dataframe(document_table(shown), hide_index=True, column_config={"path": None})
    by_id = {d.id: d for d in shown}
    chosen = st.selectbox("Open a document", list(by_id), index=None, key="documents_open",
                          format_func=lambda i: by_id[i].title or Path(by_id[i].source).name,
                          placeholder="Choose a document to see its summary, entities and chunks")
    if chosen is not None:
        document_detail(ctx, by_id[chosen])


if __name__ == "__main__":
    render(current())
