"""SciFact (dev split): hybrid vs hybrid+rerank with a reranker tuned on the corpus only.

The reranker folder is the one ``zhiku eval --tune`` trained on the cached 1,000-document corpus
knowledge base (``--limit 200 --max-docs 1000 --tune-n 400 --tune-stages pairs,reranker,evaluate
--tune-max-steps 40``). That run could not finish measuring on the loaded machine, so this script
measures the saved folder on the first N of those 200 queries against the same cached knowledge base
(the corpus is the same: the cache slot depends on the records, not the queries).

    python eval/reports/tune-reranker/measure.py RERANKER_FOLDER --n 60 --engine onnx-int8 --out DIR
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import zhiku  # noqa: E402,F401 - offline environment first
from eval.datasets import corpus_files, corpus_folder, load_dataset, prepare_kb  # noqa: E402
from eval.gold import resolve  # noqa: E402
from eval.harness import evaluate  # noqa: E402
from eval.report import summary_table, write  # noqa: E402
from eval.runner import product_retrievers  # noqa: E402
from tune.reranker import choose_engine  # noqa: E402
from zhiku.kb import KnowledgeBase  # noqa: E402
from zhiku.models import load_embedder  # noqa: E402
from zhiku.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reranker", type=Path)
    parser.add_argument("--dataset", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tr/cache"))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--engine", default="onnx-int8", choices=("onnx", "onnx-int8"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset).limited(200, 1000)
    dataset = dataclasses.replace(dataset, queries=dataset.queries[: args.n])
    settings = Settings(embedding_model="minilm")
    embedder = load_embedder("minilm")
    kb_path = prepare_kb(dataset, args.cache, settings, embedder, progress=False)
    files = corpus_files(dataset, corpus_folder(dataset, args.cache, settings))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(shutil.copytree(args.reranker, Path(scratch) / args.reranker.name))
        choose_engine(folder, args.engine, 256)
        settings = settings.replace(kb=kb_path, reranker=str(folder))
        with KnowledgeBase.open(kb_path, embedder.name) as kb:
            judgements = resolve(dataset, kb, files)
            result = evaluate(judgements, product_retrievers(kb, embedder, settings, ["hybrid", "hybrid+rerank"]),
                              [1, 5, 10], dataset=dataset.name, progress=True)
            result.setup.update({"reranker": f"{args.reranker.name} ({args.engine})", "knowledge_base": str(kb_path),
                                 **kb.stats()})
            result.notes.append(f"first {args.n} of the --limit 200 queries; corpus cut to 1,000 documents "
                                "(--max-docs: the judged ones plus others), an easier task than the full corpus")
            write(result, judgements, args.out, 20)
    print(summary_table(result))


if __name__ == "__main__":
    main()
