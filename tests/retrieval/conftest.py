"""Fixtures of the retrieval tests: the tiny knowledge base of ``retrieval_corpus``, built once."""
from __future__ import annotations

from pathlib import Path

import pytest
from retrieval_corpus import build_kb

from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder


@pytest.fixture(scope="session")
def small_kb_path(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    return build_kb(tmp_path_factory.mktemp("retrieval") / "kb", embedder)


@pytest.fixture
def small_kb(small_kb_path: Path, embedder: Embedder):
    with KnowledgeBase.open(small_kb_path, embedder.name) as kb:
        yield kb
