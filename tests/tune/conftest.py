"""Fixtures of the tuning tests: the small knowledge base of ``tune_corpus``, built once."""
from __future__ import annotations

from pathlib import Path

import pytest
from tune_corpus import build_tune_kb

from zhiku.models import Embedder


@pytest.fixture(scope="session")
def tune_kb_path(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    return build_tune_kb(tmp_path_factory.mktemp("tune") / "kb", embedder)
