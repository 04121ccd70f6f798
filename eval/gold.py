"""Gold labels turned into ids of one knowledge base: relevant document sources and chunk ids.

Datasets name relevant documents in their own terms (a corpus id, a path relative to the corpus
folder, an absolute source) or name chunks by id. The harness ranks what the knowledge base returns,
so every label is resolved here once: to the stored ``Document.source`` and, where the dataset allows
a chunk-level judgement, to the ids of the relevant chunks. Chunk relevance without chunk ids comes
from evidence: a chunk of a relevant document is relevant when it contains the query's evidence
(MultiHop-RAG facts, or our ``evidence`` field) or, failing that, its gold answer.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eval.datasets import Dataset, Query
from eval.text import contains, token_recall
from zhiku.kb import KnowledgeBase

#: A fact counts as contained in a chunk when this share of its tokens is there (facts are paraphrased).
EVIDENCE_RECALL = 0.8


@dataclass
class Judgement:
    """One query's gold labels in knowledge-base terms; ``chunks`` is None when not judgeable."""

    query: Query
    docs: dict[str, float]
    chunks: dict[str, float] | None
    unresolved: list[str] = field(default_factory=list)


def resolve(dataset: Dataset, kb: KnowledgeBase, corpus_files: Mapping[str, Path] | None = None) -> list[Judgement]:
    """Judgements for every query of ``dataset`` against ``kb``.

    ``corpus_files`` maps corpus ids to the files ``prepare_kb`` wrote (BEIR, MultiHop-RAG); our
    JSONL's sources are matched exactly, against ``dataset.corpus_dir``, or as a path suffix of a
    stored source. Labels that match nothing are listed in ``Judgement.unresolved``.
    """
    sources = [d.source for d in kb.documents()]
    by_source = {s: s for s in sources}
    doc_of_chunk: dict[int, str] = {}
    if dataset.level == "chunk":
        ids = sorted({int(r) for q in dataset.queries for r in q.relevant})
        doc_ids = {c.id: c.doc_id for c in kb.chunks_by_ids(ids).values()}
        source_of_doc = {d.id: d.source for d in kb.documents()}
        doc_of_chunk = {cid: source_of_doc[did] for cid, did in doc_ids.items()}
    judgements = []
    for query in dataset.queries:
        if dataset.level == "chunk":
            judgements.append(_chunk_labels(query, doc_of_chunk))
            continue
        docs: dict[str, float] = {}
        unresolved = []
        for ref, grade in query.relevant.items():
            source = _match(ref, dataset, corpus_files, by_source, sources)
            if source is None:
                unresolved.append(ref)
            else:
                docs[source] = max(grade, docs.get(source, 0.0))
        judgements.append(Judgement(query, docs, _evidence_labels(query, docs, kb), unresolved))
    return judgements


def _chunk_labels(query: Query, doc_of_chunk: Mapping[int, str]) -> Judgement:
    chunks = {ref: g for ref, g in query.relevant.items() if int(ref) in doc_of_chunk}
    docs: dict[str, float] = {}
    for ref, grade in chunks.items():
        source = doc_of_chunk[int(ref)]
        docs[source] = max(grade, docs.get(source, 0.0))
    return Judgement(query, docs, chunks, [ref for ref in query.relevant if ref not in chunks])


def _match(
    ref: str, dataset: Dataset, corpus_files: Mapping[str, Path] | None,
    by_source: Mapping[str, str], sources: list[str],
) -> str | None:
    if corpus_files is not None and ref in corpus_files:
        return by_source.get(str(corpus_files[ref]))
    candidates = [ref]
    if dataset.corpus_dir is not None:
        candidates.append(str((dataset.corpus_dir / ref).resolve()))
    for candidate in candidates:
        if candidate in by_source:
            return candidate
    suffix = "/" + ref.replace("\\", "/").lstrip("./")
    matches = [s for s in sources if s.replace("\\", "/").endswith(suffix)]
    return matches[0] if len(matches) == 1 else None


def _evidence_labels(query: Query, docs: Mapping[str, float], kb: KnowledgeBase) -> dict[str, float] | None:
    """Chunks of the relevant documents that hold the evidence (or the answer); None if no evidence."""
    needles = query.evidence or ([query.answer] if query.answer else [])
    if not docs or not needles:
        return None
    relevant: dict[str, float] = {}
    for source, grade in docs.items():
        doc = kb.get_document(source)
        for chunk in kb.chunks_of(doc.id) if doc else []:
            if any(contains(chunk.text, n) or token_recall(n, chunk.text) >= EVIDENCE_RECALL for n in needles):
                relevant[str(chunk.id)] = grade
    return relevant or None
