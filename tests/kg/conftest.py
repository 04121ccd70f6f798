"""Small real knowledge bases for the graph tests: real SQLite and FAISS, zero vectors of the right size.

The graph only reads documents and triples, so vectors need the right dimension, not meaning.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from zhiku.kb import KnowledgeBase
from zhiku.records import PUBLIC, Chunk, Document, Triple

DIM = 8


def _put(kb: KnowledgeBase, source: str, facts: Sequence[Sequence[tuple[str, str, str]]],
        groups: tuple[str, ...] = (PUBLIC,), types: dict[str, str] | None = None) -> Document:
    """Store a document with one chunk per item of ``facts``, each chunk holding those triples."""
    types = types or {}
    chunks = [Chunk(text=" ".join(" ".join(f) for f in chunk), position=i, n_tokens=10)
              for i, chunk in enumerate(facts)]
    triples = [[Triple(s, r, o, subject_type=types.get(s, ""), object_type=types.get(o, "")) for s, r, o in chunk]
               for chunk in facts]
    doc = Document(source=source, content_hash=str(hash(str(facts))), title=Path(source).stem, groups=groups)
    return kb.put_document(doc, chunks, np.zeros((len(chunks), DIM), dtype=np.float32), triples)


@pytest.fixture
def put() -> Callable[..., Document]:
    """``put(kb, source, facts, groups=..., types=...)``: store a document holding those triples."""
    return _put


@pytest.fixture
def make_kb(tmp_path: Path) -> Callable[[], KnowledgeBase]:
    opened: list[KnowledgeBase] = []

    def make() -> KnowledgeBase:
        kb = KnowledgeBase.open(tmp_path / f"kb{len(opened)}", "minilm", DIM)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()
