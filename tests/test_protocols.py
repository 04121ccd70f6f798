"""The seams between stages are one module's protocols; the stages that implement or take them use those."""
from __future__ import annotations

from typing import Protocol

from retrieval import rerank
from zhiku import models, protocols


def test_embedder_extractor_retriever_and_reranker_are_protocols_of_one_module():
    seams = (protocols.Embedder, protocols.Extractor, protocols.Retriever, protocols.Reranker)
    assert all(issubclass(seam, Protocol) and seam.__module__ == "zhiku.protocols" for seam in seams)
    assert models.Embedder is protocols.Embedder and rerank.Reranker is protocols.Reranker
