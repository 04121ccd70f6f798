"""Offline fusion study: each single retriever's pool once per query, then fusion variants on real labels."""
import json, pickle, sys, statistics
from pathlib import Path
import numpy as np
from eval.datasets import load_dataset, prepare_kb, corpus_files, corpus_folder
from eval.gold import resolve
from eval.runner import DEFAULT_CACHE
from eval.metrics import ndcg, recall
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.settings import Settings
from retrieval import fusion as F
from retrieval.adapt import adapt_weights
from tune.fusion import collect, simplex, normalised, LOCAL_ADMIN



def main() -> None:
    """Collects one dataset's pools (ingest workers re-import this module: hence the guard)."""
    name, path, model = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    corpus = Path(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    limit = int(sys.argv[5]) if len(sys.argv) > 5 else None
    out = Path("/tmp/fusion-eval/study") / f"{name}.pkl"
    if not out.exists():
        ds = load_dataset(path, corpus).limited(limit, int(sys.argv[6]) if len(sys.argv) > 6 else None)
        settings = Settings.load({"embedding_model": model}, env={})
        emb = load_embedder(model)
        cache = DEFAULT_CACHE.expanduser()
        kbdir = prepare_kb(ds, cache, settings, emb, False)
        files = corpus_files(ds, corpus_folder(ds, cache, settings)) if ds.records is not None else None
        from kg.graph import load_graph
        from retrieval import build_retriever
        with KnowledgeBase.open(kbdir, emb.name) as kb:
            js = [j for j in resolve(ds, kb, files) if j.docs]
            g = load_graph(kb)
            rs = {m: build_retriever(kb, emb, settings.replace(kb=kbdir), m, graph=g) for m in ("vector", "keyword", "graph")}
            pools = collect(rs, [j.query.query for j in js], LOCAL_ADMIN, progress=False)
            for p in pools:  # keep only what fusion needs
                for hits in p.values():
                    for h in hits:
                        h.chunk.text = ""
            pickle.dump({"queries": [j.query.query for j in js], "golds": [j.docs for j in js], "pools": pools}, out.open("wb"))
        print("collected", name, len(js))


if __name__ == "__main__":
    main()
