"""Vector retrieval on a BEIR set before and after ``zhiku tune pairs`` + ``zhiku tune embedder``.

The dataset's knowledge base (the eval harness's cached one) is copied; the copy is tuned by the
product's own commands, run as subprocesses under ``/usr/bin/time -v`` (wall time, peak RSS), on
its chunks alone: the queries and labels are read only to score both models afterwards. Scores
are document-level nDCG@10 with 95% bootstrap intervals, and the paired per-query difference.

    PYTHONPATH=$PWD python eval/reports/tune-embedder/study.py --dataset ../shared/data/scifact \\
        --limit 200 --max-docs 1000 --out eval/reports/tune-embedder/scifact -- --steps 100
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from eval.datasets import corpus_files, corpus_folder, load_dataset, prepare_kb
from eval.gold import resolve
from eval.harness import evaluate
from eval.metrics import bootstrap
from eval.runner import DEFAULT_CACHE, product_retrievers
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.settings import Settings


def measure(dataset, kb_dir: Path, files, settings: Settings) -> tuple[dict, list[float]]:
    with KnowledgeBase.open(kb_dir, KnowledgeBase.resolve_model(kb_dir, "")) as kb:
        embedder = load_embedder(kb.manifest.embedding_model)
        judgements = resolve(dataset, kb, files)
        result = evaluate(judgements, product_retrievers(kb, embedder, settings, ["vector"]), [10], progress=False)
    mode = result.modes[0]
    per_query = [q.doc.get("ndcg@10", 0.0) for q in mode.queries]
    est = mode.doc["ndcg@10"]
    return {"model": embedder.name, "ndcg@10": round(est.mean, 4), "ci95": [round(est.low, 4), round(est.high, 4)],
            "queries": est.n}, per_query


def timed(command: list[str], log: Path) -> dict:
    """Run a zhiku command under /usr/bin/time -v; its wall time and peak RSS."""
    with open(log, "w") as out:
        code = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "zhiku.cli", *command], stdout=out,
                              stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"}).returncode
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    h, m, s = (float(g or 0) for g in wall.groups()) if wall else (0, 0, 0)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {"exit": code, "wall_s": round(h * 3600 + m * 60 + s, 1),
            "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-docs", type=int)
    parser.add_argument("--n", type=int, default=1000, help="pairs to generate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/zhiku-tune-study"))
    parser.add_argument("embedder_args", nargs="*", help="passed to zhiku tune embedder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = Settings(embedding_model="minilm", extractor="none")
    dataset = load_dataset(args.dataset).limited(args.limit, args.max_docs)
    cache = DEFAULT_CACHE.expanduser()
    base_kb = prepare_kb(dataset, cache, settings, progress=False)
    files = corpus_files(dataset, corpus_folder(dataset, cache, settings))
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(base_kb, args.work)
    before, before_q = measure(dataset, args.work, files, settings)
    print("before", before, flush=True)
    runs = {
        "pairs": timed(["tune", "pairs", "--kb", str(args.work), "--n", str(args.n), "--json"], args.out / "pairs.log"),
        "embedder": timed(["tune", "embedder", "--kb", str(args.work), "--json", *args.embedder_args],
                          args.out / "embedder.log"),
    }
    print("runs", runs, flush=True)
    after, after_q = measure(dataset, args.work, files, settings)
    diff = bootstrap(np.asarray(after_q) - np.asarray(before_q))
    payload = {
        "dataset": str(args.dataset), "limit": args.limit, "max_docs": args.max_docs, "pairs": args.n,
        "embedder_args": args.embedder_args, "vector_before": before, "vector_after": after,
        "paired_difference": {"mean": round(diff.mean, 4), "ci95": [round(diff.low, 4), round(diff.high, 4)]},
        "runs": runs,
    }
    (args.out / "metrics.json").write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
