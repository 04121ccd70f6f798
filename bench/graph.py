"""Knowledge-graph benchmark: extraction throughput of the default extractor, and graph build cost.

- extraction: chunks/s of ``kg.extract.DefaultExtractor`` on the synthetic corpus (``bench.synth``,
  2,000 documents by default, packed into ~150-word text chunks plus one table chunk per document)
  and, with ``--kb``, on the chunks of an existing knowledge base (e.g. the ingested sample corpus);
  shown beside a spaCy-only baseline (``nlp.pipe`` with the same model and no rules), the floor
  under any spaCy-based extractor;
- graph: time and Python peak memory to resolve entities and build the NetworkX graph from 100k
  synthetic triples; the saved file's size and load time beside a pickle of the same graph (the
  format before), the cost of one user's graph (half the documents visible), a 2-hop
  neighbourhood query, and the staleness fingerprint's SQL on a knowledge base of 100k triples.

    python bench/graph.py                       # 2,000 documents, 100k triples
    python bench/graph.py --docs 200 --triples 20000 --kb zhiku-kb
"""
from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="synthetic documents (default 2000)")
    parser.add_argument("--triples", type=int, default=100_000, help="synthetic triples for the graph build")
    parser.add_argument("--kb", type=Path, help="also measure extraction on this knowledge base's chunks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

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
