import pickle, sys, json, numpy as np
sets = sys.argv[1:]; sys.argv = [sys.argv[0]]
from analyse import prep, NAMES
from eval.metrics import ndcg, bootstrap
from retrieval.adapt import adapt_weights
GLOBAL = {"vector": 0.2, "keyword": 0.7, "graph": 0.1}
def per_query(data, rows, w0, adapt=True):
    out = []
    for q, row, gold in zip(data["queries"], rows, data["golds"]):
        w = adapt_weights(q, w0) if adapt else w0
        tot = sum(w.values()); acc, src, order, sup = {}, {}, [], {}
        for n in NAMES:
            ids, sc = row[n]
            for (cid, so), v in zip(ids, sc):
                if cid not in acc: acc[cid] = 0.0; src[cid] = so; order.append(cid); sup[cid] = 0
                acc[cid] += w[n] / tot * v; sup[cid] += w[n] > 0
        ranked = sorted(order, key=lambda c: (-acc[c], -sup[c]))[:20]
        out.append(ndcg(list(dict.fromkeys(src[c] for c in ranked)), gold, 10))
    return out
def fmt(v):
    e = bootstrap(v); return f"{e.mean:.3f} [{e.low:.2f}, {e.high:.2f}]"
for name in sets:
    data = pickle.load(open(f"/tmp/fusion-eval/study/{name}.pkl", "rb"))
    mm = prep(data, "minmax")
    singles = {n: [ndcg(list(dict.fromkeys(h.document.source for h in p[n][:20])), g, 10) for p, g in zip(data["pools"], data["golds"])] for n in NAMES}
    tuned = json.load(open(f"/tmp/fusion-eval/tune-{name}.json"))["chosen"]["weights"]
    g, t = per_query(data, mm, GLOBAL), per_query(data, mm, tuned)
    best = max(NAMES, key=lambda n: np.mean(singles[n]))
    print(f"| {name} | {len(g)} | " + " | ".join(fmt(singles[n]) for n in NAMES) + f" | {fmt(g)} | {tuned} | {fmt(t)} | {np.mean(g)-np.mean(singles[best]):+.3f} / {np.mean(t)-np.mean(singles[best]):+.3f} |")
