"""Benchmark helpers for ``bench/``: extraction throughput and graph build cost.

Kept beside the code they measure so the benchmark scripts stay thin and the lead's ingest
benchmark can print extraction figures next to its own.
"""
from __future__ import annotations

import pickle
import random
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from kg.graph import KnowledgeGraph
from zhiku.protocols import Extractor
from zhiku.records import Chunk, Triple


def extraction_throughput(chunks: Sequence[Chunk], extractor: Extractor | None = None,
                          language: str = "en", per_call: int = 32) -> float:
    """Chunks per second of ``extractor`` (the default one if None) over ``chunks``.

    Chunks are passed ``per_call`` at a time, as ingest passes one document's chunks; the
    extractor's one-off loading is not timed.
    """
    if extractor is None:
        from kg.extract import DefaultExtractor

        extractor = DefaultExtractor()
    extractor.extract([Chunk(text="Warm-up: Acme hired Ann.", position=0, n_tokens=0)], language)
    start = time.perf_counter()
    for i in range(0, len(chunks), per_call):
        extractor.extract(chunks[i:i + per_call], language)
    elapsed = time.perf_counter() - start
    return len(chunks) / elapsed if elapsed > 0 else float("inf")


_FIRST = ["Anna", "Li", "Omar", "Sofia", "Chen", "Marta", "Kenji", "Priya", "Lucas", "Wei", "Elena", "Tom"]
_LAST = ["Schmidt", "Wang", "Haddad", "Rossi", "Zhang", "Nowak", "Sato", "Iyer", "Moreau", "Liu", "Berg", "Okafor"]
_RELATIONS = ["works for", "CEO of", "head of sales at", "located in", "acquired", "supplies to", "reports to",
              "负责", "位于", "partnered with"]


def synthetic_triples(n: int, n_docs: int = 2000, seed: int = 7) -> list[Triple]:
    """``n`` triples over about n/5 entities, with spelling variants that resolution must merge."""
    rng = random.Random(seed)
    people = [f"{f} {l} {i}" for i in range(max(1, n // 20)) for f, l in [(rng.choice(_FIRST), rng.choice(_LAST))]]
    orgs = [f"Company {i}" for i in range(max(1, n // 20))]
    suffixes = ["", " Ltd", " Corp.", " Corporation", " Inc."]
    places = [f"City {i}" for i in range(max(1, n // 100))]
    triples = []
    for i in range(n):
        relation = rng.choice(_RELATIONS)
        subject = rng.choice(people) if rng.random() < 0.6 else rng.choice(orgs) + rng.choice(suffixes)
        obj = rng.choice(places) if relation in ("located in", "位于") else rng.choice(orgs) + rng.choice(suffixes)
        triples.append(Triple(subject, relation, obj, chunk_id=i // 3 + 1, doc_id=i % n_docs + 1,
                              subject_type="PERSON" if subject in people else "ORG", object_type="ORG"))
    return triples


def graph_build_cost(n: int = 100_000, n_docs: int = 2000) -> dict[str, Any]:
    """Time and Python memory to resolve and build the graph from ``n`` synthetic triples."""
    triples = synthetic_triples(n, n_docs)
    groups = {d: ("*",) for d in range(1, n_docs + 1)}
    start = time.perf_counter()
    graph = KnowledgeGraph.from_triples(triples, groups)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    blob = pickle.dumps(graph.graph, protocol=pickle.HIGHEST_PROTOCOL)
    save_s = time.perf_counter() - start
    start = time.perf_counter()
    pickle.loads(blob)
    load_s = time.perf_counter() - start
    tracemalloc.start()
    KnowledgeGraph.from_triples(triples, groups)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    start = time.perf_counter()
    for key in list(graph.graph.nodes)[:100]:
        graph.neighbors(key, hops=2, limit=50)
    neighbors_ms = (time.perf_counter() - start) * 10
    return {
        "triples": n, "entities": graph.graph.number_of_nodes(), "relations": graph.graph.number_of_edges(),
        "build_s": round(seconds, 2), "peak_mib": round(peak / 2**20, 1), "pickle_mib": round(len(blob) / 2**20, 1),
        "pickle_save_s": round(save_s, 2), "pickle_load_s": round(load_s, 2), "neighbors_2hop_ms": round(neighbors_ms, 2),
    }
