"""Ingest benchmark: Zhiku beside a plain llama-index pipeline and raw sentence-transformers.

Each measurement runs in its own fresh process (so peak RSS is its own), on the same corpus and
the same model (all-MiniLM-L6-v2, batch 32):
- zhiku: `ingest.pipeline.ingest` end to end (parse, chunk, embed, extract triples, store);
- zhiku-unchanged: the same command again on the unchanged corpus;
- llama-index: SimpleDirectoryReader + SentenceSplitter + HuggingFaceEmbedding + FaissVectorStore;
- st-raw: SentenceTransformer.encode over Zhiku's own chunk texts (the embedding ceiling).

    python bench/ingest.py                 # sample corpus and 2,000 synthetic documents
    python bench/ingest.py --docs 200      # a quicker synthetic size
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/ (whose ingest.py is this file)

BATCH = 32


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_zhiku(corpus: Path, kb: Path, extract: bool, model: str = "minilm") -> dict:
    from ingest.pipeline import ingest
    from zhiku.kb import KnowledgeBase
    from zhiku.models import load_embedder
    from zhiku.settings import Settings

    settings = Settings(kb=kb, embedding_model=model, embed_batch_size=BATCH, extractor="default" if extract else "none")
    embedder = load_embedder(model, BATCH)
    extractor = None
    if extract:
        from kg.extract import load_extractor

        extractor = load_extractor(settings)
    embedder.count_tokens(["warm up"])  # load the model before the clock, as llama-index's is
    start = time.perf_counter()
    with KnowledgeBase.open(kb, embedder.name, None if KnowledgeBase.exists(kb) else embedder.dimension) as base:
        report = ingest(base, embedder, [corpus], settings, extractor=extractor)
    seconds = time.perf_counter() - start
    processed = report.added + report.updated + report.unchanged
    return {"seconds": seconds, "documents": processed, "chunks": report.chunks, "failed": len(report.failed)}


def run_llama_index(corpus: Path) -> dict:
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    from zhiku.models import minilm_path

    embed_model = HuggingFaceEmbedding(model_name=str(minilm_path()), device="cpu", embed_batch_size=BATCH)
    start = time.perf_counter()
    documents = SimpleDirectoryReader(str(corpus), recursive=True).load_data()
    nodes = SentenceSplitter(chunk_size=200, chunk_overlap=32).get_nodes_from_documents(documents)
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "documents": len({d.metadata.get("file_path") for d in documents}), "chunks": len(nodes)}


def run_st_raw(kb: Path) -> dict:
    from sentence_transformers import SentenceTransformer

    from zhiku.kb import KnowledgeBase
    from zhiku.models import minilm_path

    with KnowledgeBase.open(kb, "minilm") as base:
        texts = [c.text for c in base.iter_chunks()]
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    start = time.perf_counter()
    model.encode(texts, batch_size=BATCH, normalize_embeddings=True)
    return {"seconds": time.perf_counter() - start, "documents": 0, "chunks": len(texts)}


def run_zhiku_embed(kb: Path) -> dict:
    """Zhiku's embedder alone over the same chunk texts (to compare with st-raw)."""
    from zhiku.kb import KnowledgeBase
    from zhiku.models import load_embedder

    with KnowledgeBase.open(kb, "minilm") as base:
        texts = [c.text for c in base.iter_chunks()]
    embedder = load_embedder("minilm", BATCH)
    embedder.count_tokens(["warm up"])
    start = time.perf_counter()
    embedder.embed(texts)
    return {"seconds": time.perf_counter() - start, "documents": 0, "chunks": len(texts)}


def measure(kind: str, corpus: Path, kb: Path, extract: bool = True) -> dict:
    """Run one measurement in a fresh interpreter and return its figures."""
    command = [sys.executable, __file__, "--one", kind, "--corpus", str(corpus), "--kb", str(kb)]
    if not extract:
        command.append("--no-extract")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(corpus: Path, label: str, workdir: Path, extract: bool = True) -> list[dict]:
    kb = workdir / f"kb-{label}"
    rows = []
    for kind in ("zhiku", "zhiku-unchanged", "llama-index", "st-raw", "zhiku-embed"):
        figures = measure("zhiku" if kind == "zhiku-unchanged" else kind, corpus, kb, extract)
        figures.update(corpus=label, system=kind)
        figures["docs_per_s"] = figures["documents"] / figures["seconds"] if figures["documents"] else None
        figures["chunks_per_s"] = figures["chunks"] / figures["seconds"]
        rows.append(figures)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| corpus | system | docs | chunks | seconds | docs/s | chunks/s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        docs_s = f"{r['docs_per_s']:.1f}" if r["docs_per_s"] else "-"
        lines.append(f"| {r['corpus']} | {r['system']} | {r['documents']} | {r['chunks']} | {r['seconds']:.2f} | "
                     f"{docs_s} | {r['chunks_per_s']:.1f} | {r['peak_mib']:.0f} |")
    by = {(r["corpus"], r["system"]): r for r in rows}
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        z, li = by[(corpus, "zhiku")], by[(corpus, "llama-index")]
        raw, emb, again = by[(corpus, "st-raw")], by[(corpus, "zhiku-embed")], by[(corpus, "zhiku-unchanged")]
        lines.append(
            f"\n{corpus}: Zhiku ingest {z['chunks_per_s'] / li['chunks_per_s']:.2f}x llama-index chunks/s "
            f"({z['seconds'] / li['seconds']:.2f}x its time); "
            f"embedding {emb['chunks_per_s'] / raw['chunks_per_s']:.0%} of raw sentence-transformers; "
            f"unchanged re-ingest {again['seconds'] / z['seconds']:.1%} of the first ingest"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000, help="synthetic corpus size (default 2000)")
    parser.add_argument("--no-sample", action="store_true", help="skip the bundled sample corpus")
    parser.add_argument("--no-extract", action="store_true", help="ingest without triple extraction")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        runners = {
            "zhiku": lambda: run_zhiku(args.corpus, args.kb, not args.no_extract),
            "llama-index": lambda: run_llama_index(args.corpus),
            "st-raw": lambda: run_st_raw(args.kb),
            "zhiku-embed": lambda: run_zhiku_embed(args.kb),
        }
        figures = runners[args.one]()
        figures["peak_mib"] = _peak_mib()
        print(json.dumps(figures))
        return
    from bench.synth import write_corpus

    with tempfile.TemporaryDirectory(prefix="zhiku-bench-") as tmp:
        work = Path(tmp)
        rows = []
        if not args.no_sample:
            sample = work / "sample"
            subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(sample)], check=True,
                           capture_output=True)
            rows += compare(sample, "sample", work, not args.no_extract)
        synthetic = write_corpus(work / "synthetic", args.docs)
        rows += compare(synthetic, f"synthetic-{args.docs}", work, not args.no_extract)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
