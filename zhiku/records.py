"""The record types that flow between stages: one dataclass per concept.

Every stage speaks these types; no stage invents its own dict shape for a document, a chunk, a
triple, a search hit or an answer. They are plain values: the knowledge base persists them and
builds them back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The access group every document carries when nobody restricts it.
PUBLIC = "*"


@dataclass(frozen=True)
class User:
    """Who is asking. A user sees a document when they share one of its groups (or it is public)."""

    name: str = "local"
    groups: tuple[str, ...] = ()
    #: The one local user of a knowledge base without configured users sees everything.
    sees_all: bool = False

    def can_see(self, doc_groups: tuple[str, ...]) -> bool:
        return self.sees_all or PUBLIC in doc_groups or bool(set(doc_groups) & set(self.groups))


#: The user of a knowledge base without configured users: the person at the terminal sees everything.
LOCAL_USER = User(name="local", sees_all=True)


@dataclass
class Element:
    """One structural piece of a parsed file (a title, a paragraph, a table row set, a list item)."""

    text: str
    kind: str  # "title" | "text" | "list" | "table"
    page: int | None = None
    heading_path: tuple[str, ...] = ()


@dataclass
class Document:
    """A source file as the knowledge base knows it."""

    source: str  # absolute path, the document's identity
    content_hash: str
    title: str = ""
    kind: str = ""  # file type: pdf, docx, md, ...
    size: int = 0
    mtime: float = 0.0
    pages: int | None = None
    language: str = "en"
    groups: tuple[str, ...] = (PUBLIC,)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # assigned by the knowledge base
    ingested_at: float | None = None
    n_chunks: int = 0


@dataclass
class Chunk:
    """A retrievable passage of a document, sized to fit the embedding model."""

    text: str
    position: int  # order within the document
    n_tokens: int
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    kind: str = "text"
    doc_id: int | None = None
    id: int | None = None  # assigned by the knowledge base; also the FAISS id

    @property
    def section(self) -> str:
        return " > ".join(self.heading_path)


@dataclass(frozen=True)
class Triple:
    """A (subject, relation, object) fact extracted from one chunk."""

    subject: str
    relation: str
    object: str
    chunk_id: int | None = None
    subject_type: str = ""
    object_type: str = ""
    confidence: float = 1.0
    doc_id: int | None = None


@dataclass
class Hit:
    """A chunk returned by retrieval, with the document it belongs to.

    ``found_by`` maps each retriever that returned the chunk to its rank there (1-based), so fusion
    and the UI can say why a passage was chosen.
    """

    chunk: Chunk
    document: Document
    score: float
    found_by: dict[str, int] = field(default_factory=dict)
    facts: list[Triple] = field(default_factory=list)


@dataclass
class Citation:
    """A numbered source the answer refers to as ``[n]``."""

    n: int
    hit: Hit


@dataclass
class Timing:
    """Where an answer's time went: retrieval, the wait for the first token, the generation rate.

    ``tokens_per_s`` is the decoding rate after the first token (the prompt's prefill is in
    ``first_token_ms``); both stay None for an answer that was not generated.
    """

    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    tokens: int = 0
    tokens_per_s: float | None = None


@dataclass
class Answer:
    """A generated (or extracted) answer, its validated citations and what retrieval returned."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    facts: list[Triple] = field(default_factory=list)
    question: str = ""
    warnings: list[str] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)
