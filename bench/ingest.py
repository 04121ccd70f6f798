"""Ingest benchmark: Zhiku beside a plain llama-index pipeline and raw sentence-transformers.

Each measurement runs in its own fresh process (so peak RSS is its own), on the same corpus and
the same model (all-MiniLM-L6-v2, batch 32):
- zhiku: `ingest.pipeline.ingest` end to end (parse, chunk, embed, extract triples, store);
- zhiku (no extraction): the same without triple extraction;
- zhiku-unchanged: the same command again on the unchanged corpus;
- llama-index: SimpleDirectoryReader + SentenceSplitter(200, 32) + HuggingFaceEmbedding + FaissVectorStore;
- llama-index (zhiku chunks): the same with SentenceSplitter cutting Zhiku's chunk size and overlap
  (``Settings().chunk_tokens``/``chunk_overlap``) counted in MiniLM tokens, as Zhiku counts them;
- st-raw: SentenceTransformer.encode over Zhiku's own chunk texts (the embedding ceiling).

Chunks/s alone is unfair when the systems cut different chunk sizes, so every row also gives
documents/s, input MB/s (the corpus files' bytes over the seconds) and its chunks' mean size in
MiniLM tokens. Peak RSS is given for the measuring process alone and for its whole process tree
(Zhiku's parser workers are child processes): the tree's figure is the largest sum of the RSS of
the process and all its descendants, sampled every 0.2 s, so pages shared between processes count
once per process (an upper bound) and a spike shorter than the interval can be missed.

    python bench/ingest.py                 # the fair table: sample corpus and 2,000 synthetic documents
    python bench/ingest.py --docs 200      # a quicker synthetic size
    python bench/ingest.py --corpus DIR    # also a folder of your own
    python bench/ingest.py --dataset ../shared/data/scifact --no-sample --docs 0   # SciFact's 5,183 abstracts
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/ (whose ingest.py is this file)

BATCH = 32


#: How often the process tree's memory is sampled (seconds).
TREE_SAMPLE_S = 0.2


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreePeak:
    """The largest sum of RSS over this process and its descendants, sampled in a background thread."""

    def __init__(self, interval: float = TREE_SAMPLE_S) -> None:
        import psutil

        self._me, self._interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for process in [self._me, *self._me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:  # a worker that ended between listing and reading
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.peak / 2**20


def input_bytes(corpus: Path) -> int:
    """The corpus files' bytes: the input every system under comparison is given."""
    return sum(path.stat().st_size for path in corpus.rglob("*") if path.is_file())


def minilm_tokenizer():
    """MiniLM's own tokenizer (special tokens included, as Zhiku's ``count_tokens`` counts them)."""
    from tokenizers import Tokenizer

    from zhiku.models import minilm_path

    tokenizer = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def mean_tokens(texts: list[str]) -> float:
    """Mean chunk size in MiniLM tokens (the same count for every system)."""
    if not texts:
        return 0.0
    return sum(len(e.ids) for e in minilm_tokenizer().encode_batch(texts)) / len(texts)


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
    with KnowledgeBase.open(kb, embedder.name) as base:
        tokens = mean_tokens([c.text for c in base.iter_chunks()])
    return {"seconds": seconds, "documents": processed, "chunks": report.chunks, "failed": len(report.failed),
            "mean_chunk_tokens": tokens, "stage_seconds": report.seconds}


def run_llama_index(corpus: Path, zhiku_chunks: bool = False) -> dict:
    """The plain pipeline at its 200/32 split (tiktoken tokens), or at Zhiku's size in MiniLM tokens."""
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    from zhiku.models import minilm_path
    from zhiku.settings import Settings

    embed_model = HuggingFaceEmbedding(model_name=str(minilm_path()), device="cpu", embed_batch_size=BATCH)
    if zhiku_chunks:
        tokenizer, settings = minilm_tokenizer(), Settings()
        splitter = SentenceSplitter(chunk_size=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap,
                                    tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False).ids)
    else:
        splitter = SentenceSplitter(chunk_size=200, chunk_overlap=32)
    start = time.perf_counter()
    documents = SimpleDirectoryReader(str(corpus), recursive=True).load_data()
    nodes = splitter.get_nodes_from_documents(documents)
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "documents": len({d.metadata.get("file_path") for d in documents}),
            "chunks": len(nodes), "mean_chunk_tokens": mean_tokens([n.get_content() for n in nodes])}


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


def rates(figures: dict, corpus: Path) -> dict:
    """Documents/s, input MB/s and chunks/s of one ingest run (documents/s only where it read documents)."""
    size = input_bytes(corpus)
    seconds = figures["seconds"]
    return {**figures, "input_bytes": size, "mb_per_s": size / 1e6 / seconds if figures["documents"] else None,
            "docs_per_s": figures["documents"] / seconds if figures["documents"] else None,
            "chunks_per_s": figures["chunks"] / seconds}


#: The systems of the comparison: name -> (runner, with extraction, knowledge base of its own).
#: zhiku-unchanged reuses zhiku's knowledge base; st-raw and zhiku-embed read its chunks.
PEERS = {
    "zhiku": ("zhiku", True, ""),
    "zhiku-unchanged": ("zhiku", True, ""),
    "llama-index": ("llama-index", True, ""),
    "llama-index (zhiku chunks)": ("llama-index-zhiku-chunks", True, ""),
    "st-raw": ("st-raw", True, ""),
    "zhiku-embed": ("zhiku-embed", True, ""),
}
#: The fair table's systems (this script's own run): ingest end to end only.
FAIR = {
    "zhiku": ("zhiku", True, ""),
    "zhiku (no extraction)": ("zhiku", False, "-no-extraction"),
    "llama-index": ("llama-index", True, ""),
    "llama-index (zhiku chunks)": ("llama-index-zhiku-chunks", True, ""),
}


def compare(corpus: Path, label: str, workdir: Path, extract: bool = True,
            systems: dict[str, tuple[str, bool, str]] = PEERS) -> list[dict]:
    rows = []
    for system, (kind, with_extraction, kb_suffix) in systems.items():
        figures = measure(kind, corpus, workdir / f"kb-{label}{kb_suffix}", extract and with_extraction)
        rows.append({**rates(figures, corpus), "corpus": label, "system": system})
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """Zhiku over llama-index per corpus, for docs/s and MB/s: each Zhiku run against each llama-index run."""
    by = {(r["corpus"], r["system"]): r for r in rows}
    found = []
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        for ours in ("zhiku", "zhiku (no extraction)"):
            for peer in ("llama-index", "llama-index (zhiku chunks)"):
                z, li = by.get((corpus, ours)), by.get((corpus, peer))
                if z and li:
                    found.append({"corpus": corpus, "zhiku": ours, "peer": peer,
                                  "docs_per_s": z["docs_per_s"] / li["docs_per_s"],
                                  "mb_per_s": z["mb_per_s"] / li["mb_per_s"],
                                  "chunks_per_s": z["chunks_per_s"] / li["chunks_per_s"]})
    return found


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


LEGEND = ("zhiku = end to end (parse, chunk, embed, extract triples, store); (no extraction) = the same without "
          "triple extraction, which llama-index does not do; llama-index = SimpleDirectoryReader + SentenceSplitter(200, 32; "
          "tiktoken tokens) + HuggingFaceEmbedding + FaissVectorStore; llama-index (zhiku chunks) = the same split at "
          "Zhiku's chunk_tokens/chunk_overlap counted in MiniLM tokens. Same model (all-MiniLM-L6-v2), batch 32, each "
          "run in a fresh process, one after the other. docs = each system's own count (llama-index also reads the "
          "sample's zhiku-acl.toml); MB = the corpus files' bytes; mean chunk tokens = MiniLM tokens, special tokens "
          "included, one tokenizer for every system. Peak RSS (process) = ru_maxrss of the measuring process; "
          "(tree) = the largest sum of RSS over the process and all its descendants (Zhiku's forkserver and parser "
          "workers), sampled every 0.2 s: pages shared between processes count once per process, so it is an upper "
          "bound, and a spike shorter than 0.2 s can be missed.")


def table(rows: list[dict]) -> str:
    """The fair ingest table and its zhiku/llama-index ratios, as Markdown."""
    lines = ["| corpus | system | docs | MB | chunks | mean chunk tokens | seconds | docs/s | MB/s | chunks/s | "
             "peak RSS MiB (process) | peak RSS MiB (tree) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['system']} | {r['documents'] or '-'} | {r['input_bytes'] / 1e6:.2f} | "
                     f"{r['chunks']} | {_f(r.get('mean_chunk_tokens'))} | {r['seconds']:.2f} | {_f(r['docs_per_s'])} | "
                     f"{_f(r['mb_per_s'], 3)} | {_f(r['chunks_per_s'])} | {_f(r['peak_mib'], 0)} | "
                     f"{_f(r.get('tree_peak_mib'), 0)} |")
    lines += ["", "| corpus | zhiku run | against | docs/s ratio | MB/s ratio | chunks/s ratio |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {q['corpus']} | {q['zhiku']} | {q['peer']} | {q['docs_per_s']:.2f}x | {q['mb_per_s']:.2f}x | "
              f"{q['chunks_per_s']:.2f}x |" for q in ratios(rows)]
    staged = [r for r in rows if r.get("stage_seconds")]
    stages = list(dict.fromkeys(stage for r in staged for stage in r["stage_seconds"]))
    if staged:
        lines += ["", "Where Zhiku's time goes: seconds per stage summed over files (share of their sum); parse, "
                  "mask, chunk and extract run in the parser workers, embed and store in the ingesting process, "
                  "side by side, so the sum exceeds the wall time.", "",
                  "| corpus | system | wall s | " + " | ".join(stages) + " |", "|---|---|---:|" + "---:|" * len(stages)]
        for r in staged:
            total = sum(r["stage_seconds"].values())
            cells = [f"{r['stage_seconds'][s]:.1f} ({r['stage_seconds'][s] / total:.0%})" if s in r["stage_seconds"]
                     else "-" for s in stages]
            lines.append(f"| {r['corpus']} | {r['system']} | {r['seconds']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000, help="synthetic corpus size (default 2000; 0: none)")
    parser.add_argument("--no-sample", action="store_true", help="skip the bundled sample corpus")
    parser.add_argument("--no-extract", action="store_true", help="ingest without triple extraction")
    parser.add_argument("--corpus", type=Path, help="also a folder of your own, labelled by its name")
    parser.add_argument("--dataset", type=Path, help="also an evaluation dataset's corpus (e.g. ../shared/data/scifact), "
                                                     "written one file per document as `zhiku eval` ingests it")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--md", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        runners = {
            "zhiku": lambda: run_zhiku(args.corpus, args.kb, not args.no_extract),
            "llama-index": lambda: run_llama_index(args.corpus),
            "llama-index-zhiku-chunks": lambda: run_llama_index(args.corpus, zhiku_chunks=True),
            "st-raw": lambda: run_st_raw(args.kb),
            "zhiku-embed": lambda: run_zhiku_embed(args.kb),
        }
        with TreePeak() as tree:
            figures = runners[args.one]()
        figures.update(peak_mib=_peak_mib(), tree_peak_mib=tree.mib)
        print(json.dumps(figures))
        return
    from bench.synth import write_corpus

    started, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-") as tmp:
        work = Path(tmp)
        corpora = []
        if not args.no_sample:
            sample = work / "sample"
            subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(sample)], check=True,
                           capture_output=True)
            corpora.append((sample, "sample"))
        if args.docs:
            corpora.append((write_corpus(work / "synthetic", args.docs), f"synthetic-{args.docs}"))
        if args.corpus:
            corpora.append((args.corpus, args.corpus.name))
        if args.dataset:
            from eval.datasets import load_dataset, write_corpus as write_dataset

            write_dataset(load_dataset(args.dataset), work / args.dataset.name)
            corpora.append((work / args.dataset.name, args.dataset.name))
        rows = []
        for corpus, label in corpora:
            print(f"ingest: {label}", file=sys.stderr, flush=True)
            rows += compare(corpus, label, work, not args.no_extract, FAIR)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "minutes": (time.time() - started) / 60,
            "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
            "tree_sample_s": TREE_SAMPLE_S}
    report = table(rows)
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows, "ratios": ratios(rows)}, indent=2))
    if args.md:
        load = lambda values: " / ".join(f"{v:.2f}" for v in values)  # noqa: E731
        args.md.write_text(f"# Fair ingest comparison\n\n{meta['started']} · {meta['cpus']} CPUs · load average (1/5/15 min) "
                           f"{load(meta['load_before'])} before, {load(meta['load_after'])} after · "
                           f"{meta['minutes']:.1f} min\n\n{report}\n\n{LEGEND}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
