"""Chunks and vectors for the scale benchmark: real SciFact text first, synthetic beyond.

Real: SciFact's abstracts (``../shared/data/scifact``), cut into chunks of whole sentences up to
about 100 words, embedded with MiniLM (384-d) once and cached under the work folder. Embedding is
the slow part (about 5 chunks/s on this project's loaded 2-core machine), so only the first
``real`` chunks are embedded; the benchmark's queries are SciFact claims, embedded the same way.

Synthetic beyond that: ``bench.query``'s generated chunk text and triples, with vectors that keep
the real ones' geometry instead of uniform random ones (on which no approximate index, and no
real corpus, behaves alike): each is a random mix of two real chunk vectors plus Gaussian noise,
normalised. Nearest-neighbour structure, and so an approximate index's recall, then resembles an
embedding space, not the worst case of points spread evenly on the sphere.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from zhiku.models import Embedder
from zhiku.text import split_sentences

#: SciFact's BEIR files: ``shared/data/scifact`` beside the nearest folder above this file that has one.
SCIFACT = next((p / "shared" / "data" / "scifact" for p in Path(__file__).resolve().parents
                if (p / "shared" / "data" / "scifact").is_dir()), Path("shared/data/scifact"))
#: Words per real chunk (MiniLM reads 256 tokens; 100 words stay inside).
WORDS = 100
#: Spread of the synthetic vectors around their mix of real ones (per dimension, before normalising).
NOISE = 0.03


class SciFactChunk(NamedTuple):
    doc: str  # the abstract's corpus id, which the qrels name
    title: str
    text: str


def scifact_chunks(folder: Path = SCIFACT) -> list[SciFactChunk]:
    """Every SciFact chunk, in corpus order."""
    out = []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            piece: list[str] = []
            for sentence in split_sentences(doc["text"]):
                if piece and sum(len(s.split()) for s in piece) + len(sentence.split()) > WORDS:
                    out.append(SciFactChunk(str(doc["_id"]), doc["title"], " ".join(piece)))
                    piece = []
                piece.append(sentence)
            if piece:
                out.append(SciFactChunk(str(doc["_id"]), doc["title"], " ".join(piece)))
    return out


def scifact_claims(n: int, folder: Path = SCIFACT) -> list[str]:
    return [text for _, text in _claims(n, folder)]


def _claims(n: int, folder: Path) -> list[tuple[str, str]]:
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        return [(str(q["_id"]), q["text"]) for q in (json.loads(line) for _, line in zip(range(n), lines))]


def question_cosines(real: dict[str, np.ndarray], folder: Path = SCIFACT) -> np.ndarray:
    """Each embedded claim's cosine with the nearest chunk of its gold abstract, for the claims whose
    gold abstract is among the embedded chunks: how far a real question sits from its answer
    (``zhiku.vector_index.QUESTION_COSINE`` is their lower decile)."""
    chunk_docs = [c.doc for c in scifact_chunks(folder)[:len(real["chunks"])]]
    gold: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, doc, _ = line.split("\t")
        gold.setdefault(query, set()).add(doc)
    out = []
    for (query, _), vector in zip(_claims(len(real["queries"]), folder), real["queries"]):
        rows = [i for i, doc in enumerate(chunk_docs) if doc in gold.get(query, ())]
        if rows:
            out.append(float(np.max(real["chunks"][rows] @ vector)))
    return np.array(out)


def real_vectors(workdir: Path, embedder: Embedder, n_chunks: int, n_queries: int) -> dict[str, np.ndarray]:
    """Embeddings of the first ``n_chunks`` SciFact chunks and ``n_queries`` claims, cached in ``workdir``."""
    cache = workdir / f"scifact-{embedder.name}-{n_chunks}-{n_queries}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return {name: saved[name] for name in saved.files}
    from tqdm import tqdm

    chunks = [text for _, text in scifact_chunks()[:n_chunks]]
    parts = [embedder.embed(chunks[i:i + 256]) for i in tqdm(range(0, len(chunks), 256), desc="embedding SciFact", unit="batch")]
    found = {"chunks": np.concatenate(parts), "queries": embedder.embed(scifact_claims(n_queries))}
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **found)
    return found


def synthetic_vectors(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors, each a random mix of two of ``real``'s plus noise (see the module docstring)."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(real), n), rng.integers(0, len(real), n)
    weight = rng.random((n, 1), dtype=np.float32)
    vectors = real[first] + weight * real[second]
    vectors += rng.standard_normal(vectors.shape, dtype=np.float32) * NOISE * np.sqrt(len(real[0]) / 384)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)
