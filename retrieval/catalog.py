"""Who may see which chunk, and turning chunk ids into hits: what every retriever shares.

A ``Catalog`` keeps, for one knowledge base, the documents by id and a chunk-id -> document-id
array, reloaded only when the knowledge base's write epoch moves. Retrievers ask it which of
their candidate chunks the user may see (vectorised, so filtering 100k candidates costs
microseconds) before anything leaves them, and it builds the ``Hit`` records they return.

The catalog also computes a *corpus signature*: a digest of the chunk ids and the documents'
content hashes. Epochs move on every write (feedback, summaries, triples); the signature moves
only when the retrievable text does, so an expensive derived index (BM25) survives unrelated writes.

A state is read in one snapshot of the knowledge base (documents, chunk ownership and the epoch
it is labelled with agree), and since ids are never reused a chunk fetched later by id still
belongs to the document its id maps to. ``visible_hits`` is the last check on a final ranking:
whatever a retriever, fusion or reranker did, a hit the user may not see never leaves.
``filter_documents`` narrows a list of documents (already the user's) as the UI's and the API's
document listings do.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from zhiku.kb import KnowledgeBase
from zhiku.records import Document, Hit, User

#: How many users' visibility masks one catalog remembers per corpus state.
_MASKS_KEPT = 64

log = logging.getLogger(__name__)


def visible_hits(hits: Sequence[Hit], user: User) -> list[Hit]:
    """``hits`` less those of documents ``user`` may not see (defence in depth: there should be none)."""
    kept = [hit for hit in hits if user.can_see(hit.document.groups)]
    if len(kept) < len(hits):
        log.error("dropped %d hits user %r may not see: a retriever let them through (a bug)",
                  len(hits) - len(kept), user.name)
    return kept


@dataclass(frozen=True)
class _State:
    epoch: int
    signature: str
    documents: dict[int, Document]
    #: chunk_doc[chunk_id] is the chunk's document id, -1 where no chunk has that id.
    chunk_doc: np.ndarray
    n_chunks: int
    #: user -> (visible[doc_id], sees all): computed for this state only, so never mixed with another's.
    masks: dict[User, tuple[np.ndarray, bool]] = field(default_factory=dict, compare=False)


class Catalog:
    """Documents, chunk ownership and per-user visibility of one knowledge base, kept current."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._state: _State | None = None
        self._lock = threading.Lock()

    def _current(self) -> _State:
        state = self._state
        if state is not None and state.epoch == self.kb.epoch:
            return state
        with self._lock, self.kb.snapshot():
            epoch = self.kb.epoch
            if self._state is None or self._state.epoch != epoch:
                self._state = self._load(epoch)
            return self._state

    def _load(self, epoch: int) -> _State:
        """The state at ``epoch`` (read inside the snapshot that read ``epoch``)."""
        documents = {d.id: d for d in self.kb.documents() if d.id is not None}
        rows = self.kb.query("SELECT id, doc_id FROM chunks")
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
        chunk_doc = np.full(int(pairs[:, 0].max()) + 1 if len(pairs) else 0, -1, dtype=np.int64)
        chunk_doc[pairs[:, 0]] = pairs[:, 1]
        digest = hashlib.sha256()
        digest.update(np.sort(pairs[:, 0]).tobytes())
        for doc_id in sorted(documents):
            digest.update(f"{doc_id}:{documents[doc_id].content_hash};".encode())
        return _State(epoch, digest.hexdigest(), documents, chunk_doc, len(pairs))

    # ------------------------------------------------------------------ facts
    @property
    def epoch(self) -> int:
        return self._current().epoch

    @property
    def signature(self) -> str:
        """Changes exactly when chunks or documents' contents change (not on unrelated writes)."""
        return self._current().signature

    @property
    def n_chunks(self) -> int:
        return self._current().n_chunks

    def document(self, doc_id: int) -> Document | None:
        return self._current().documents.get(doc_id)

    # ------------------------------------------------------------- visibility
    def _visibility(self, user: User, state: _State) -> tuple[np.ndarray, bool]:
        with self._lock:
            found = state.masks.get(user)
            if found is None:
                mask = np.zeros(max(state.documents, default=-1) + 1, dtype=bool)
                for doc_id, doc in state.documents.items():
                    mask[doc_id] = user.can_see(doc.groups)
                if len(state.masks) >= _MASKS_KEPT:
                    state.masks.clear()
                found = state.masks[user] = (mask, int(mask.sum()) == len(state.documents))
            return found

    def document_mask(self, user: User) -> np.ndarray:
        """visible[doc_id] for every document id (False for ids with no document)."""
        return self._visibility(user, self._current())[0]

    def sees_everything(self, user: User) -> bool:
        """True when no filtering is needed (the common single-user case): skip the masks."""
        return user.sees_all or self._visibility(user, self._current())[1]

    def visible_chunks(self, user: User, chunk_ids: np.ndarray) -> np.ndarray:
        """A boolean array aligned with ``chunk_ids``: which of them ``user`` may see."""
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        state = self._current()
        known = (chunk_ids >= 0) & (chunk_ids < len(state.chunk_doc))
        doc_ids = np.full(len(chunk_ids), -1, dtype=np.int64)
        doc_ids[known] = state.chunk_doc[chunk_ids[known]]
        mask = self._visibility(user, state)[0]
        ok = (doc_ids >= 0) & (doc_ids < len(mask))
        visible = np.zeros(len(chunk_ids), dtype=bool)
        visible[ok] = mask[doc_ids[ok]]
        return visible

    # ------------------------------------------------------------------- hits
    def hits(self, chunk_ids: Sequence[int], scores: Sequence[float], retriever: str) -> list[Hit]:
        """Hits for ranked chunk ids (best first), ranked 1.. under ``retriever`` in ``found_by``.

        Ids whose chunk vanished meanwhile (a concurrent re-ingest) are skipped, not errors.
        """
        documents = self._current().documents
        chunks = self.kb.chunks_by_ids([int(i) for i in chunk_ids])
        hits: list[Hit] = []
        for chunk_id, score in zip(chunk_ids, scores):
            chunk = chunks.get(int(chunk_id))
            document = documents.get(chunk.doc_id) if chunk is not None else None
            if chunk is None or document is None:
                continue
            hits.append(Hit(chunk=chunk, document=document, score=float(score), found_by={retriever: len(hits) + 1}))
        return hits


def filter_documents(
    docs: Sequence[Document], text: str = "", kinds: Sequence[str] = (), groups: Sequence[str] = ()
) -> list[Document]:
    """Documents whose title or path contains ``text`` (any case), of one of ``kinds``, in one of ``groups``."""
    needle = text.strip().lower()
    return [
        d for d in docs
        if (not needle or needle in d.source.lower() or needle in d.title.lower())
        and (not kinds or d.kind in kinds)
        and (not groups or set(d.groups) & set(groups))
    ]
