"""Knowledge-graph benchmark: extraction throughput of the default extractor, and graph build cost.

- extraction: chunks/s of ``kg.extract.DefaultExtractor`` on the synthetic corpus (``bench.synth``,
  2,000 documents by default, packed into ~150-word text chunks plus one table chunk per document)
  and, with ``--kb``, on the chunks of an existing knowledge base (e.g. the ingested sample corpus);
  shown beside a spaCy-only baseline (``nlp.pipe`` with the same model and no rules), the floor
  under any spaCy-based extractor;
- graph: time and Python peak memory to resolve entities and build the NetworkX graph from 100k
  synthetic triples; the saved file's size and load time beside a pickle of the same graph (the
  format before), the cost of one user's graph (half the documents visible), a 2-hop
  neighbourhood query, and the staleness fingerprint's SQL on a knowledge base of 100k triples;
- graph mode (``--ppr-sizes``): on the synthetic knowledge bases of ``bench/query.py`` (random
  chunk vectors, one or two triples per chunk, 10% of documents restricted), the passage graph's
  build time and memory (entity and fact vectors already computed: they are embedded once, at
  first use, and kept on disk; a hashing embedder stands in for the model so the build is timed
  alone, and the model's throughput on fact sentences is reported beside it) and graph-mode
  query latency p50/p95 for the all-seeing and a restricted user (query vectors precomputed, as in
  ``bench/query.py``). Targets (issue 11): p95 < 50 ms and build < 60 s and < 1 GB at 100k chunks.

    python bench/graph.py                       # 2,000 documents, 100k triples
    python bench/graph.py --docs 200 --triples 20000 --kb zhiku-kb
    python bench/graph.py --only ppr --ppr-sizes 10000 100000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from bench.synth import document  # noqa: E402
from kg.bench import extraction_throughput, fingerprint_cost, graph_build_cost  # noqa: E402
from kg.extract import DefaultExtractor, load_spacy  # noqa: E402
from zhiku.records import Chunk  # noqa: E402

WORDS_PER_CHUNK = 150


def synthetic_chunks(n_docs: int) -> list[Chunk]:
    """Each synthetic document as ingest would roughly chunk it: packed prose, then its table."""
    chunks: list[Chunk] = []
    for i in range(n_docs):
        text, table = [], []
        for block in document(i).split("\n\n"):
            lines = [line for line in block.splitlines() if not line.startswith("#")]
            (table if lines and lines[0].startswith("|") else text).extend(lines)
        words: list[str] = []
        for line in text:
            words += line.lstrip("- ").split()
            if len(words) >= WORDS_PER_CHUNK:
                chunks.append(Chunk(" ".join(words), len(chunks), len(words), doc_id=i))
                words = []
        if words:
            chunks.append(Chunk(" ".join(words), len(chunks), len(words), doc_id=i))
        if table:
            chunks.append(Chunk("\n".join(table), len(chunks), 0, kind="table", doc_id=i))
    return chunks


def spacy_only(chunks: list[Chunk], nlp) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe([c.text for c in chunks], batch_size=64):
        pass
    return len(chunks) / (time.perf_counter() - start)


class HashEmbedder:
    """Deterministic random unit vectors per text: stands in for the model when only the graph is timed."""

    def __init__(self, name: str = "minilm", dimension: int = 384) -> None:
        self.name, self.dimension, self.max_tokens = name, dimension, 256

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def embed(self, texts):
        import hashlib

        import numpy as np

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def ppr_cost(n_chunks: int, workdir: Path, n_queries: int = 200, k: int = 5) -> dict:
    """Passage-graph build cost and graph-mode latency on ``bench/query.py``'s synthetic knowledge base."""
    import tracemalloc

    import faiss
    import psutil

    from bench.query import EVERYONE, RESTRICTED, build_kb, questions, timed
    from kg.graph import load_graph
    from retrieval.graph import GraphRetriever
    from retrieval.vector import VectorRetriever
    from zhiku.kb import KnowledgeBase

    root = build_kb(workdir / f"kb-{n_chunks}", n_chunks)
    faiss.omp_set_num_threads(1)  # as build_retriever does
    embedder = HashEmbedder()
    qs = questions(n_queries)
    with KnowledgeBase.open(root, "minilm") as kb:
        kg = load_graph(kb)
        retriever = GraphRetriever(kb, embedder, graph=kg, persist=False)
        started = time.perf_counter()
        keys = list(kg.graph.nodes)
        retriever._names.matrix([kg.graph.nodes[key]["name"] for key in keys])
        retriever._facts.matrix([f"{kg.graph.nodes[u]['name']} {d['relation']} {kg.graph.nodes[v]['name']}"
                                 for u, v, d in kg.graph.edges(data=True)])
        embed_s = time.perf_counter() - started
        rss = psutil.Process().memory_info().rss
        tracemalloc.start()
        started = time.perf_counter()
        view = retriever.view(kg)
        build_s = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss_growth = psutil.Process().memory_info().rss - rss
        pg = view.pg
        started = time.perf_counter()
        retriever.retrieve(qs[0], k, RESTRICTED)  # the restricted user's view: built on first query
        restricted_build_s = time.perf_counter() - started
        vector = VectorRetriever(kb, embedder)
        index = kb.vector_index()
        latency = timed({"all-seeing": lambda q: retriever.retrieve(q, k, EVERYONE),
                         "restricted": lambda q: retriever.retrieve(q, k, RESTRICTED),
                         "vector": lambda q: vector.retrieve(q, k, EVERYONE),
                         "faiss": lambda q: index.search(embedder.embed([q]), k)}, qs)
    return {
        "chunks": n_chunks, "entities": pg.n_entities, "chunk_nodes": len(pg.chunk_ids), "facts": len(pg.fact_heads),
        "edges": int(pg.walk.nnz), "synonyms": len(pg.synonym_pairs), "hash_embedding_s": round(embed_s, 1),
        "build_s": round(build_s, 2), "build_peak_mib": round(peak / 2**20), "build_rss_mib": round(rss_growth / 2**20),
        "restricted_view_s": round(restricted_build_s, 2),
        **{f"{who}_{q}_ms": round(row[q], 1) for who, row in latency.items() for q in ("p50", "p95")},
        "load_average": round(os.getloadavg()[0], 1),
    }


def fact_embedding_rate(n: int = 2000) -> float:
    """Fact sentences per second embedded by MiniLM (what building the fact vectors costs once, at first use)."""
    from bench.query import _chunk
    from zhiku.models import load_embedder
    import random

    rng = random.Random(3)
    sentences = [f"{t.subject} {t.relation} {t.object}" for _ in range(n) for t in _chunk(rng)[1]][:n]
    embedder = load_embedder("minilm")
    embedder.embed(sentences[:64])
    started = time.perf_counter()
    embedder.embed(sentences)
    return len(sentences) / (time.perf_counter() - started)


def ppr_report(rows: list[dict], rate: float | None) -> str:
    lines = ["| chunks | entities | fact edges | walk nnz | synonyms | build s | build peak MiB (traced) | +RSS MiB "
             "| restricted view s | graph p50 ms | graph p95 ms | restricted p50 ms | restricted p95 ms "
             "| vector p50 / p95 ms | raw FAISS p50 / p95 ms | load average |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['chunks']:,} | {r['entities']:,} | {r['facts']:,} | {r['edges']:,} | {r['synonyms']:,} "
                     f"| {r['build_s']} | {r['build_peak_mib']} | {r['build_rss_mib']} | {r['restricted_view_s']} "
                     f"| {r['all-seeing_p50_ms']} | {r['all-seeing_p95_ms']} | {r['restricted_p50_ms']} "
                     f"| {r['restricted_p95_ms']} | {r['vector_p50_ms']} / {r['vector_p95_ms']} "
                     f"| {r['faiss_p50_ms']} / {r['faiss_p95_ms']} | {r['load_average']} |")
    if rate:
        lines.append(f"\nMiniLM embeds {rate:.0f} fact sentences/s here (once per distinct fact, kept in "
                     "fact_vectors.npz): " + "; ".join(f"{r['facts']:,} facts = {r['facts'] / rate:.0f} s"
                                                      for r in rows))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("kg", "ppr"), help="run only the knowledge-graph or the graph-mode part")
    parser.add_argument("--ppr-sizes", type=int, nargs="*", default=[10_000, 100_000],
                        help="chunks of the graph-mode knowledge bases (default 10000 100000)")
    parser.add_argument("--queries", type=int, default=200, help="graph-mode questions timed per size")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/zhiku-bench-query"),
                        help="where the synthetic knowledge bases are kept (shared with bench/query.py)")
    parser.add_argument("--docs", type=int, default=2000, help="synthetic documents (default 2000)")
    parser.add_argument("--triples", type=int, default=100_000, help="synthetic triples for the graph build")
    parser.add_argument("--kb", type=Path, help="also measure extraction on this knowledge base's chunks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.only != "kg" and args.ppr_sizes:
        rows = []
        for size in args.ppr_sizes:
            rows.append(ppr_cost(size, args.workdir, args.queries))
            print(json.dumps(rows[-1]), flush=True)
        print(ppr_report(rows, fact_embedding_rate()))
    if args.only == "ppr":
        return

    nlp = load_spacy()
    extractor = DefaultExtractor(nlp)
    rows = []
    corpora = [(f"synthetic {args.docs} docs", synthetic_chunks(args.docs))]
    if args.kb:
        from zhiku.kb import KnowledgeBase

        with KnowledgeBase.open(args.kb, KnowledgeBase.resolve_model(args.kb, "")) as kb:
            corpora.append((f"{args.kb}", list(kb.iter_chunks())))
    for name, chunks in corpora:
        words = sum(len(c.text.split()) for c in chunks) / max(1, len(chunks))
        rows.append({"corpus": name, "chunks": len(chunks), "words_per_chunk": round(words),
                     "default_chunks_per_s": round(extraction_throughput(chunks, extractor), 1),
                     "spacy_only_chunks_per_s": round(spacy_only(chunks, nlp), 1)})
    graph = graph_build_cost(args.triples)
    fingerprint = fingerprint_cost(args.triples)
    if args.json:
        print(json.dumps({"extraction": rows, "graph": graph, "fingerprint": fingerprint}, indent=2))
        return
    print(f"{'corpus':32} {'chunks':>7} {'words/chunk':>11} {'default ch/s':>13} {'spaCy-only ch/s':>16}")
    for r in rows:
        print(f"{r['corpus']:32} {r['chunks']:7} {r['words_per_chunk']:11} {r['default_chunks_per_s']:13} "
              f"{r['spacy_only_chunks_per_s']:16}")
    print(f"\ngraph from {graph['triples']} triples: {graph['entities']} entities, {graph['relations']} relations; "
          f"build {graph['build_s']} s, Python peak {graph['peak_mib']} MiB; one user's graph {graph['user_graph_s']} s; "
          f"2-hop neighbours {graph['neighbors_2hop_ms']} ms")
    print(f"{'saved graph':32} {'MiB':>7} {'load s':>7}")
    print(f"{'graph.json (now)':32} {graph['file_mib']:7} {graph['load_s']:7}   (save {graph['save_s']} s)")
    print(f"{'pickle (before)':32} {graph['pickle_mib']:7} {graph['pickle_load_s']:7}")
    print(f"staleness fingerprint over {fingerprint['triples']} triples, {fingerprint['documents']} documents: "
          f"{fingerprint['fingerprint_ms']} ms")


if __name__ == "__main__":
    main()
