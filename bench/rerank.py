"""Latency of ``hybrid+rerank`` (the hybrid top 20 reordered by a trained cross-encoder) against ``hybrid``.

End to end per question, as ``zhiku search`` runs it: query embedding, hybrid retrieval of the top
20, then the reranker scoring the 20 (question, passage) pairs and keeping 10. The reranker is a
folder written by ``zhiku tune reranker`` (MiniLM-L6 cross-encoder in ONNX Runtime); each of its
engines (``onnx`` float, ``onnx-int8``) is timed. The questions are the first words of sampled
chunks of the knowledge base (latency depends on passage lengths, not on the questions' quality).

    python -m bench.rerank --kb KB --reranker KB/models/reranker-1 [--queries 100] [--threads 2]

Target (issue 12): ``hybrid+rerank`` of the top 20 under 150 ms p95 on 2 cores. Writes
``bench/results/rerank.json`` and ``rerank.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhiku  # noqa: E402,F401 - offline environment before model libraries load
from retrieval import build_retriever  # noqa: E402
from retrieval.rerank import ONNX_MANIFEST, CrossEncoderReranker, RerankedRetriever  # noqa: E402
from tune.fusion import LOCAL_ADMIN  # noqa: E402
from tune.reranker import choose_engine  # noqa: E402
from zhiku.kb import KnowledgeBase  # noqa: E402
from zhiku.models import load_embedder  # noqa: E402
from zhiku.settings import Settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def questions(kb: KnowledgeBase, n: int, seed: int = 3) -> list[str]:
    chunks = list(kb.iter_chunks())
    rng = random.Random(seed)
    return [" ".join(c.text.split()[:9]) for c in rng.sample(chunks, min(n, len(chunks)))]


def timed(run, queries: list[str]) -> dict[str, float]:
    run(queries[0])  # warm
    times = []
    for q in queries:
        t = time.perf_counter()
        run(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 1), "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
            "mean_ms": round(statistics.fmean(times), 1), "queries": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--reranker", type=Path, required=True, help="a folder written by zhiku tune reranker")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="CPU cores the process may use (default: 2)")
    parser.add_argument("--note", default="", help="conditions to record (e.g. 'machine shared with 6 other jobs')")
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.threads]))
    manifest = json.loads((args.reranker / ONNX_MANIFEST).read_text())
    settings = Settings.load({"kb": args.kb}, env={})
    settings = settings.replace(embedding_model=KnowledgeBase.resolve_model(args.kb, settings.embedding_model))
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    rows: dict[str, dict[str, float]] = {}
    with KnowledgeBase.open(args.kb, embedder.name) as kb, tempfile.TemporaryDirectory() as scratch:
        queries = questions(kb, args.queries)
        hybrid = build_retriever(kb, embedder, settings, "hybrid")
        rows["hybrid (top 10)"] = timed(lambda q: hybrid.retrieve(q, 10, LOCAL_ADMIN), queries)
        copy = Path(shutil.copytree(args.reranker, Path(scratch) / args.reranker.name))  # the folder stays as it is
        for engine in ("onnx", "onnx-int8"):
            choose_engine(copy, engine, int(manifest.get("max_length", 256)))
            t = time.perf_counter()
            reranker = CrossEncoderReranker(copy)
            load_s = time.perf_counter() - t
            reranked = RerankedRetriever(hybrid, reranker, pool=20)
            rows[f"hybrid+rerank top 20, {engine}"] = {
                **timed(lambda q: reranked.retrieve(q, 10, LOCAL_ADMIN), queries), "load_s": round(load_s, 2)}
        chunks = kb.stats()["chunks"]
    result = {"kb_chunks": chunks, "reranker": str(args.reranker), "max_length": manifest.get("max_length"),
              "cores": args.threads, "load_average": os.getloadavg(), "note": args.note, "rows": rows,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rerank.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [f"# hybrid+rerank latency ({result['date']})", "",
             f"{chunks} chunks, {len(queries)} questions, end to end (query embedding, hybrid, reranking 20 "
             f"passages of up to {manifest.get('max_length')} tokens), pinned to {args.threads} cores; "
             f"load average {result['load_average'][0]:.1f}. {args.note}", "",
             "| | p50 ms | p95 ms | mean ms | reranker load s |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['mean_ms']} | {r.get('load_s', '')} |"
              for name, r in rows.items()]
    (RESULTS / "rerank.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
