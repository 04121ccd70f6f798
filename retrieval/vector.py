"""Dense retrieval: the query's embedding against the knowledge base's FAISS index of chunks
(or, for a store that keeps vectors in SQL, its own search: ``KnowledgeBase.nearest``).

The index holds every chunk, whoever may read it, so the retriever over-fetches and drops chunks
of documents the user cannot see before returning: it asks FAISS for ``4k`` neighbours, and
doubles that until ``k`` visible ones are found or the index is exhausted. A user who sees
everything skips the filter entirely, so the common case costs one FAISS search.

On an approximate (IVF) index each doubling also doubles the lists probed, so "exhausted" means
every list was searched, which on IVF-Flat is the exact answer: a restricted user gets ``k``
visible hits whenever ``k`` exist, and never one of a document they may not see.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from retrieval.catalog import Catalog
from zhiku import vector_index
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import Hit, User

#: First over-fetch factor for users who cannot see everything.
OVERFETCH = 4


class QueryEmbedder:
    """An ``Embedder`` that remembers the last few single-text embeddings.

    Hybrid retrieval embeds the same question twice (vector search and graph entity linking);
    wrapping the embedder once and handing it to both makes the second call free.
    """

    def __init__(self, embedder: Embedder, keep: int = 256) -> None:
        self.inner = embedder
        self.name, self.dimension, self.max_tokens = embedder.name, embedder.dimension, embedder.max_tokens
        self.keep = keep
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return self.inner.embed(texts)
        with self._lock:
            vector = self._recent.get(texts[0])
            if vector is not None:
                self._recent.move_to_end(texts[0])
                return vector
        vector = self.inner.embed(texts)
        vector.setflags(write=False)  # shared between callers
        with self._lock:
            self._recent[texts[0]] = vector
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)
        return vector


class VectorRetriever:
    """FAISS inner-product search over L2-normalised chunk vectors (cosine similarity scores)."""

    name = "vector"

    def __init__(self, kb: KnowledgeBase, embedder: Embedder, catalog: Catalog | None = None, keep: int = 32) -> None:
        self.kb = kb
        self.embedder = embedder
        self.catalog = catalog or Catalog(kb)
        #: (epoch, user, query vector) -> the last searches' ids and scores: hybrid asks for the
        #: vector pool and the graph's dense seeds of one question, and the second is a prefix.
        self._recent: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, int]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        if not query.strip() or k <= 0:
            return []
        return self.retrieve_vector(self.embedder.embed([query])[0], k, user)

    def retrieve_vector(self, vector: np.ndarray, k: int, user: User) -> list[Hit]:
        """The same search for an already-embedded query."""
        ids, scores = self.search(vector, k, user)
        return self.catalog.hits(ids.tolist(), scores.tolist(), self.name)

    def search(self, vector: np.ndarray, k: int, user: User) -> tuple[np.ndarray, np.ndarray]:
        """The ids and cosine scores of the ``k`` nearest chunks ``user`` may see, best first
        (the graph retriever seeds its walk with them; a repeated search, or a shorter one, of the
        same vector is answered from the last few)."""
        key = (self.catalog.epoch, user, np.asarray(vector, dtype=np.float32).tobytes())
        with self._lock:
            found = self._recent.get(key)
        if found is not None and (found[2] >= k or len(found[0]) < found[2]):
            return found[0][:k], found[1][:k]
        ids, scores = self._search(vector, k, user)
        with self._lock:
            self._recent[key] = (ids, scores, k)
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return ids, scores

    def _search(self, vector: np.ndarray, k: int, user: User) -> tuple[np.ndarray, np.ndarray]:
        if self.kb.vectors_in_sql:  # the store filters by access inside its own query
            return self.kb.nearest(vector, k, user)
        index = self.kb.vector_index()
        total = int(index.ntotal)
        if total == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        open_to_all = self.catalog.sees_everything(user)
        fetch, widen = min(k if open_to_all else k * OVERFETCH, total), 1
        while True:
            scores, ids = vector_index.search(index, query, fetch, widen)
            scores, ids = scores[0], ids[0]
            found = ids >= 0
            scores, ids = scores[found], ids[found]
            if not open_to_all:
                visible = self.catalog.visible_chunks(user, ids)
                scores, ids = scores[visible], ids[visible]
            if len(ids) >= k or (fetch >= total and vector_index.exhaustive(index, widen)):
                return ids[:k], scores[:k]
            fetch, widen = min(fetch * 2, total), widen * 2
