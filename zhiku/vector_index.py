"""Which FAISS index holds a knowledge base's chunk vectors: exact below a size, approximate above.

Below ``ann_threshold`` chunks the index is exact (``IndexFlatIP`` behind ``IndexIDMap2``). From
that size on it is an inverted file, ``IndexIVFFlat`` with inner product and the chunk ids stored
in it. IVF rather than HNSW, by measurement (``bench/scale.py``, ``bench/results/scale.md``): both
come near or above recall@10 0.98 against flat in a few milliseconds, but HNSW cannot remove vectors (every
re-ingest of a changed file would rebuild the whole graph, where IVF applies each commit's removals
and additions to a copy, as flat does), builds several times slower and holds a neighbour graph on
top of the vectors.

An IVF index has ``nlist_for(n)`` lists (about 4·sqrt(n), FAISS's rule of thumb) and searches
``nprobe`` of them. ``nprobe`` is calibrated when the index is built: the smallest of 1, 2, 3, 5, 8, … (steps of
1.5x) whose recall@10 against the exhaustive answer (every list probed) reaches ``CALIBRATION_RECALL`` on
question-like probes (``question_probes``): sampled stored vectors, each pushed away from itself by
noise shaped like the stored vectors' spread, to ``QUESTION_COSINE``, the cosine a real question has
with its answer chunk (its lower decile, measured on SciFact). Stored vectors themselves make poor
probes: a chunk's neighbours are often near-copies in its own list, found by probing one list, where
a question's, further from every chunk, are spread over many (at a million chunks, calibrating on
stored vectors chose 1 of 4,000 lists and recall@10 on questions was 0.48; bench/results/scale.md).
FAISS saves ``nprobe`` in the index file. An index that no longer fits its size (flat above the threshold,
IVF below half of it, or with lists for a size a factor of two or more away) is rebuilt from
SQLite by the knowledge base the next time it is asked for.

``search(..., widen=w)`` probes ``w`` times more lists: a search that must find ``k`` hits the
user may see among candidates it filters doubles both its candidates and ``widen`` until it has
them or the search was exhaustive (all lists probed: IVF-Flat then returns the exact answer), so
access filtering stays exact on the approximate index.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable

import faiss
import numpy as np

#: Recall@10 the calibrated ``nprobe`` must reach on the question-like probes: above issue 15's 0.98
#: on questions, since some questions (off-topic ones) sit further from every chunk than the probes.
CALIBRATION_RECALL = 0.995
#: Cosine between a question and its answer chunk, the hard end of real questions: the lower decile,
#: over 97 SciFact claims, of a claim's cosine with the nearest chunk of its gold abstract (MiniLM,
#: ``bench.scale_corpus.question_cosines``: decile 0.40, median 0.63).
QUESTION_COSINE = 0.40
CALIBRATION_QUERIES = 200
#: Training vectors per list (FAISS warns below 39).
TRAIN_PER_LIST = 40
#: k-means iterations (FAISS's default is 25; 10 lose nothing measurable in recall here and
#: cut the training time of a million-chunk index by more than half).
KMEANS_ITERATIONS = 10
K = 10

#: (ids, vectors) batches of every stored vector, and a sample of ``n`` of them.
Batches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
Sample = Callable[[int], tuple[np.ndarray, np.ndarray]]


def nlist_for(n: int) -> int:
    """About 4·sqrt(n) lists, fewer where there would be under ``TRAIN_PER_LIST`` vectors to train each."""
    return max(1, min(int(4 * math.sqrt(n)), n // TRAIN_PER_LIST))


def is_approximate(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIVF)


def kind(index: faiss.Index) -> str:
    """``flat`` or ``ivf<nlist>,nprobe=<n>``, for reports."""
    return f"ivf{index.nlist},nprobe={index.nprobe}" if is_approximate(index) else "flat"


def fits(index: faiss.Index, n: int, threshold: int) -> bool:
    """Whether ``index`` is the kind of index ``n`` chunks should have (else: rebuild it)."""
    if not is_approximate(index):
        return n < threshold
    ideal = nlist_for(n)
    return n >= threshold // 2 and ideal / 2 < index.nlist < ideal * 2


def empty(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def build(dimension: int, n: int, batches: Batches, sample: Sample, threshold: int) -> faiss.Index:
    """The index ``n`` stored vectors should have, filled from ``batches``.

    An IVF index is trained on ``sample`` and calibrated on it (see the module docstring). Training
    and adding use every core: a build blocks searches anyway, and a million-chunk build takes
    minutes on one thread.
    """
    if n < threshold:
        index = empty(dimension)
        for ids, vectors in batches():
            index.add_with_ids(vectors, ids)
        return index
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        nlist = nlist_for(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = KMEANS_ITERATIONS
        _, train = sample(min(n, TRAIN_PER_LIST * nlist))
        index.train(np.ascontiguousarray(train))
        for ids, vectors in batches():
            index.add_with_ids(vectors, ids)
        index.nprobe = calibrate(index, question_probes(train, CALIBRATION_QUERIES))
    finally:
        faiss.omp_set_num_threads(threads)
    return index


def question_probes(sample: np.ndarray, n: int, cosine: float = QUESTION_COSINE, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors, each at ``cosine`` from one of ``sample``'s vectors (stored ones, drawn at
    random: the sample may be in id order) and pushed away from it by Gaussian noise shaped like
    ``sample``'s spread: a random combination of all the centred sample vectors, less its part along
    the vector it leaves. Isotropic noise would not do: it lands in the hundreds of dimensions no
    chunk uses, so a probe's neighbours stay its origin's near-copies."""
    rng = np.random.default_rng(seed)
    origins = sample[rng.choice(len(sample), size=min(n, len(sample)), replace=False)]
    centred = sample - sample.mean(axis=0)
    noise = rng.standard_normal((len(origins), len(sample)), dtype=np.float32) @ centred
    noise -= np.sum(noise * origins, axis=1, keepdims=True) * origins
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    probes = cosine * origins + math.sqrt(1 - cosine**2) * noise
    return np.ascontiguousarray(probes / np.linalg.norm(probes, axis=1, keepdims=True), dtype=np.float32)


def calibrate(index: faiss.IndexIVF, probes: np.ndarray, target: float = CALIBRATION_RECALL) -> int:
    """The smallest ``nprobe`` (in steps of 1.5x) whose recall@10 on ``probes`` against the exhaustive
    answer (every list probed) reaches ``target``; ``nlist`` if none does."""
    def neighbours(nprobe: int) -> list[set[int]]:
        _, found = index.search(probes, K, params=faiss.SearchParametersIVF(nprobe=nprobe))
        return [{int(i) for i in row if i >= 0} for row in found]

    truth = neighbours(index.nlist)
    nprobe = 1
    while nprobe < index.nlist:
        found = neighbours(nprobe)
        if np.mean([len(f & t) / max(1, len(t)) for f, t in zip(found, truth)]) >= target:
            return nprobe
        nprobe = math.ceil(nprobe * 1.5)
    return index.nlist


def search(index: faiss.Index, query: np.ndarray, n: int, widen: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's (scores, ids) for one query row, an IVF index probing ``widen`` times its lists."""
    if not is_approximate(index):
        return index.search(query, n)
    return index.search(query, n, params=faiss.SearchParametersIVF(nprobe=min(index.nlist, index.nprobe * widen)))


def exhaustive(index: faiss.Index, widen: int) -> bool:
    """Whether ``search`` with ``widen`` sees every vector (and so returns the exact answer)."""
    return not is_approximate(index) or index.nprobe * widen >= index.nlist
