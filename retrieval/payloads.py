"""The JSON shapes of results, shared by ``zhiku … --json`` and the service API (``serve``).

The CLI's ``--json`` output is a contract scripts rely on, and the API promises the same fields, so
both build their payloads here: one function per record shape, no surface keeps its own copy.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.prompt import describe_source
from zhiku.records import PUBLIC, Answer, Document, Hit, Triple

if TYPE_CHECKING:  # the JSON shapes need neither the graph (NetworkX) nor the summariser loaded
    from kg.graph import KnowledgeGraph
    from retrieval.summary import Summary


def doc_name(hit: Hit) -> str:
    return hit.document.title or str(hit.document.id)


def hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    """One hit as ``zhiku ask --json`` lists it under ``hits``."""
    return {
        "rank": rank, "score": round(hit.score, 6), "doc": doc_name(hit), "source": hit.document.source,
        "chunk_id": hit.chunk.id, "page": hit.chunk.page, "section": hit.chunk.section,
        "found_by": hit.found_by, "text": hit.chunk.text,
    }


def search_hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    """One hit as ``zhiku search --json`` prints it: the ask hit keys plus the title and graph facts."""
    return {
        **hit_json(rank, hit),
        "title": hit.document.title,
        "facts": [{"subject": f.subject, "relation": f.relation, "object": f.object} for f in hit.facts],
    }


def search_json(query: str, mode: str, hits: Sequence[Hit]) -> dict[str, Any]:
    """``{"query", "mode", "hits": [...]}``: the whole ``zhiku search --json`` output."""
    return {"query": query, "mode": mode, "hits": [search_hit_json(rank, hit) for rank, hit in enumerate(hits, 1)]}


def citation_json(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"n": c.n, "doc": doc_name(c.hit), "source": c.hit.document.source, "chunk_id": c.hit.chunk.id,
         "text": c.hit.chunk.text}
        for c in answer.citations
    ]


def answer_json(answer: Answer, llm: dict[str, str]) -> dict[str, Any]:
    """``{"answer", "citations": [{"n", "doc", "source", "chunk_id", "text"}], "hits": […], "llm": {"backend",
    "model", "runtime"}, "timing": {"retrieval_ms", "first_token_ms", "tokens", "tokens_per_s"}}``."""
    return {
        "answer": answer.text,
        "citations": citation_json(answer),
        "hits": [hit_json(rank, hit) for rank, hit in enumerate(answer.hits, 1)],
        "llm": llm,
        "timing": dataclasses.asdict(answer.timing),
    }


def sources_text(answer: Answer) -> str:
    """The cited sources (file, page, heading), or the retrieved passages when nothing was cited."""
    if answer.citations:
        lines = [f"[{c.n}] {describe_source(c.hit)} — {c.hit.document.source}" for c in answer.citations]
        return "\nSources:\n" + "\n".join(lines)
    if answer.hits:
        lines = [f"- {describe_source(h)} — {h.document.source}" for h in answer.hits]
        return "\nRetrieved passages (none cited):\n" + "\n".join(lines)
    return ""


def summary_json(doc: Document, summary: Summary) -> dict[str, Any]:
    """What ``zhiku summarize --json`` prints for one document."""
    return {
        "doc": doc.title or str(doc.id), "doc_id": doc.id, "source": doc.source, "summary": summary.text,
        "key_points": summary.key_points, "entities": summary.entities, "language": summary.language,
        "backend": summary.backend, "cached": summary.cached,
    }


def document_json(doc: Document) -> dict[str, Any]:
    """A document's catalogue entry (what the UI's documents table shows); never its text."""
    return {
        "id": doc.id, "title": doc.title or Path(doc.source).name, "source": doc.source, "kind": doc.kind,
        "size": doc.size, "pages": doc.pages, "chunks": doc.n_chunks, "language": doc.language,
        "groups": list(doc.groups), "public": PUBLIC in doc.groups, "ingested_at": doc.ingested_at,
        "content_hash": doc.content_hash,
    }


def fact_json(t: Triple) -> dict[str, Any]:
    """One graph relation as ``zhiku graph … --json`` prints it."""
    return {"subject": t.subject, "relation": t.relation, "object": t.object, "subject_type": t.subject_type,
            "object_type": t.object_type, "chunk_id": t.chunk_id, "doc_id": t.doc_id}


def entity_json(graph: KnowledgeGraph, key: str, score: float | None = None) -> dict[str, Any]:
    """One entity of ``graph`` (a user's graph: its degree counts the relations they may see)."""
    e = graph.entity(key)
    row: dict[str, Any] = {"key": key, "name": e.name, "type": e.type, "aliases": sorted(e.aliases),
                           "mentions": e.mentions, "degree": graph.graph.degree(key), "doc_ids": sorted(e.doc_ids)}
    if score is not None:
        row["score"] = round(score, 6)
    return row


def neighbors_json(graph: KnowledgeGraph, key: str, hops: int, facts: Sequence[Triple],
                   distances: dict[str, int]) -> dict[str, Any]:
    """``zhiku graph neighbors --json``: the entity, the relations around it, its attributes (literal
    values) and the entities reached."""
    return {"entity": entity_json(graph, key), "hops": hops, "facts": [fact_json(t) for t in facts],
            "attributes": [fact_json(t) for t in graph.attributes(key)],
            "entities": [{"key": k, "name": graph.graph.nodes[k]["name"], "distance": d}
                         for k, d in sorted(distances.items(), key=lambda kv: (kv[1], kv[0])) if k != key]}


def entities_json(graph: KnowledgeGraph, by: str = "degree", type_: str | None = None,
                  keys: set[str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """``zhiku graph entities --json``'s rows: ranked ``by`` degree or PageRank, optionally only of one
    type or among ``keys`` (a document's entities), at most ``limit``."""
    ranked = graph.top_entities(graph.graph.number_of_nodes(), by)
    rows = [entity_json(graph, k, s) for k, s in ranked
            if (keys is None or k in keys) and (not type_ or graph.graph.nodes[k]["type"] == type_.upper())]
    return rows[:limit]
