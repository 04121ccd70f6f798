"""Fusion variants on the collected pools: normalisations x weights x adaptation, doc-level nDCG@10."""
import pickle, sys, statistics, itertools, json
from pathlib import Path
import numpy as np
from eval.metrics import ndcg, recall
from retrieval.adapt import adapt_weights
from tune.fusion import simplex

NAMES = ("vector", "keyword", "graph")
def norm(scores, how):
    s = np.asarray(scores, float)
    if not len(s): return s
    if how == "minmax":
        lo, hi = s.min(), s.max(); return np.ones_like(s) if hi - lo < 1e-12 else (s - lo) / (hi - lo)
    if how == "max":
        hi = s.max(); return np.ones_like(s) if hi <= 0 else np.clip(s / hi, 0, None)
    if how == "z":
        sd = s.std(); z = np.zeros_like(s) if sd < 1e-12 else (s - s.mean()) / sd
        return z - z.min() if len(s) > 1 else np.ones_like(s)
    if how == "rrf":
        return 1.0 / (60 + np.arange(1, len(s) + 1))
    if how == "rrf10":
        return 1.0 / (10 + np.arange(1, len(s) + 1))

def prep(data, how):
    rows = []
    for pool in data["pools"]:
        rows.append({n: ([(h.chunk.id, h.document.source) for h in hits], norm([h.score for h in hits], how)) for n, hits in pool.items()})
    return rows

def run(data, rows, weights, adapt=False, boost=2.0):
    nd, rc = [], []
    for q, pool, row, gold in zip(data["queries"], data["pools"], rows, data["golds"]):
        w = adapt_weights(q, weights, boost) if adapt else weights
        tot = sum(w.values()) or 1
        acc, src, order, sup = {}, {}, [], {}
        for n in NAMES:
            ids, sc = row[n]
            for (cid, s), v in zip(ids, sc):
                if cid not in acc: acc[cid] = 0.0; src[cid] = s; order.append(cid); sup[cid] = 0
                acc[cid] += w[n] / tot * v
                sup[cid] += w[n] > 0
        ranked = sorted(order, key=lambda c: (-acc[c], -sup[c]))[:20]
        docs = list(dict.fromkeys(src[c] for c in ranked))
        nd.append(ndcg(docs, gold, 10)); rc.append(recall(docs, gold, 10))
    return np.array(nd), np.array(rc)

if __name__ == "__main__":
    sets = sys.argv[1:]
    grid = simplex(NAMES, 0.1)
    DEFAULT = {"vector": 1.0, "keyword": 1.0, "graph": 0.25}
    results = {}
    for name in sets:
        data = pickle.load(open(f"/tmp/fusion-eval/study/{name}.pkl", "rb"))
        res = {}
        for how in ("minmax", "max", "z", "rrf"):
            rows = prep(data, how)
            res[how] = {json.dumps(w): run(data, rows, w)[0].mean() for w in grid + [DEFAULT]}
        singles = {}
        for n in NAMES:
            nd = []
            for pool, gold in zip(data["pools"], data["golds"]):
                docs = list(dict.fromkeys(h.document.source for h in pool[n][:20]))
                nd.append(ndcg(docs, gold, 10))
            singles[n] = float(np.mean(nd))
        results[name] = (res, singles)
        print(f"== {name} ({len(data['queries'])} q) singles", {k: round(v, 3) for k, v in singles.items()})
        for how in res:
            best = max(res[how].items(), key=lambda kv: kv[1])
            print(f"  {how:7s} default {res[how][json.dumps(DEFAULT)]:.3f}  best {best[1]:.3f} at {best[0]}")
    pickle.dump(results, open("/tmp/fusion-eval/study/grid.pkl", "wb"))
    # global weights: the grid point maximising the worst margin over best single, per normalisation
    for how in ("minmax", "z", "rrf"):
        worst = {}
        for key in results[sets[0]][0][how]:
            worst[key] = min(results[s][0][how][key] - max(results[s][1].values()) for s in sets)
        top = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
        print(how, "best worst-margin:", [(k, round(v, 3)) for k, v in top])
        k0 = top[0][0]
        print("   per set at", k0, {s: round(results[s][0][how][k0], 3) for s in sets})
