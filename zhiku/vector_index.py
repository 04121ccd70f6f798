"""Which FAISS index holds a knowledge base's chunk vectors: exact below a size, approximate above.

Below ``ann_threshold`` chunks the index is exact (``IndexFlatIP`` behind ``IndexIDMap2``). From
that size on it is an inverted file, ``IndexIVFFlat`` with inner product and the chunk ids stored
in it. IVF rather than HNSW, by measurement (``bench/scale.py``, ``bench/results/scale.md``): both
reach recall@10 >= 0.98 against flat in a few milliseconds, but HNSW cannot remove vectors (every
re-ingest of a changed file would rebuild the whole graph, where IVF applies each commit's removals
and additions to a copy, as flat does), builds several times slower and holds a neighbour graph on
top of the vectors.

An IVF index has ``nlist_for(n)`` lists (about 4·sqrt(n), FAISS's rule of thumb) and searches
``nprobe`` of them. ``nprobe`` is calibrated when the index is built: the smallest of 1, 2, 3, 5, 8, … (steps of
1.5x) whose recall@10 against the exhaustive answer reaches ``CALIBRATION_RECALL`` on a sample of the
stored vectors used as queries (each query's own vector left out of both answers), times
``CALIBRATION_MARGIN`` (real questions are further from the chunks than chunks from each other;
measured in bench/results/scale.md). FAISS saves ``nprobe`` in the index file. An index that no longer fits its size (flat above the threshold,
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

#: Recall@10 the calibrated ``nprobe`` must reach on the stored-vector sample.
CALIBRATION_RECALL = 0.99
#: The ``nprobe`` kept is this many times the calibrated one: questions sit further from the chunks
#: than chunks from each other. At 100k chunks (bench/scale.py's questions) the stored-vector
#: calibration chose 41 of 1,264 lists, which gave recall@10 0.925 on questions; 210 gave 0.982.
CALIBRATION_MARGIN = 5
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
        train_ids, train = sample(min(n, TRAIN_PER_LIST * nlist))
        index.train(np.ascontiguousarray(train))
        for ids, vectors in batches():
            index.add_with_ids(vectors, ids)
        calibrated = calibrate(index, train_ids[:CALIBRATION_QUERIES], train[:CALIBRATION_QUERIES])
        index.nprobe = min(nlist, calibrated * CALIBRATION_MARGIN)
    finally:
        faiss.omp_set_num_threads(threads)
    return index


def calibrate(index: faiss.IndexIVF, ids: np.ndarray, queries: np.ndarray, target: float = CALIBRATION_RECALL) -> int:
    """The smallest ``nprobe`` (in steps of 1.5x) whose recall@10 on ``queries`` (stored vectors,
    their own ids dropped from both answers) reaches ``target``; ``nlist`` if none does.

    On the benchmark's knowledge bases a stored-vector recall of 0.99 meant about 0.98 on real
    questions, which sit a little further from the chunks than chunks from each other."""
    def neighbours(nprobe: int) -> list[set[int]]:
        _, found = index.search(queries, K + 1, params=faiss.SearchParametersIVF(nprobe=nprobe))
        return [set([int(i) for i in row if i >= 0 and i != own][:K]) for row, own in zip(found, ids)]

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
