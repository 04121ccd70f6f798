"""Document summaries: map-reduce over a document's chunks, cached in the knowledge base.

With an LLM (the same backend that answers: on a CPU, the local model through CTranslate2),
consecutive chunks are packed into parts that fit the model's window, each part is summarised
(map), and the part summaries are combined into one summary with key points (reduce, recursively
while they do not fit); a document that fits in one part is summarised by a single call. Without an LLM the summary is extractive: the sentences
nearest the document's centroid (or, with no embedder, richest in the document's frequent words),
in document order. Key entities come from the document's triples, resolved by ``kg.resolve`` so
aliases count as one entity. Chinese documents are summarised in Chinese.

Summaries are stored in the ``summaries`` table with the document's content hash and the backend
that wrote them; a stored summary is used only when both still match, so re-ingesting a changed
file (or switching LLM) produces a fresh one.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kg.resolve import resolve
from retrieval.extractive import statements
from retrieval.prompt import PROMPT_RESERVE
from retrieval.keyword import Tokenizer
from retrieval.llm import describe_failure, token_counter
from zhiku.errors import AssistantError
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.prompts import SUMMARY
from zhiku.records import Chunk, Document
from zhiku.text import detect_language

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.llms import LLM

EXTRACTIVE = "extractive"
MAX_ENTITIES = 10
#: Sentences considered by the extractive summary (long documents: the first ones and a sample).
MAX_SENTENCES = 400


@dataclass
class Summary:
    """What ``zhiku summarize`` prints and the UI shows for one document."""

    doc_id: int
    text: str
    key_points: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    language: str = "en"
    backend: str = EXTRACTIVE
    warnings: list[str] = field(default_factory=list)
    cached: bool = False


def document_language(doc: Document, chunks: Sequence[Chunk]) -> str:
    """The document's recorded language, checked against its text (tags on parsed files are unreliable)."""
    if doc.language.startswith("zh"):
        return "zh"
    return detect_language(" ".join(c.text for c in chunks[:5]))


def backend_name(llm: LLM | None) -> str:
    return EXTRACTIVE if llm is None else f"{type(llm).__name__}:{llm.metadata.model_name}"


def key_entities(kb: KnowledgeBase, doc_id: int, limit: int = MAX_ENTITIES) -> list[str]:
    """The document's most mentioned entities (aliases merged), most frequent first."""
    entities = resolve(kb.triples(doc_id)).entities.values()
    ranked = sorted(entities, key=lambda e: (-e.mentions, e.name))
    return [" ".join(e.name.split()) for e in ranked[:limit]]


# ------------------------------------------------------------------------------------ cache
def cached_summary(kb: KnowledgeBase, doc: Document, backend: str) -> Summary | None:
    rows = kb.query(
        "SELECT body FROM summaries WHERE doc_id = ? AND content_hash = ? AND backend = ?",
        (doc.id, doc.content_hash, backend),
    )
    if not rows:
        return None
    try:
        body = json.loads(rows[0][0])
        return Summary(**{**body, "doc_id": doc.id, "backend": backend, "cached": True})
    except (ValueError, TypeError):
        return None  # an unreadable row is simply rewritten


def store_summary(kb: KnowledgeBase, doc: Document, summary: Summary) -> None:
    body = {k: v for k, v in asdict(summary).items() if k in ("text", "key_points", "entities", "language")}
    with kb.transaction(content=False) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO summaries (doc_id, content_hash, backend, body, created_at) VALUES (?,?,?,?,?)",
            (doc.id, doc.content_hash, summary.backend, json.dumps(body, ensure_ascii=False), time.time()),
        )


# ------------------------------------------------------------------------------------ extractive
def extractive_summary(
    chunks: Sequence[Chunk], language: str, embedder: Embedder | None = None, n_summary: int = 3, n_points: int = 5
) -> tuple[str, list[str]]:
    """Central sentences in document order: the first ``n_summary`` make the text, the next the points."""
    sentences = list(dict.fromkeys(s for c in chunks for s in statements(c.text)))
    prose = [s for s in sentences if " | " not in s]  # table rows summarise badly
    if len(prose) >= n_summary + n_points:
        sentences = prose
    if len(sentences) > MAX_SENTENCES:
        step = len(sentences) / MAX_SENTENCES
        sentences = [sentences[int(i * step)] for i in range(MAX_SENTENCES)]
    if not sentences:
        text = " ".join(c.text.strip() for c in chunks)[:400]
        return text, []
    scores = _centrality(sentences, embedder)
    best = sorted(np.argsort(-scores, kind="stable")[: n_summary + n_points])
    summary_idx, point_idx = best[:n_summary], best[n_summary:]
    joiner = "" if language == "zh" else " "
    return joiner.join(sentences[i] for i in summary_idx), [sentences[i] for i in point_idx]


def _centrality(sentences: list[str], embedder: Embedder | None) -> np.ndarray:
    """Cosine to the centroid with an embedder; else the mean document frequency of a sentence's terms."""
    if embedder is not None:
        vectors = embedder.embed(sentences)
        centroid = vectors.mean(axis=0)
        return vectors @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
    tokenize = Tokenizer()
    terms = [tokenize(s) for s in sentences]
    counts: dict[str, int] = {}
    for ts in terms:
        for t in set(ts):
            counts[t] = counts.get(t, 0) + 1
    return np.array([sum(counts[t] for t in ts) / (len(ts) + 3) for ts in terms], dtype=np.float32)


# ------------------------------------------------------------------------------------ map-reduce


def _pack(texts: Sequence[str], budget: int, count: Callable[[str], int]) -> list[str]:
    """Consecutive texts joined into parts of at most ``budget`` tokens (an oversized text is cut)."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for text in texts:
        cost = count(text) + 2
        if cost > budget:
            text = text[: max(1, len(text) * budget // cost)]
            cost = budget
        if current and used + cost > budget:
            parts.append("\n\n".join(current))
            current, used = [], 0
        current.append(text)
        used += cost
    if current:
        parts.append("\n\n".join(current))
    return parts


def _ask(llm: LLM, system: str, user: str) -> str:
    from llama_index.core.base.llms.types import ChatMessage

    response = llm.chat([ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)])
    return (response.message.content or "").strip()


def llm_summary(doc: Document, chunks: Sequence[Chunk], llm: LLM, language: str) -> tuple[str, list[str]]:
    """Map each window-sized part to a short summary, then reduce until one call combines them.

    A document that fits in one part is summarised by one call over its text: mapping it and then
    "combining" the single partial summary took twice the time and summarised a summary.
    """
    prompts = SUMMARY[language]
    count = token_counter(llm)
    meta = llm.metadata
    instructions = max(count(prompts["reduce"]), count(prompts["whole"]))
    budget = max(128, meta.context_window - max(meta.num_output, 256) - PROMPT_RESERVE - instructions)
    title = doc.title or doc.source.rsplit("/", 1)[-1]
    parts = _pack([c.text for c in chunks], budget, count)
    if len(parts) == 1:
        return parse_summary(_ask(llm, prompts["whole"], f"{prompts['title']}: {title}\n{prompts['part']}:\n{parts[0]}"))
    partials = [_ask(llm, prompts["map"], f"{prompts['title']}: {title}\n{prompts['part']}:\n{part}") for part in parts]
    while len(partials) > 1 and count("\n\n".join(partials)) > budget:
        partials = [
            _ask(llm, prompts["map"], f"{prompts['title']}: {title}\n{prompts['part']}:\n{part}")
            for part in _pack(partials, budget, count)
        ]
    combined = _ask(llm, prompts["reduce"], f"{prompts['title']}: {title}\n{prompts['partials']}:\n" + "\n\n".join(partials))
    return parse_summary(combined)


_POINTS_HEADING = re.compile(r"^\s*#*\s*\**\s*(key points|要点)\s*\**\s*[:：]?\s*\**\s*$", re.I | re.M)
_SUMMARY_LABEL = re.compile(r"^\s*#*\s*\**\s*(summary|摘要)\s*\**\s*[:：]\s*\**\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)、])\s+(.+)$", re.M)


def parse_summary(text: str) -> tuple[str, list[str]]:
    """Split a model's reply into the summary and its bullet points (lenient: small models drift)."""
    heading = _POINTS_HEADING.search(text)
    head, tail = (text[: heading.start()], text[heading.end():]) if heading else (text, text)
    points = [p.strip() for p in _BULLET.findall(tail)]
    summary = _BULLET.sub("", head) if not heading else head
    summary = _SUMMARY_LABEL.sub("", summary.strip()).strip()
    return summary or text.strip(), points


# ------------------------------------------------------------------------------------ the entry point
def summarize(
    kb: KnowledgeBase,
    doc: Document,
    llm: LLM | None = None,
    embedder: Embedder | None = None,
    refresh: bool = False,
) -> Summary:
    """The summary of ``doc``: from the cache when current, else computed and stored.

    An LLM failure falls back to the extractive summary with a warning (and is not cached, so the
    next call tries the LLM again).
    """
    if doc.id is None:
        raise AssistantError(f"{doc.source}: not a stored document")
    backend = backend_name(llm)
    if not refresh:
        found = cached_summary(kb, doc, backend)
        if found is not None:
            return found
    chunks = kb.chunks_of(doc.id)
    language = document_language(doc, chunks)
    entities = key_entities(kb, doc.id)
    warnings: list[str] = []
    if llm is not None:
        try:
            text, points = llm_summary(doc, chunks, llm, language)
        except Exception as exc:  # a backend failure: say so and summarise without it
            warnings.append(describe_failure(exc, llm) + "; showing an extractive summary")
            llm, backend = None, EXTRACTIVE
    if llm is None:
        text, points = extractive_summary(chunks, language, embedder)
    summary = Summary(doc.id, text, points, entities, language, backend, warnings)
    if not warnings:
        store_summary(kb, doc, summary)
    return summary
