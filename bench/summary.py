"""Document summaries: the extractive baseline beside each installed local model on CTranslate2, one run.

The same documents of the sample corpus are summarised by each backend with the product's own code
(``retrieval.summary.summarize`` with ``refresh=True``, so nothing comes from the cache), each
backend in a fresh process, its model loaded (and converted, cached) before the clock starts:

- **s / doc**: wall-clock seconds per document;
- **title words**: share of the title's content words (stemmed; jieba for Chinese) that the summary
  or its key points mention;
- **key entities**: share of the document's five most mentioned entities (its triples, aliases
  merged) that the summary or its points name;
- **grounded**: share of the summary's sentences (and points) whose words are mostly (token recall
  ≥ 0.6) found in the document: a cheap check for invented content;
- **words**: length of the summary and points.

    python bench/summary.py                           # the sample corpus, every installed model
    python bench/summary.py --kb DIR --docs 6 --models smollm2

Writes ``bench/results/summary.json`` and ``summary.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/

import zhiku  # noqa: E402,F401 - offline environment before model libraries load

GROUNDED = 0.6
ENTITIES = 5


def pick_documents(kb, n: int, seed: int = 0) -> list:
    """``n`` documents in a seeded order, at least one Chinese one when the corpus has any."""
    docs = sorted(kb.documents(), key=lambda d: d.source)
    random.Random(seed).shuffle(docs)
    chinese = [d for d in docs if d.language.startswith("zh") or "/zh/" in d.source]
    chosen = chinese[:1] + [d for d in docs if d not in chinese[:1]]
    return chosen[:n]


def quality(summary, doc, chunks, entities: list[str], tokenize) -> dict:
    from eval.text import contains, sentences, token_recall

    written = " ".join([summary.text, *summary.key_points])
    title = set(tokenize(doc.title or ""))
    said = set(tokenize(written))
    body = "\n".join(c.text for c in chunks)
    pieces = [s for s in sentences(summary.text) + summary.key_points if s.strip()]
    return {
        "title_words": len(title & said) / len(title) if title else None,
        "key_entities": sum(contains(written, e) for e in entities) / len(entities) if entities else None,
        "grounded": sum(token_recall(s, body) >= GROUNDED for s in pieces) / len(pieces) if pieces else 0.0,
        "words": len(written) if summary.language == "zh" else len(written.split()),
    }


def measure(kb_path: str, backend: str, n_docs: int, cache: str) -> dict:
    """Runs in its own process: load the backend, then summarise the chosen documents."""
    from kg.resolve import resolve
    from retrieval.keyword import Tokenizer
    from retrieval.llm import load_llm
    from retrieval.summary import summarize
    from zhiku.kb import KnowledgeBase
    from zhiku.models import load_embedder
    from zhiku.settings import Settings

    model = KnowledgeBase.resolve_model(kb_path, "")
    embedder = load_embedder(model)
    llm = None
    if backend != "extractive":
        llm = load_llm(Settings(llm="local", llm_model=backend, model_cache=cache, llm_max_new_tokens=200,
                                llm_timeout_s=600))
    tokenize = Tokenizer()
    rows = []
    with KnowledgeBase.open(kb_path, model) as kb:
        for doc in pick_documents(kb, n_docs):
            chunks = kb.chunks_of(doc.id)
            ranked = sorted(resolve(kb.triples(doc.id)).entities.values(), key=lambda e: (-e.mentions, e.name))
            entities = [" ".join(e.name.split()) for e in ranked[:ENTITIES]]
            started = time.perf_counter()
            summary = summarize(kb, doc, llm=llm, embedder=embedder, refresh=True)
            seconds = time.perf_counter() - started
            rows.append({"doc": doc.title or doc.source, "chunks": len(chunks), "seconds": round(seconds, 1),
                         "warnings": summary.warnings, "summary": summary.text[:300],
                         **quality(summary, doc, chunks, entities, tokenize)})
    return {"backend": backend, "documents": rows}


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def markdown(results: list[dict], meta: dict) -> str:
    def fmt(v: float | None, digits: int = 2) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    lines = ["# Document summaries: extractive vs local models (CTranslate2 int8)", "",
             f"{meta['machine']}; {meta['cores']} cores; {meta['documents']} documents of the sample corpus "
             f"(the same for every backend); up to 200 new tokens per call. {meta['note']}", "",
             "| backend | s / doc | title words | key entities | grounded | words | failed |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error']} | | | | | |")
            continue
        docs = r["documents"]
        lines.append(
            f"| {r['backend']} | {fmt(mean([d['seconds'] for d in docs]), 1)} | {fmt(mean([d['title_words'] for d in docs]))} "
            f"| {fmt(mean([d['key_entities'] for d in docs]))} | {fmt(mean([d['grounded'] for d in docs]))} "
            f"| {fmt(mean([d['words'] for d in docs]), 0)} | {sum(bool(d['warnings']) for d in docs)} |")
    lines += ["", "Summaries (first 300 characters):", ""]
    for r in results:
        for d in r.get("documents", []):
            lines.append(f"- {r['backend']} / {d['doc']} ({d['seconds']} s): {d['summary']!r}")
    return "\n".join(lines) + "\n"


def ingested_sample(workdir: Path) -> Path:
    """The sample corpus generated and ingested into a knowledge base under ``workdir``."""
    corpus, kb = workdir / "corpus", workdir / "kb"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(corpus)], check=True)
    subprocess.run([sys.executable, "-m", "zhiku.cli", "ingest", str(corpus), "--kb", str(kb), "--json"],
                   check=True, cwd=ROOT, capture_output=True)
    return kb


def main() -> None:
    from retrieval.local_models import PACKAGED_MODELS, installed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, help="a knowledge base of the sample corpus (default: ingest one)")
    parser.add_argument("--docs", type=int, default=6)
    parser.add_argument("--models", nargs="*", help="default: every installed packaged model")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "zhiku" / "models"))
    parser.add_argument("--note", default="", help="a line about the machine's load during the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--one", metavar="BACKEND", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(str(args.kb), args.one, args.docs, args.cache), ensure_ascii=False))
        return
    kb = args.kb or ingested_sample(Path(tempfile.mkdtemp(prefix="zhiku-bench-summary-")))
    models = args.models if args.models is not None else [
        m for m in ("smollm2", "qwen0.5b", "qwen1.5b") if installed(PACKAGED_MODELS[m])]
    results = []
    for backend in ["extractive", *models]:
        command = [sys.executable, __file__, "--one", backend, "--kb", str(kb), "--docs", str(args.docs),
                   "--cache", args.cache]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            results.append({"backend": backend, "error": " ".join(done.stderr.strip().splitlines()[-1:])})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1], ensure_ascii=False)[:400], flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "documents": args.docs, "note": args.note}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, ensure_ascii=False))
    (args.out / "summary.md").write_text(markdown(results, meta), encoding="utf-8")
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
