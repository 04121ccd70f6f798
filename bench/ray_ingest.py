"""Distributed ingest benchmark: docs/s of local ingest beside Ray ingest with 1 and 2 workers.

Each configuration runs in its own fresh process on the same corpus (the sample corpus by default,
generated with ``examples/make_corpus.py`` when absent), default settings (MiniLM, the default
triple extractor), into a new knowledge base, timed end to end as a user waits for it: from the
call to the report, so model loading counts in both, and for Ray also connecting and starting the
actors (its "start-up s", from ``ingest.distributed``'s log). The Ray cluster is local: one node
with 2 CPUs for 1 worker, two nodes with 1 CPU each for 2 workers (``ray.cluster_utils``), so every
configuration has this machine's two cores.

    python bench/ray_ingest.py                      # -> bench/results/ray.md and ray.json
    python bench/ray_ingest.py --corpus DIR --repeat 2
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/

CONFIGS = {"local": None, "ray-1-worker": [2], "ray-2-workers": [1, 1]}  # CPUs of each Ray node
MiB = 2**20


def run_one(config: str, corpus: Path, kb: Path) -> dict:
    """One ingest of ``corpus`` into a new ``kb``; its figures."""
    import zhiku  # noqa: F401 - offline environment first
    from kg.extract import load_extractor
    from zhiku.kb import KnowledgeBase
    from zhiku.models import load_embedder
    from zhiku.settings import Settings

    settings = Settings(kb=kb, embedding_model="minilm")
    nodes = CONFIGS[config]
    cluster = None
    if nodes:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": nodes[0], "object_store_memory": 200 * MiB, "include_dashboard": False})
        for cpus in nodes[1:]:
            cluster.add_node(num_cpus=cpus, object_store_memory=200 * MiB)
    startup: list[float] = []

    class StartupLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg.endswith("ready in %.1f s"):
                startup.append(float(record.args[1]))

    logging.getLogger("ingest.distributed").addHandler(StartupLog())
    logging.getLogger("ingest.distributed").setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
        with KnowledgeBase.open(kb, embedder.name, embedder.dimension) as base, base.writer():
            if cluster is None:
                from ingest.pipeline import ingest

                report = ingest(base, embedder, [corpus], settings, extractor=load_extractor(settings))
            else:
                from ingest.distributed import ingest_on_ray

                report = ingest_on_ray(base, [corpus], settings, address=cluster.address, make_extractor=load_extractor)
        seconds = time.perf_counter() - start
    finally:
        if cluster is not None:
            cluster.shutdown()
    return {"config": config, "seconds": seconds, "documents": report.added, "chunks": report.chunks,
            "failed": len(report.failed), "startup_s": startup[0] if startup else None}


def measure(config: str, corpus: Path, workdir: Path, attempt: int) -> dict:
    kb = workdir / f"kb-{config}-{attempt}"
    done = subprocess.run([sys.executable, __file__, "--one", config, "--corpus", str(corpus), "--kb", str(kb)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| configuration | run | docs | chunks | failed | seconds | start-up s | docs/s | docs/s after start-up | load average before |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        startup = r["startup_s"]
        after = r["documents"] / (r["seconds"] - startup) if startup is not None else None
        lines.append(
            f"| {r['config']} | {r['attempt']} | {r['documents']} | {r['chunks']} | {r['failed']} | {r['seconds']:.1f} | "
            f"{'-' if startup is None else f'{startup:.1f}'} | {r['documents'] / r['seconds']:.2f} | "
            f"{'-' if after is None else f'{after:.2f}'} | {r['load']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "examples" / "corpus")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration, interleaved")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ray")
    parser.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.corpus.resolve(), args.kb)))
        return 0
    if not args.corpus.exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(args.corpus)], check=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-ray-") as workdir:
        for attempt in range(1, args.repeat + 1):
            for config in CONFIGS:
                load = os.getloadavg()[0]
                figures = measure(config, args.corpus, Path(workdir), attempt)
                figures.update(attempt=attempt, load=load)
                rows.append(figures)
                print(json.dumps(figures), file=sys.stderr)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "python": platform.python_version(), "corpus": str(args.corpus), "repeat": args.repeat}
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
