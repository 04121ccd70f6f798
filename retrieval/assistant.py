"""The ``Assistant``: one object the CLI, the UI and the eval harness use to search, ask and summarise.

It owns the long-lived pieces of a session with one knowledge base: the embedder (loaded at open),
the LLM and the knowledge graph (loaded on first need, once), and one retriever per mode (built on
first use and kept, since each holds its indexes). It checks requests before doing any work and
turns every problem a user can fix into an ``AssistantError`` with a one-line message. Whatever
retriever a mode uses, its hits pass one last access check (``visible_hits``) before they are
returned or handed to the LLM.

With ``pii`` on (``mask-answers`` or ``mask-ingest``) every result leaves through ``Shown``
(``retrieval.masking``): hits, answers and their stream, summaries, documents and their chunks
come out with personal data masked, whoever the caller is. The LLM reads the passages as stored;
an ``openai`` backend gets them masked (``retrieval.llm``).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.answer import answer_stream, final_answer
from retrieval.catalog import visible_hits
from retrieval.extractive import SentenceScorer
from retrieval.factory import QueryError, build_retriever, check_query
from retrieval.followup import rewrite_followup
from retrieval.llm import load_llm
from retrieval.masking import Shown
from retrieval.rerank import load_reranker
from retrieval.summary import Summary, backend_name, cached_summary, key_entities, summarize
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder, load_embedder
from zhiku.protocols import Retriever
from zhiku.pii import PiiMasker
from zhiku.records import LOCAL_USER, Answer, Chunk, Document, Hit, User
from zhiku.settings import Settings, check_mode
from zhiku.errors import AssistantError

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.llms import LLM

_UNSET: Any = object()



class Assistant:
    """Search, grounded answers and summaries over one open knowledge base.

    Thread-safe: the UI shares one instance between sessions; lazy loads happen once under a lock.
    """

    def __init__(
        self, settings: Settings, kb: KnowledgeBase, embedder: Embedder, llm: LLM | None = _UNSET,
        masker: PiiMasker | None = None,
    ) -> None:
        """``masker`` is used when ``settings.pii`` is on (default: a new one, loaded on first use);
        the UI hands the same one to its ingest runs."""
        self.settings = settings
        self.kb = kb
        self.embedder = embedder
        self.scorer = SentenceScorer(embedder)
        self.masker = (masker or PiiMasker()) if settings.pii != "off" else None
        self._shown = Shown(self.masker) if self.masker is not None else None
        self._llm = llm
        self._graph: Any = None
        self._retrievers: dict[str, Retriever] = {}
        self._lock = threading.RLock()

    @classmethod
    def open(cls, settings: Settings) -> Assistant:
        """Open the knowledge base ``settings.kb`` with its embedding model (the manifest's by default)."""
        model = KnowledgeBase.resolve_model(settings.kb, settings.embedding_model, store=settings.store)
        kb = KnowledgeBase.open(settings.kb, model, ann_threshold=settings.ann_threshold, store=settings.store)
        try:
            embedder = load_embedder(model, settings.embed_batch_size)
        except BaseException:
            kb.close()
            raise
        return cls(settings.replace(embedding_model=model), kb, embedder)

    def close(self) -> None:
        self.kb.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the lazy pieces
    @property
    def llm(self) -> LLM | None:
        """The configured LLM (None for ``extractive``), loaded on first use."""
        with self._lock:
            if self._llm is _UNSET:
                self._llm = load_llm(self.settings, self.masker)
            return self._llm

    def graph(self) -> Any:
        """The knowledge graph, loaded once and refreshed when the knowledge base changes."""
        from kg.graph import load_graph

        with self._lock:
            self._graph = load_graph(self.kb, self._graph)
            return self._graph

    def retriever(self, mode: str | None = None) -> Retriever:
        """The retriever for ``mode`` (default: the settings'), built once and kept."""
        mode = check_mode(mode or self.settings.mode)
        with self._lock:
            found = self._retrievers.get(mode)
            if found is None:
                graph = self.graph() if mode in ("graph", "hybrid", "hybrid+rerank") else None
                reranker = None
                if mode == "hybrid+rerank":
                    reranker = load_reranker(self.settings, self.llm if self.settings.reranker == "llm" else None)
                found = build_retriever(self.kb, self.embedder, self.settings, mode, graph=graph, reranker=reranker)
                self._retrievers[mode] = found
            return found

    # ------------------------------------------------------------------ checks
    def check_user(self, user: User) -> None:
        """Refuse an empty knowledge base, and a user who may see none of its documents."""
        groups = [tuple(json.loads(r[0])) for r in self.kb.query("SELECT groups FROM documents")]
        if not groups:
            raise AssistantError(
                f"the knowledge base at {self.kb.root} has no documents: ingest some first "
                f"(`zhiku ingest PATH --kb {self.kb.root}`)"
            )
        if not any(user.can_see(g) for g in groups):
            shown = ", ".join(user.groups) or "none"
            raise AssistantError(
                f"user {user.name!r} (groups: {shown}) may see none of the {len(groups)} documents; "
                "ask an administrator to add them to a group with access"
            )

    def document(self, source_or_id: str | int, user: User | None = None) -> Document:
        """The document a path, a stored source or an id names, if ``user`` may see it.

        A document the user may not see is reported exactly like one that does not exist.
        """
        user = user or LOCAL_USER
        key = str(source_or_id).strip()
        found: Document | None = None
        if key.isdigit():
            found = self.kb.get_document(int(key))
        if found is None and key:
            found = self.kb.get_document(str(Path(key).expanduser().resolve())) or self.kb.get_document(key)
        if found is None and key:
            matches = self.kb.find_documents(key, user)
            found = matches[0] if len(matches) == 1 else None
        if found is None or not user.can_see(found.groups):
            raise AssistantError(
                f"unknown document {key!r}: give a path, a stored source or a document id "
                "(`zhiku search` shows them)"
            )
        return found if self._shown is None else self._shown.document(found)

    def key_entities(self, source_or_id: str | int, user: User | None = None) -> list[str]:
        """The most mentioned entities of a document the user may see (its page lists them)."""
        doc = self.document(source_or_id, user)
        entities = key_entities(self.kb, int(doc.id or 0))
        return entities if self.masker is None else self.masker.mask_many(entities)

    def chunks(self, source_or_id: str | int, user: User | None = None) -> list[Chunk]:
        """The passages of a document the user may see, in order (the UI's document page shows them)."""
        doc = self.document(source_or_id, user)
        chunks = self.kb.chunks_of(int(doc.id or 0))
        return chunks if self._shown is None else self._shown.chunks(chunks)

    # ------------------------------------------------------------------ the services
    def search(self, query: str, mode: str | None = None, k: int | None = None, user: User | None = None) -> list[Hit]:
        """Ranked hits the user may see, without generation."""
        user = user or LOCAL_USER
        query = check_query(query)
        self.check_user(user)
        hits = visible_hits(self.retriever(mode).retrieve(query, k or self.settings.top_k, user), user)
        return hits if self._shown is None else self._shown.hits(hits)

    def ask_stream(
        self,
        question: str,
        user: User | None = None,
        mode: str | None = None,
        k: int | None = None,
        history: Sequence[Answer] = (),
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final ``Answer``.

        ``history`` is the conversation so far (earlier answers, oldest first); a follow-up is
        rewritten into a standalone question before retrieval, and ``Answer.question`` holds that.
        The checks run before the first item is produced, so a bad request fails immediately.
        """
        user = user or LOCAL_USER
        question = check_query(question)
        self.check_user(user)
        llm = self.llm
        standalone = rewrite_followup(question, history, llm, timeout_s=min(30.0, self.settings.llm_timeout_s))
        started = time.perf_counter()
        hits = visible_hits(self.retriever(mode).retrieve(standalone, k or self.settings.top_k, user), user)
        retrieval_ms = round(1000 * (time.perf_counter() - started), 1)
        stream = _timed(answer_stream(standalone, hits, llm, self.scorer, self.settings.llm_timeout_s), retrieval_ms)
        return stream if self._shown is None else self._shown.stream(stream)

    def ask(
        self,
        question: str,
        user: User | None = None,
        mode: str | None = None,
        k: int | None = None,
        history: Sequence[Answer] = (),
    ) -> Answer:
        """A grounded, cited answer (``ask_stream`` consumed)."""
        return final_answer(self.ask_stream(question, user, mode, k, history))

    def summarize(self, source_or_id: str | int, user: User | None = None, refresh: bool = False) -> Summary:
        """The (cached) summary of a document the user may see."""
        doc = self.document(source_or_id, user)
        summary = summarize(self.kb, doc, self.llm, self.embedder, refresh=refresh)
        return summary if self._shown is None else self._shown.summary(summary)

    def cached_summary(self, source_or_id: str | int, user: User | None = None) -> Summary | None:
        """The stored summary of a document the user may see, if one is current (never computes one)."""
        doc = self.document(source_or_id, user)
        summary = cached_summary(self.kb, doc, backend_name(self.llm))
        return summary if self._shown is None or summary is None else self._shown.summary(summary)


def _timed(stream: Iterator[str | Answer], retrieval_ms: float) -> Iterator[str | Answer]:
    """``stream`` with the retrieval time recorded on the final ``Answer``."""
    for item in stream:
        if isinstance(item, Answer):
            item.timing.retrieval_ms = retrieval_ms
        yield item


__all__ = ["Assistant", "AssistantError", "LOCAL_USER", "QueryError"]
