"""Retrieval: vector, keyword (BM25) and graph retrievers behind one protocol, fused and reranked.

Every retriever answers ``retrieve(query, k, user) -> list[Hit]`` with hits the user may see,
best first. ``build_retriever(kb, embedder, settings, mode)`` builds the one a mode names
(``MODES``); ``as_llama_index`` adapts any of them to a llama-index ``BaseRetriever``.
"""
from retrieval.catalog import Catalog
from retrieval.factory import QueryError, as_llama_index, build_retriever, check_query
from retrieval.fusion import FusedRetriever, fuse, reciprocal_rank_fusion, score_fusion
from retrieval.graph import GraphRetriever
from retrieval.keyword import KeywordRetriever, Tokenizer
from retrieval.rerank import CrossEncoderReranker, LLMJudgeReranker, RerankedRetriever, Reranker, load_reranker
from retrieval.vector import QueryEmbedder, VectorRetriever
from zhiku.settings import MODES

__all__ = [
    "MODES", "Catalog", "CrossEncoderReranker", "FusedRetriever", "GraphRetriever", "KeywordRetriever", "LLMJudgeReranker",
    "QueryEmbedder", "QueryError", "RerankedRetriever", "Reranker", "Tokenizer", "VectorRetriever",
    "as_llama_index", "build_retriever", "check_query", "fuse", "load_reranker", "reciprocal_rank_fusion", "score_fusion",
]

