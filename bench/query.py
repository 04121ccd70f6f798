"""Query latency of every retrieval mode at 10k and 100k chunks, beside raw FAISS and llama-index.

Builds (once, cached under ``--workdir``) a throwaway knowledge base of N synthetic chunks with
random 384-d vectors, BM25-worthy text (people, cities, topics and thousands of project names)
and one or two triples per chunk; 10% of the documents are restricted to a group. Then, for a
fixed set of questions, it times:

- each Zhiku mode (``vector``, ``keyword``, ``graph``, ``hybrid``) for the all-seeing user and for
  a restricted user (ACL filtering on), with query vectors computed beforehand so every row
  measures retrieval only (the MiniLM query embedding is timed separately: add it for end to end);
- raw FAISS (``IndexFlatIP`` search of the same index) — the floor for ``vector``;
- llama-index ``VectorStoreIndex`` retrievers over the same vectors: the plain in-memory store
  and the FAISS-backed store, given the same query embeddings.

    python bench/query.py                 # 10k and 100k chunks
    python bench/query.py --sizes 10000 --queries 50

``build_retriever`` runs FAISS on one OpenMP thread (see ``retrieval.factory``), so the raw FAISS
row, built first, also ends up single-threaded once the first retriever is built: the comparison is
like for like.

Targets (issue 4): hybrid p95 < 150 ms at 100k chunks on 2 cores; vector within 1.5x raw FAISS.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhiku  # noqa: E402,F401 - offline environment before model libraries load
from bench.synth import CITIES, FIRST, LAST, PRODUCTS, TOPICS, VERBS  # noqa: E402
from zhiku.kb import KnowledgeBase  # noqa: E402
from zhiku.records import PUBLIC, Chunk, Document, Triple, User  # noqa: E402
from zhiku.settings import Settings  # noqa: E402

DIM = 384
CHUNKS_PER_DOC = 50
PROJECTS = [f"Project {a}{b}" for a in ("Kestrel", "Falcon", "Heron", "Osprey", "Lynx", "Marten", "Ibis", "Tern")
            for b in range(1, 626)]  # 5000 rare names
EVERYONE = User(sees_all=True)
RESTRICTED = User("guest", ("staff",))  # sees the 90% public documents, not the "hr" ones


# ----------------------------------------------------------------------------- the corpus
def _chunk(rng: random.Random) -> tuple[str, list[Triple]]:
    person, boss = (f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(2))
    project, city, product = rng.choice(PROJECTS), rng.choice(CITIES), rng.choice(PRODUCTS)
    topic, verb = rng.choice(TOPICS), rng.choice(VERBS)
    text = (
        f"{project} is led by {person}, who reports to {boss} in the {city} office. "
        f"The team {verb} the {topic} plan for the {product} and expects a lead time of {rng.randint(2, 40)} days. "
        f"Budget for {topic} is {rng.randint(10, 900) * 1000} EUR; requests must be filed within "
        f"{rng.randint(5, 60)} days of the event."
    )
    triples = [Triple(project, "led by", person, subject_type="project", object_type="person")]
    if rng.random() < 0.5:
        triples.append(Triple(person, "reports to", boss, subject_type="person", object_type="person"))
    return text, triples


def build_kb(root: Path, n_chunks: int, seed: int = 11) -> Path:
    """A knowledge base of ``n_chunks`` synthetic chunks with random unit vectors (kept once built)."""
    if KnowledgeBase.exists(root):
        return root
    rng, vectors_rng = random.Random(seed), np.random.default_rng(seed)
    started = time.perf_counter()
    with KnowledgeBase.open(root, "minilm", DIM) as kb:
        for d in range(n_chunks // CHUNKS_PER_DOC):
            pieces = [_chunk(rng) for _ in range(CHUNKS_PER_DOC)]
            chunks = [Chunk(text=t, position=i, n_tokens=60, heading_path=(f"Note {d}",)) for i, (t, _) in enumerate(pieces)]
            vectors = vectors_rng.standard_normal((len(chunks), DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            doc = Document(source=f"/bench/doc{d:06}.md", content_hash=str(d), title=f"Note {d}",
                           groups=("hr",) if d % 10 == 9 else (PUBLIC,))
            kb.put_document(doc, chunks, vectors, [ts for _, ts in pieces])
        kb.save_vectors()
    print(f"  built {root} ({n_chunks} chunks) in {time.perf_counter() - started:.0f} s", flush=True)
    return root


def questions(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    forms = [
        lambda: f"Who leads {rng.choice(PROJECTS)}?",
        lambda: f"What did {rng.choice(FIRST)} {rng.choice(LAST)} decide about the {rng.choice(TOPICS)} plan?",
        lambda: f"Lead time of the {rng.choice(PRODUCTS)} in {rng.choice(CITIES)}",
        lambda: f"Who does {rng.choice(FIRST)} {rng.choice(LAST)} report to?",
        lambda: f"{rng.choice(TOPICS)} budget requests deadline",
    ]
    return [rng.choice(forms)() for _ in range(n)]


# -------------------------------------------------------------------------- measuring
class Precomputed:
    """An Embedder answering the bench questions from a table (retrieval timed without the model)."""

    def __init__(self, inner, table: dict[str, np.ndarray]) -> None:
        self.inner, self.table = inner, table
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 1 and texts[0] in self.table:
            return self.table[texts[0]][None, :]
        return self.inner.embed(texts)


def timed(runners: dict[str, Callable[[str], object]], queries: Sequence[str], sparse: set[str] = frozenset(),
          warmup: int = 3) -> dict[str, dict[str, float]]:
    """p50/p95 in ms per runner, running them round-robin per query so that load from other
    processes on the machine hits every runner alike. Runners in ``sparse`` run on every tenth query."""
    for run in runners.values():
        for q in queries[:warmup]:
            run(q)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i, q in enumerate(queries):
        for name, run in runners.items():
            if name in sparse and i % 10:
                continue
            started = time.perf_counter()
            run(q)
            times[name].append((time.perf_counter() - started) * 1000)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = {"p50": statistics.median(ts), "p95": ts[min(len(ts) - 1, int(0.95 * len(ts)))], "n": len(ts)}
    return out


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def llama_index_retrievers(kb: KnowledgeBase, k: int) -> dict[str, Callable[[str, np.ndarray], object]]:
    """Plain and FAISS-backed llama-index VectorStoreIndex retrievers over the same chunks and vectors."""
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import QueryBundle, TextNode
    from llama_index.vector_stores.faiss import FaissVectorStore

    ids = [c.id for c in kb.iter_chunks()]
    vectors = kb.vectors_of(ids)
    texts = {c.id: c.text for c in kb.iter_chunks()}
    nodes = [TextNode(id_=str(i), text=texts[i], embedding=v.tolist()) for i, v in zip(ids, vectors)]
    embed = MockEmbedding(embed_dim=DIM)  # never called: the queries carry their embeddings
    plain = VectorStoreIndex(nodes, embed_model=embed).as_retriever(similarity_top_k=k)
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(DIM))
    backed = VectorStoreIndex(nodes, embed_model=embed, storage_context=StorageContext.from_defaults(vector_store=store))
    backed_retriever = backed.as_retriever(similarity_top_k=k)

    def run(retriever):
        return lambda q, v: retriever.retrieve(QueryBundle(query_str=q, embedding=v.tolist()))

    return {"llama-index VectorStoreIndex (plain)": run(plain), "llama-index VectorStoreIndex (FAISS)": run(backed_retriever)}


def bench_size(n_chunks: int, workdir: Path, n_queries: int, k: int, embedder) -> list[dict]:
    from retrieval import build_retriever

    print(f"\n== {n_chunks} chunks ==", flush=True)
    root = build_kb(workdir / f"kb-{n_chunks}", n_chunks)
    qs = questions(n_queries)
    table = dict(zip(qs, embedder.embed(qs)))
    fixed = Precomputed(embedder, table)
    runners: dict[str, Callable[[str], object]] = {}
    loading: dict[str, dict[str, float]] = {}
    with KnowledgeBase.open(root, "minilm") as kb:
        index = kb.vector_index()
        runners["raw FAISS IndexFlatIP search"] = lambda q: index.search(table[q][None, :], k)
        settings = Settings(kb=root)
        for mode in ("vector", "keyword", "graph", "hybrid"):
            before, started = rss_mib(), time.perf_counter()
            retriever = build_retriever(kb, fixed, settings, mode)
            retriever.retrieve(qs[0], k, EVERYONE)  # loads or builds its indexes
            loading[mode] = {"load_s": time.perf_counter() - started, "rss_mib": rss_mib() - before}
            for label, user in (("all-seeing", EVERYONE), ("restricted", RESTRICTED)):
                runners[f"zhiku {mode} ({label})"] = lambda q, r=retriever, u=user: r.retrieve(q, k, u)
        before, started = rss_mib(), time.perf_counter()
        baselines = llama_index_retrievers(kb, k)
        loading["llama-index"] = {"load_s": time.perf_counter() - started, "rss_mib": rss_mib() - before}
        for name, run in baselines.items():
            runners[name] = lambda q, run=run: run(q, table[q])
        runners["MiniLM query embedding (add for end to end)"] = lambda q: embedder.embed([q])
        plain = {name for name in runners if "plain" in name}
        results = timed(runners, qs, sparse=plain)
    rows = []
    for name, row in results.items():
        source = next((m for m in loading if f"zhiku {m} " in name or name.startswith(m)), None)
        rows.append({"what": name, **row, **loading.get(source, {}), "chunks": n_chunks})
    return rows


def report(rows: list[dict]) -> str:
    lines = [f"{'chunks':>7}  {'what':<48} {'p50 ms':>8} {'p95 ms':>8} {'n':>4} {'load s':>7} {'+RSS MiB':>9}"]
    for r in rows:
        load = f"{r['load_s']:.1f}" if "load_s" in r else ""
        rss = f"{r['rss_mib']:.0f}" if "rss_mib" in r else ""
        lines.append(f"{r['chunks']:>7}  {r['what']:<48} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['n']:>4} {load:>7} {rss:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "zhiku-bench-query")
    args = parser.parse_args()
    from zhiku.models import load_embedder

    embedder = load_embedder("minilm")
    rows: list[dict] = []
    for size in args.sizes:
        rows += bench_size(size, args.workdir, args.queries, args.k, embedder)
        print(report([r for r in rows if r["chunks"] == size]), flush=True)
    print(f"\n== all (cores: {os.cpu_count()}, FAISS threads: 1 (set by build_retriever), "
          f"load average {os.getloadavg()[0]:.1f}) ==")
    print(report(rows))
    for size in args.sizes:
        by = {r["what"]: r for r in rows if r["chunks"] == size}
        raw, vec, hybrid = by["raw FAISS IndexFlatIP search"], by["zhiku vector (all-seeing)"], by["zhiku hybrid (all-seeing)"]
        print(f"{size} chunks: vector p50 / raw FAISS p50 = {vec['p50'] / raw['p50']:.2f}x; "
              f"hybrid p95 = {hybrid['p95']:.0f} ms (target < 150 ms)")


if __name__ == "__main__":
    main()
