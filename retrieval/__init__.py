"""Retrieval: vector, keyword (BM25) and graph retrievers behind one protocol, fused and reranked.

Every retriever answers ``retrieve(query, k, user) -> list[Hit]`` with hits the user may see,
best first. ``build_retriever(kb, embedder, settings, mode)`` builds the one a mode names
(``MODES``); ``as_llama_index`` adapts any of them to a llama-index ``BaseRetriever``.

The names below load on first use (PEP 562): importing any ``retrieval.*`` module imports this
package first, and a search in vector mode should not pay for BM25 (bm25s, Numba) or the graph
(NetworkX, SciPy) it does not use.
"""
from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the module that defines it.
_EXPORTS = {
    "Catalog": "retrieval.catalog",
    "QueryError": "retrieval.factory", "as_llama_index": "retrieval.factory",
    "build_retriever": "retrieval.factory", "check_query": "retrieval.factory",
    "FusedRetriever": "retrieval.fusion", "fuse": "retrieval.fusion",
    "reciprocal_rank_fusion": "retrieval.fusion", "score_fusion": "retrieval.fusion",
    "GraphRetriever": "retrieval.graph",
    "KeywordRetriever": "retrieval.keyword", "Tokenizer": "retrieval.keyword",
    "CrossEncoderReranker": "retrieval.rerank", "LLMJudgeReranker": "retrieval.rerank",
    "RerankedRetriever": "retrieval.rerank", "Reranker": "retrieval.rerank", "load_reranker": "retrieval.rerank",
    "QueryEmbedder": "retrieval.vector", "VectorRetriever": "retrieval.vector",
    "MODES": "zhiku.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
