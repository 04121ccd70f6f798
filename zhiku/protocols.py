"""The seams between stages: small protocols that a stage implements and the CLI wires together.

Stages never import each other sideways (ingest does not import kg); they meet at these types.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from zhiku.records import Chunk, Hit, Triple, User


#: Counts tokens of many texts at once, special tokens included (an ``Embedder``'s ``count_tokens``,
#: or the picklable counter its ``token_counter`` gives for another process).
TokenCounter = Callable[[Sequence[str]], list[int]]


class Embedder(Protocol):
    """Turns texts into unit vectors: ingest embeds chunks, retrieval embeds questions and graph names."""

    #: The name recorded in the knowledge base manifest.
    name: str
    dimension: int
    #: The longest input, in the model's tokens, that is embedded without truncation.
    max_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_counter(self) -> TokenCounter:
        """``count_tokens`` as a picklable callable that loads what it needs in the process it is
        called in (ingest's parser workers chunk with it; the model itself stays here)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class Extractor(Protocol):
    """Turns chunks into triples. Called by ingest for each document, and by ``zhiku graph build``.

    Returns one list per chunk, aligned with ``chunks``; a chunk without entities yields an empty
    list. It must not raise for bad text: extraction problems are logged and that chunk is skipped.
    """

    name: str

    def extract(self, chunks: Sequence[Chunk], language: str) -> list[list[Triple]]: ...

    def portable(self) -> Callable[[], Extractor] | None:
        """A picklable callable that builds this extractor in another process (ingest extracts in
        its parser workers), or None when it must run in this one."""
        ...


class Retriever(Protocol):
    """Every retriever (vector, keyword, graph, fused, reranked) answers the same call.

    Hits are already filtered by ``user``'s access groups, best first, at most ``k`` of them.
    """

    name: str

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]: ...


class Reranker(Protocol):
    """Reorders hits for ``query`` and keeps the best ``k``; hits' ``found_by`` and facts are kept."""

    name: str

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]: ...
