"""The cost curve to a million chunks: disk, RAM, open time and search latency by knowledge base size.

For each size (10k, 100k and 1M chunks by default) it builds, once, a knowledge base under
``--workdir`` (documents of 50 chunks, one in ten restricted to the group ``hr``): the first
``--real`` chunks are real SciFact abstracts with their MiniLM vectors, the rest ``bench.query``'s
synthetic chunks and triples with vectors derived from the real ones (``bench.scale_corpus`` says
how, and why not uniform random ones). The vector index is saved as the knowledge base would save
it with ``ann_threshold`` (``--threshold``): exact below, IVF from there on (its build timed).

Then, in a fresh process per size (so memory is that of one process holding every index):

- disk (the folder), open time (open + load every index a hybrid search uses) and RSS after
  each index loads: the vector index, BM25 (keyword) and the graph, whose deltas are their memory;
  then RSS after the searches below, and the process's peak;
- p50/p95 of ``vector``, ``keyword``, ``graph`` and ``hybrid`` search, for the all-seeing user and
  a restricted one, queries embedded beforehand by MiniLM (SciFact claims and ``bench.query``'s
  questions); the graph's entity names and fact sentences get hash-seeded vectors (``SeededVectors``:
  embedding 100k generated sentences would take hours here), so no model is loaded in the measuring
  process and its RSS is the knowledge base's;
- recall@10 of the vector index against the exact answer (IVF-Flat probing every list), for
  the all-seeing user and, through the retriever, for the restricted one.

``--compare`` adds, per size, the measurement behind the choice of approximate index: flat,
IVF (as the knowledge base builds it) and HNSW (M=32, efSearch raised until recall@10 >= 0.98):
build time, index bytes, p50/p95 of one query, recall@10 against flat.

    python bench/scale.py --sizes 10000 100000            # the curve to 100k
    python bench/scale.py --sizes 10000 100000 1000000 --compare

Writes ``bench/results/scale.json``, ``scale.md`` and ``scale.png`` (latency and memory by size).
Targets (issue 15): hybrid p95 < 100 ms at 1M chunks; RAM < 4 GB per 1M chunks (384-d).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/

import zhiku  # noqa: E402,F401 - offline environment before model libraries load
from bench.query import CHUNKS_PER_DOC, DIM, EVERYONE, RESTRICTED, _chunk, questions, rss_mib, timed  # noqa: E402
from bench.scale_corpus import real_vectors, scifact_chunks, scifact_claims, synthetic_vectors  # noqa: E402
from zhiku.settings import Settings  # noqa: E402

SIZES = [10_000, 100_000, 1_000_000]
MODES = ("vector", "keyword", "graph", "hybrid")
K = 10
#: Recall@10 an approximate index must reach against flat (issue 15).
RECALL_TARGET = 0.98


# ------------------------------------------------------------------------- building
class SeededVectors:
    """Stands in for MiniLM where the graph embeds its entity names and fact sentences.

    On two loaded cores MiniLM embeds about 5 texts/s, and 100k chunks of synthetic text carry
    about 100k distinct fact sentences: hours, for vectors of generated text that mean nothing
    anyway. Each text gets a unit vector seeded by its hash instead: the graph's indexes have
    their real sizes (so its latency and memory are measured), its linking quality is not. The
    questions themselves are embedded by the real model, beforehand.
    """

    name, dimension, max_tokens = "minilm", DIM, 256

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]

    def embed(self, texts):
        import zlib

        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM, dtype=np.float32)
                        for t in texts]) if texts else np.zeros((0, DIM), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def build_kb(root: Path, n_chunks: int, real: dict[str, np.ndarray], threshold: int, modes: tuple[str, ...] = MODES,
             seed: int = 11) -> dict:
    """The knowledge base of ``n_chunks`` (see the module docstring), kept once built; its build times.
    Documents already stored (an interrupted build) are kept; derived indexes are built for ``modes``."""
    from tqdm import tqdm

    from retrieval import build_retriever
    from zhiku import vector_index
    from zhiku.kb import KnowledgeBase
    from zhiku.records import PUBLIC, Chunk, Document

    done = root / "build.json"
    if done.exists():
        return json.loads(done.read_text())
    rng = random.Random(seed)
    texts = scifact_chunks()
    n_real = min(len(real["chunks"]), n_chunks)
    started = time.perf_counter()
    with KnowledgeBase.open(root, "minilm", DIM, ann_threshold=threshold) as kb:
        stored = {d.source for d in kb.documents()}
        for d in tqdm(range(n_chunks // CHUNKS_PER_DOC), desc=f"building {n_chunks} chunks", unit="doc", mininterval=5):
            start, stop = d * CHUNKS_PER_DOC, (d + 1) * CHUNKS_PER_DOC
            pieces = [(texts[i].text, []) if i < n_real else _chunk(rng) for i in range(start, stop)]
            real_part = real["chunks"][start:min(stop, n_real)]
            vectors = np.concatenate([real_part, synthetic_vectors(real["chunks"], CHUNKS_PER_DOC - len(real_part), seed + d)])
            chunks = [Chunk(text=t, position=i, n_tokens=len(t.split()), heading_path=(f"Note {d}",))
                      for i, (t, _) in enumerate(pieces)]
            if f"/bench/doc{d:06}.md" in stored:
                continue
            doc = Document(source=f"/bench/doc{d:06}.md", content_hash=str(d), title=f"Note {d}",
                           groups=("hr",) if d % 10 == 9 else (PUBLIC,))
            kb.put_document(doc, chunks, vectors, [ts for _, ts in pieces])
        store_s = time.perf_counter() - started
        started = time.perf_counter()
        kb.save_vectors()  # built from SQLite, exact or IVF as ann_threshold says
        built = {"chunks": n_chunks, "real_chunks": n_real, "store_s": store_s,
                 "vector_index_build_s": time.perf_counter() - started, "index": vector_index.kind(kb.vector_index())}
        started = time.perf_counter()
        for mode in ("hybrid",) if "hybrid" in modes else modes:
            build_retriever(kb, SeededVectors(), Settings(kb=root, ann_threshold=threshold), mode).retrieve("Who leads the plan?", K, EVERYONE)
        built["other_indexes_build_s"] = time.perf_counter() - started  # BM25, graph, entity vectors: saved
    done.write_text(json.dumps(built))
    return built


def all_vectors(root: Path) -> tuple[np.ndarray, np.ndarray]:
    from zhiku.kb import KnowledgeBase

    with KnowledgeBase.open(root, "minilm") as kb:
        ids = np.array([r[0] for r in kb.query("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        return ids, kb.vectors_of(ids)


# ------------------------------------------------------------------------ measuring
def directory_mib(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def measure(root: Path, cache: Path, n_queries: int, threshold: int, modes: tuple[str, ...] = MODES) -> dict:
    """Memory, open time, latency and recall of one knowledge base (run in a fresh process)."""
    import faiss

    from bench.query import Precomputed
    from retrieval import build_retriever
    from retrieval.vector import VectorRetriever
    from zhiku import vector_index
    from zhiku.kb import KnowledgeBase

    with np.load(cache) as saved:
        table = dict(zip(json.loads(str(saved["texts"])), saved["vectors"]))
    qs = list(table)[:n_queries]
    fixed = Precomputed(SeededVectors(), table)
    settings = Settings(kb=root, ann_threshold=threshold)
    base_rss = rss_mib()
    started = time.perf_counter()
    kb = KnowledgeBase.open(root, "minilm", ann_threshold=threshold)
    index = kb.vector_index()
    memory = {"vector_index_mib": rss_mib() - base_rss, "vector_index_load_s": time.perf_counter() - started}
    if "hybrid" in modes:  # one hybrid retriever, as the product holds: its parts share the catalog and dense search
        hybrid = build_retriever(kb, fixed, settings, "hybrid")
        retrievers = {**{r.name: r for r in hybrid.retrievers}, "hybrid": hybrid}
    else:
        retrievers = {mode: build_retriever(kb, fixed, settings, mode) for mode in modes}
    retrievers = {mode: retrievers[mode] for mode in modes}
    for mode, retriever in retrievers.items():
        before, began = rss_mib(), time.perf_counter()
        retriever.retrieve(qs[0], K, EVERYONE)  # loads what it uses (the hybrid: nothing left to load)
        memory[f"{mode}_mib"], memory[f"{mode}_load_s"] = rss_mib() - before, time.perf_counter() - began
    figures = {"chunks": kb.stats()["chunks"], "disk_mib": directory_mib(root), "open_s": time.perf_counter() - started,
               "rss_mib": rss_mib(), "rss_indexes_mib": rss_mib() - base_rss, "index": vector_index.kind(index),
               "faiss_threads": faiss.omp_get_max_threads(), **memory}
    runners = {f"{mode} ({label})": (lambda q, r=r, u=u: r.retrieve(q, K, u))
               for mode, r in retrievers.items() for label, u in (("all-seeing", EVERYONE), ("restricted", RESTRICTED))}
    figures["latency"] = timed(runners, qs)
    # searching allocates too (at 1M chunks with the graph, gigabytes): RSS after it and the peak
    figures["rss_after_search_mib"] = rss_mib()
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["recall"] = recall(kb, index, np.stack([table[q] for q in qs]), VectorRetriever(kb, fixed))
    kb.close()
    return figures


def recall(kb, index, queries: np.ndarray, retriever) -> dict:
    """recall@10 against the exact answer: the index alone (all-seeing) and the retriever for the
    restricted user (exact answer: the exhaustive search, filtered to what that user may see)."""
    from zhiku import vector_index

    if not vector_index.is_approximate(index):
        return {"all_seeing": 1.0, "restricted": 1.0, "exact": True}
    _, found = vector_index.search(index, queries, K)
    _, truth = vector_index.search(index, queries, K, widen=index.nlist)
    exhaustive = []  # what a flat index's search would cost: every vector scanned, one query at a time
    for query in queries:
        began = time.perf_counter()
        vector_index.search(index, query[None, :], K, widen=index.nlist)
        exhaustive.append((time.perf_counter() - began) * 1000)
    exhaustive.sort()
    everyone = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])
    restricted = []
    for query in queries:
        _, ids = vector_index.search(index, query[None, :], 20 * K, widen=index.nlist)
        visible = ids[0][retriever.catalog.visible_chunks(RESTRICTED, ids[0])][:K]
        got = retriever.search(query, K, RESTRICTED)[0]
        restricted.append(len(set(got.tolist()) & set(visible.tolist())) / K)
    return {"all_seeing": float(everyone), "restricted": float(np.mean(restricted)), "exact": False,
            "nprobe": int(index.nprobe), "nlist": int(index.nlist),
            "exhaustive_p50_ms": exhaustive[len(exhaustive) // 2], "exhaustive_p95_ms": exhaustive[int(0.95 * len(exhaustive))]}


def compare_indexes(vectors: np.ndarray, queries: np.ndarray, hnsw: bool) -> list[dict]:
    """Flat, IVF (as the knowledge base builds it) and HNSW over the same vectors, one thread to search."""
    import faiss

    from zhiku import vector_index

    ids = np.arange(len(vectors), dtype=np.int64)
    rows = []

    def record(name: str, index, build_s: float, search) -> None:
        latencies = []
        found = []
        for q in queries:
            began = time.perf_counter()
            found.append(search(q[None, :])[1][0])
            latencies.append((time.perf_counter() - began) * 1000)
        latencies.sort()
        rows.append({"index": name, "build_s": build_s, "index_mib": faiss.serialize_index(index).nbytes / 2**20,
                     "p50_ms": latencies[len(latencies) // 2], "p95_ms": latencies[int(0.95 * len(latencies))],
                     "found": found})

    faiss.omp_set_num_threads(1)
    began = time.perf_counter()
    flat = vector_index.empty(vectors.shape[1])
    flat.add_with_ids(vectors, ids)
    record("flat", flat, time.perf_counter() - began, lambda q: flat.search(q, K))
    began = time.perf_counter()
    ivf = vector_index.build(vectors.shape[1], len(vectors), lambda: [(ids, vectors)],
                             lambda n: (ids[:: max(1, len(ids) // n)][:n], vectors[:: max(1, len(ids) // n)][:n]), 1)
    record(vector_index.kind(ivf), ivf, time.perf_counter() - began, lambda q: vector_index.search(ivf, q, K))
    faiss.omp_set_num_threads(1)
    if hnsw:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        began = time.perf_counter()
        graph = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        graph.add(vectors)
        build_s = time.perf_counter() - began
        faiss.omp_set_num_threads(1)
        truth = [set(f) for f in rows[0]["found"]]
        for ef in (16, 32, 64, 128, 256, 512):
            params = faiss.SearchParametersHNSW(efSearch=ef)
            record(f"hnsw32,efSearch={ef}", graph, build_s, lambda q, p=params: graph.search(q, K, params=p))
            if np.mean([len(set(f) & t) / K for f, t in zip(rows[-1]["found"], truth)]) >= RECALL_TARGET:
                break
    truth = [set(f) for f in rows[0]["found"]]
    for row in rows:
        row["recall_at_10"] = float(np.mean([len(set(f) & t) / K for f, t in zip(row.pop("found"), truth)]))
    return rows


# ---------------------------------------------------------------------------- report
def query_cache(workdir: Path, embedder_name: str, real: dict[str, np.ndarray], n_queries: int) -> Path:
    """Query texts and vectors (SciFact claims, then bench.query's questions), saved for the measuring processes."""
    from zhiku.models import load_embedder

    path = workdir / f"queries-{n_queries}.npz"
    if not path.exists():
        claims = scifact_claims(n_queries // 2)
        synthetic = questions(n_queries - len(claims))
        vectors = np.concatenate([real["queries"][:len(claims)], load_embedder(embedder_name).embed(synthetic)])
        np.savez(path, texts=json.dumps(claims + synthetic), vectors=vectors)
    return path


def markdown(results: dict) -> str:
    s = results["settings"]
    lines = [
        "# Scale: cost curve to a million chunks", "",
        f"`{s['command']}` — {s['machine']}; load average at start {s['load_average']}. FAISS searches on "
        f"one thread. Knowledge bases: the first {s['real']} chunks are real SciFact abstracts with MiniLM "
        "vectors, the rest synthetic text (bench.query) with vectors mixed from the real ones "
        f"(bench/scale_corpus.py); 1 document in 10 restricted. ann_threshold = {s['threshold']:,} chunks. "
        f"{s['queries']} queries (half SciFact claims, half synthetic questions), embedded beforehand, k = {K}.", "",
        "| chunks | vector index | disk MiB | open s (every index) | RSS MiB (process) | indexes MiB | vector index MiB | BM25 MiB | graph MiB "
        "| vector p50/p95 ms | keyword p50/p95 | graph p50/p95 | hybrid p50/p95 | hybrid restricted p50/p95 "
        "| recall@10 all / restricted | index build s |",
        "|" + "---|" * 16,
    ]
    def mib(value: float | None) -> str:
        return "not measured" if value is None else f"{value:,.0f}"

    for r in results["sizes"]:
        lat = r["latency"]

        def pp(name: str) -> str:
            return f"{lat[name]['p50']:.1f} / {lat[name]['p95']:.1f}" if name in lat else "not measured"

        rec = r["recall"]
        recalled = "exact" if rec["exact"] else f"{rec['all_seeing']:.3f} / {rec['restricted']:.3f}"
        lines.append(
            f"| {r['chunks']:,} | {r['index']} | {r['disk_mib']:,.0f} | {r['open_s']:.1f} | {r['rss_mib']:,.0f} "
            f"| {r['rss_indexes_mib']:,.0f} "
            f"| {r['vector_index_mib']:,.0f} | {r['keyword_mib']:,.0f} | {mib(r.get('graph_mib'))} "
            f"| {pp('vector (all-seeing)')} | {pp('keyword (all-seeing)')} | {pp('graph (all-seeing)')} "
            f"| {pp('hybrid (all-seeing)')} | {pp('hybrid (restricted)')} "
            f"| {recalled} "
            f"| {r['build']['vector_index_build_s']:.1f} |")
    if results.get("compare"):
        lines += ["", "## Choosing the approximate index", "",
                  "Same vectors, one query at a time on one thread; recall@10 against flat on the benchmark's queries; "
                  "index MiB = serialised size; build on every core.", "",
                  "| chunks | index | build s | index MiB | p50 ms | p95 ms | recall@10 |", "|---|---|---|---|---|---|---|"]
        for n, rows in results["compare"].items():
            lines += [f"| {int(n):,} | {r['index']} | {r['build_s']:.1f} | {r['index_mib']:,.0f} | {r['p50_ms']:.2f} "
                      f"| {r['p95_ms']:.2f} | {r['recall_at_10']:.3f} |" for r in rows]
    lines += ["", "## Targets", "", *results["targets"], ""]
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    out = []
    for r in results["sizes"]:
        approx = not r["recall"]["exact"]
        lat = r["latency"]
        hybrid = (f"hybrid p95 {lat['hybrid (all-seeing)']['p95']:.1f} ms (restricted {lat['hybrid (restricted)']['p95']:.1f})"
                  if "hybrid (all-seeing)" in lat else "hybrid not measured (" + ", ".join(
                      f"{m} p95 {lat[f'{m} (all-seeing)']['p95']:.1f} ms" for m in MODES if f"{m} (all-seeing)" in lat) + ")")
        out.append(f"- {r['chunks']:,} chunks: {hybrid}; process RSS {r['rss_mib'] / 1024:.2f} GB once every index "
                   f"is loaded, of which the knowledge base's indexes {r['rss_indexes_mib'] / 1024:.2f} GB (the rest: "
                   "Python and libraries)"
                   + (f"; {r['rss_after_search_mib'] / 1024:.2f} GB after the searches, peak "
                      f"{r['peak_rss_mib'] / 1024:.2f} GB" if "peak_rss_mib" in r else "")
                   + (f"; recall@10 {r['recall']['all_seeing']:.3f} (target >= {RECALL_TARGET}), restricted user "
                      f"{r['recall']['restricted']:.3f}; an exhaustive (flat-equivalent) search p50/p95 "
                      f"{r['recall']['exhaustive_p50_ms']:.1f} / {r['recall']['exhaustive_p95_ms']:.1f} ms"
                      if approx else "; exact index"))
    if not any(r["chunks"] >= 1_000_000 for r in results["sizes"]):
        out.append("- 1,000,000 chunks: not measured in this run (targets hybrid p95 < 100 ms, RAM < 4 GB).")
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["chunks"] for r in results["sizes"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in MODES:
        points = [(r["chunks"], r["latency"][f"{mode} (all-seeing)"]["p95"]) for r in results["sizes"]
                  if f"{mode} (all-seeing)" in r["latency"]]
        left.plot(*zip(*points), marker="o", label=f"{mode} p95")
    left.axhline(100, color="grey", linestyle="--", label="target hybrid p95 (1M)")
    left.set(xscale="log", yscale="log", xlabel="chunks", ylabel="ms", title="search latency (p95, queries embedded beforehand; 1M: IVF, see recall)")
    left.legend(fontsize=8)
    for key, label in (("peak_rss_mib", "peak RSS (searching)"), ("rss_mib", "process RSS"), ("rss_indexes_mib", "every index"), ("vector_index_mib", "vector index"), ("keyword_mib", "BM25"),
                       ("graph_mib", "graph"), ("disk_mib", "disk")):
        points = [(r["chunks"], max(r[key], 1)) for r in results["sizes"] if key in r]
        right.plot(*zip(*points), marker="o", label=label)
    right.plot(sizes, [4096 * n / 1_000_000 for n in sizes], color="grey", linestyle="--", label="target 4 GB per 1M")
    right.set(xscale="log", yscale="log", xlabel="chunks", ylabel="MiB", title="memory and disk")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(sizes: list[int], workdir: Path, out: Path, n_queries: int, n_real: int, threshold: int,
        compare: bool, hnsw_up_to: int, command: str, modes: tuple[str, ...] = MODES, also: Path | None = None) -> dict:
    from zhiku.models import load_embedder

    workdir.mkdir(parents=True, exist_ok=True)
    real = real_vectors(workdir, load_embedder("minilm"), n_real, n_queries)
    cache = query_cache(workdir, "minilm", real, n_queries)
    earlier = json.loads(also.read_text()) if also else {"sizes": [], "compare": {}}
    results: dict = {"settings": {"command": command, "machine": f"{os.cpu_count()} cores", "real": n_real,
                                  "threshold": threshold, "queries": n_queries,
                                  "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())},
                     "sizes": earlier["sizes"], "compare": earlier["compare"]}
    for n in sizes:
        root = workdir / f"kb-{n}-t{threshold}"
        build = build_kb(root, n, real, threshold, modes)
        print(f"== {n:,} chunks: built ({build})", flush=True)
        done = subprocess.run([sys.executable, __file__, "--measure", str(root), "--cache", str(cache),
                               "--queries", str(n_queries), "--threshold", str(threshold), "--modes", *modes],
                              check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["build"] = build
        row["load_average_after"] = os.getloadavg()[0]
        results["sizes"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "latency"}), flush=True)
        if compare:
            with np.load(cache) as saved:
                queries = saved["vectors"]
            results["compare"][str(n)] = compare_indexes(all_vectors(root)[1], queries, hnsw=n <= hnsw_up_to)
            print(json.dumps(results["compare"][str(n)]), flush=True)
    results["targets"] = targets(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    plot(results, out.with_suffix(".png"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="knowledge base sizes in chunks")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", type=int, default=4096, help="real SciFact chunks (embedded once, cached)")
    parser.add_argument("--threshold", type=int, default=Settings.ann_threshold, help="ann_threshold for the knowledge bases")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="retrieval modes to build and time (hybrid needs the graph: much memory at 1M chunks)")
    parser.add_argument("--compare", action="store_true", help="also compare flat, IVF and HNSW at each size")
    parser.add_argument("--hnsw-up-to", type=int, default=100_000, help="largest size HNSW is built for (slow to build)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "zhiku-bench-scale")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale")
    parser.add_argument("--also", type=Path, help="an earlier scale.json whose sizes join this run's in the report")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.cache, args.queries, args.threshold, tuple(args.modes))))
        return
    results = run(args.sizes, args.workdir, args.out, args.queries, args.real, args.threshold, args.compare,
                  args.hnsw_up_to, "python bench/scale.py " + " ".join(sys.argv[1:]), tuple(args.modes), args.also)
    print(markdown(results))


if __name__ == "__main__":
    main()
