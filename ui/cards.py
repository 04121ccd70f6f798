"""How a retrieved passage and a graph fact look on a page: source cards with highlighted matches.

The query's matched words are found with the keyword retriever's own tokenizer (stems for English,
jieba words for Chinese), so what lights up is what BM25 matched: "policies" lights up "policy".
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import jieba
import streamlit as st

from zhiku.records import Citation, Hit, Triple

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: A passage splits into Chinese runs, words and the rest (spaces, punctuation).
_PIECES = re.compile(rf"([{_CJK}]+|[^\W_]+)", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
#: Characters Streamlit's markdown would interpret (emphasis, links, LaTeX, emoji shortcodes, HTML).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|$~<>:])")

Tokenize = Callable[[str], list[str]]


def escape_markdown(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def highlight(passage: str, query: str, tokenize: Tokenize) -> str:
    """``passage`` as Streamlit markdown, the words that match the query's terms highlighted.

    Neighbouring matches ("annual leave") are highlighted as one span, and line breaks are kept, so
    table rows and lists in a passage stay on their own lines.
    """
    terms = set(tokenize(query))
    pieces: list[tuple[str, bool]] = []
    for piece in _PIECES.split(passage):
        for word in (jieba.lcut(piece) if _IS_CJK.match(piece) else [piece]):
            hit = bool(terms) and bool(_PIECES.fullmatch(word)) and bool(terms.intersection(tokenize(word)))
            if hit and len(pieces) >= 2 and pieces[-1][0] == " " and pieces[-2][1]:
                pieces[-2:] = [(pieces[-2][0] + pieces[-1][0] + word, True)]
            elif hit and pieces and pieces[-1][1]:
                pieces[-1] = (pieces[-1][0] + word, True)
            elif word:
                pieces.append((word, hit))
    text = "".join(f":orange-background[**{w}**]" if hit else escape_markdown(w) for w, hit in pieces)
    return text.replace("\n", "  \n")


def answer_markdown(text: str) -> str:
    """An answer as markdown: formatting kept, but ``$`` shown as a dollar sign, not the start of LaTeX."""
    return text.replace("$", "\\$")


def card_title(citation: Citation) -> str:
    """``[n] file.pdf · p. 3 · Heading > Sub``: what identifies a source at a glance."""
    hit = citation.hit
    parts = [f"[{citation.n}] {Path(hit.document.source).name}"]
    if hit.chunk.page is not None:
        parts.append(f"p. {hit.chunk.page}")
    if hit.chunk.section:
        parts.append(hit.chunk.section)
    return " · ".join(parts)


def fact_line(fact: Triple) -> str:
    subject, relation, obj = (escape_markdown(t) for t in (fact.subject, fact.relation, fact.object))
    return f"{subject} — *{relation}* → {obj}"


def source_card(citation: Citation, query: str, tokenize: Tokenize, key: str) -> None:
    """An expander with the passage (matches highlighted), where it was found and the original file."""
    hit: Hit = citation.hit
    with st.expander(card_title(citation)):
        found_by = ", ".join(f"{name} #{rank}" for name, rank in sorted(hit.found_by.items()))
        st.caption(f"{hit.document.source}" + (f" — found by {found_by}" if found_by else ""))
        st.markdown(highlight(hit.chunk.text, query, tokenize))
        path = Path(hit.document.source)
        if path.is_file():
            st.download_button(
                f"Download {path.name}", data=path.read_bytes, file_name=path.name, key=key, on_click="ignore",
            )


def facts_block(facts: Sequence[Triple]) -> None:
    """The knowledge-graph facts that took part in an answer, one per line."""
    if facts:
        with st.expander(f"Graph facts used ({len(facts)})"):
            st.markdown("\n".join(f"- {fact_line(f)}" for f in facts))
