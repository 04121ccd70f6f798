"""Building the retriever a mode names, and adapting any retriever to llama-index.

``build_retriever`` is what the CLI, the UI and the eval harness call. It shares one catalog
(documents and access lists) and one query-embedding cache between the retrievers it builds, and
the returned object keeps the BM25 index, FAISS index and graph loaded: build it once per process
and call ``retrieve`` for every question.
"""
from __future__ import annotations

from typing import Any

import faiss

from retrieval.catalog import Catalog
from retrieval.fusion import FusedRetriever, default_weights
from retrieval.rerank import Reranker, RerankedRetriever
from retrieval.vector import QueryEmbedder, VectorRetriever
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.protocols import Retriever
from zhiku.records import User
from zhiku.settings import Settings, SettingsError, check_mode
from zhiku.errors import QueryError

#: The retrievers ``hybrid`` fuses, by name.
FUSED = ("vector", "keyword", "graph")
#: The longest question accepted, in characters: longer input is a pasted document, not a question.
MAX_QUERY_CHARS = 4000



def check_query(query: str) -> str:
    """The question stripped, or ``QueryError`` for an empty or oversized one."""
    text = (query or "").strip()
    if not text:
        raise QueryError("the question is empty: type what you want to find")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the question is {len(text)} characters long; keep it under {MAX_QUERY_CHARS} "
            "(ask about a document with `zhiku summarize` instead of pasting it)"
        )
    return text


def fusion_weights(settings: Settings, embedder: Embedder) -> dict[str, float]:
    """Per-retriever fusion weights: the embedder's defaults with ``fusion_weights`` from the
    settings over them, checked against the retrievers."""
    weights = {**default_weights(embedder.name), **settings.fusion_weights}
    unknown = sorted(set(weights) - set(FUSED))
    if unknown:
        raise SettingsError(f"setting 'fusion_weights' names {unknown}; the fused retrievers are {', '.join(FUSED)}")
    return weights


def build_retriever(
    kb: KnowledgeBase,
    embedder: Embedder,
    settings: Settings,
    mode: str | None = None,
    graph: Any = None,
    reranker: Reranker | None = None,
) -> Retriever:
    """The retriever for ``mode`` (default: ``settings.mode``), ready to be kept and reused.

    ``graph`` is an already loaded ``kg.graph.KnowledgeGraph`` (else loaded on first use);
    ``reranker`` is required by ``hybrid+rerank`` (see ``retrieval.rerank.load_reranker``).
    """
    mode = check_mode(mode or settings.mode)
    if mode == "hybrid+rerank" and reranker is None:
        raise SettingsError(
            "mode 'hybrid+rerank' needs a reranker: set reranker = \"llm\" or reranker = \"/path/to/cross-encoder\" "
            "in zhiku.toml (or ZHIKU_RERANKER), or use mode 'hybrid'"
        )
    # One query is one small matrix-vector product: OpenMP fan-out costs more than it saves. On a
    # busy 2-core host a 2-thread search of 100k vectors took ~90-120 ms against ~20 ms on one thread
    # (bench/query.py). Process-wide, but the knowledge base only searches (and appends) with FAISS.
    faiss.omp_set_num_threads(1)
    catalog = Catalog(kb)
    queries = QueryEmbedder(embedder)
    dense = VectorRetriever(kb, queries, catalog)  # graph mode seeds its walk with the same search

    def keyword() -> Retriever:
        from retrieval.keyword import KeywordRetriever  # bm25s and Numba load only for modes with BM25

        return KeywordRetriever(kb, catalog)

    def graph_walk() -> Retriever:
        from retrieval.graph import GraphRetriever  # NetworkX and SciPy load only for modes with the graph

        return GraphRetriever(kb, queries, graph=graph, catalog=catalog, dense=dense)

    single: dict[str, Any] = {"vector": lambda: dense, "keyword": keyword, "graph": graph_walk}  # keys: FUSED
    if mode in single:
        return single[mode]()
    try:
        fused = FusedRetriever([make() for make in single.values()], weights=fusion_weights(settings, embedder),
                               method=settings.fusion_method, adapt=settings.fusion_adapt)
    except ValueError as exc:  # all weights 0, or a negative one
        raise SettingsError(f"setting 'fusion_weights': {exc}") from None
    return fused if mode == "hybrid" else RerankedRetriever(fused, reranker)


def as_llama_index(retriever: Retriever, user: User, k: int = 5) -> Any:
    """``retriever`` as a llama-index ``BaseRetriever`` answering for ``user`` with ``k`` nodes.

    Nodes are ``TextNode(id_=str(chunk id))`` with metadata ``source``, ``page`` and ``section``.
    """
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    class _ZhikuRetriever(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            hits = retriever.retrieve(query_bundle.query_str, k, user)
            return [
                NodeWithScore(
                    node=TextNode(
                        id_=str(hit.chunk.id),
                        text=hit.chunk.text,
                        metadata={"source": hit.document.source, "page": hit.chunk.page, "section": hit.chunk.section},
                    ),
                    score=hit.score,
                )
                for hit in hits
            ]

    return _ZhikuRetriever()
