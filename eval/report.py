"""Reports of an evaluation run: ``metrics.json``, ``per_query.jsonl``, ``report.md`` and PNG plots.

The Markdown report holds one table per level and k (mode x metric, each mean with its 95% bootstrap
interval), the modes skipped and why, what was measured (coverage), latency, per-query wins and
losses of hybrid against each single retriever, and any answer-quality section.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.datasets import LEVELS
from eval.gold import Judgement
from eval.harness import EvalResult, ModeResult, recall_curve, wins_losses
from eval.metrics import METRICS, Estimate

LEVEL_TITLES = {"doc": "Document level", "chunk": "Chunk level"}
METRIC_TITLES = {"hit_rate": "Hit", "recall": "Recall", "precision": "Precision", "mrr": "MRR", "ndcg": "nDCG",
                 "map": "MAP"}


def headline_metric(ks: Sequence[int]) -> str:
    """The metric per-query comparisons use: nDCG at 10 when measured, else at the largest k."""
    return f"ndcg@{10 if 10 in ks else max(ks)}"


def by_kind(result: EvalResult, judgements: Sequence[Judgement], metric: str) -> dict[str, dict[str, Any]]:
    """Mean document-level ``metric`` per question type (``type`` in our JSONL, ``question_type`` in
    MultiHop-RAG) and mode, with the number of questions; empty when the dataset has no types."""
    kinds = {j.query.id: j.query.kind for j in judgements if j.query.kind}
    if not kinds:
        return {}
    table: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(kinds.values())):
        row: dict[str, Any] = {"n": 0}
        for mode in (m for m in result.modes if m.skipped is None):
            values = [q.doc[metric] for q in mode.queries if kinds.get(q.query_id) == kind]
            if values:
                row["n"] = len(values)
                row[mode.mode] = sum(values) / len(values)
        if row["n"]:
            table[kind] = row
    return table


def _estimates(mode: ModeResult, level: str) -> dict[str, Estimate]:
    return mode.doc if level == "doc" else mode.chunk


def _cell(estimate: Estimate | None, with_ci: bool = True) -> str:
    if estimate is None or estimate.n == 0:
        return "–"
    if not with_ci:
        return f"{estimate.mean:.3f}"
    return f"{estimate.mean:.3f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def tables(result: EvalResult, with_ci: bool = True) -> str:
    """Markdown tables: for each level with data and each k, modes by metrics."""
    out = []
    ran = [m for m in result.modes if m.skipped is None]
    for level in LEVELS:
        if not any(_estimates(m, level) for m in ran):
            continue
        n = max(next(iter(_estimates(m, level).values())).n for m in ran if _estimates(m, level))
        for k in result.ks:
            out.append(f"**{LEVEL_TITLES[level]}, k = {k}** ({n} queries)\n")
            out.append("| mode | " + " | ".join(f"{METRIC_TITLES[m]}@{k}" for m in METRICS) + " |")
            out.append("|---|" + "---|" * len(METRICS))
            for mode in ran:
                est = _estimates(mode, level)
                out.append(f"| {mode.mode} | " + " | ".join(_cell(est.get(f"{m}@{k}"), with_ci) for m in METRICS) + " |")
            out.append("")
    return "\n".join(out)


def summary_table(result: EvalResult) -> str:
    """The compact table printed on the terminal: document level, every metric at every k, means only."""
    ran = [m for m in result.modes if m.skipped is None]
    names = [f"{m}@{k}" for m in METRICS for k in result.ks]
    width = max([len(m.mode) for m in result.modes] + [4])
    lines = ["mode".ljust(width) + "  " + "  ".join(n.rjust(max(len(n), 6)) for n in names)]
    for mode in ran:
        lines.append(mode.mode.ljust(width) + "  " + "  ".join(
            _cell(mode.doc.get(n), False).rjust(max(len(n), 6)) for n in names))
    for mode in result.modes:
        if mode.skipped:
            lines.append(f"{mode.mode.ljust(width)}  skipped: {mode.skipped}")
    return "\n".join(lines)


def to_json(result: EvalResult, judgements: Sequence[Judgement] = ()) -> dict[str, Any]:
    """The ``metrics.json`` payload (also what ``zhiku eval --json`` prints)."""
    recall_k = f"recall@{10 if 10 in result.ks else max(result.ks)}"
    return {
        "dataset": result.dataset,
        "ks": result.ks,
        "coverage": result.coverage,
        "notes": result.notes,
        "setup": result.setup,
        "modes": {
            m.mode: {
                "skipped": m.skipped,
                "doc": {k: e.as_dict() for k, e in m.doc.items()},
                "chunk": {k: e.as_dict() for k, e in m.chunk.items()},
                "latency_ms": m.latency_ms,
            }
            for m in result.modes
        },
        "wins_losses": {"metric": headline_metric(result.ks),
                        "hybrid_vs": wins_losses(result, headline_metric(result.ks))},
        "by_type": {metric: by_kind(result, judgements, metric) for metric in (headline_metric(result.ks), recall_k)},
        **result.extra,
    }


def markdown(result: EvalResult, judgements: Sequence[Judgement] = (), plots: Sequence[str] = ()) -> str:
    metric = headline_metric(result.ks)
    cov = result.coverage
    lines = [
        f"# Retrieval evaluation: {result.dataset}",
        "",
        f"{cov['queries']} queries; {cov['judged']} judged at document level, {cov['judged_chunk_level']} at chunk "
        f"level; {cov['unanswerable']} unanswerable (not ranked). Means with 95% bootstrap intervals.",
        "",
    ]
    if result.setup:
        lines += ["Setup: " + ", ".join(f"{key} {value}" for key, value in result.setup.items()
                                        if key != "knowledge_base"), ""]
    lines += [f"- {note}" for note in result.notes]
    if result.notes:
        lines.append("")
    lines.append(tables(result))
    skipped = [m for m in result.modes if m.skipped]
    if skipped:
        lines += ["## Skipped modes", ""] + [f"- **{m.mode}**: {m.skipped}" for m in skipped] + [""]
    ran = [m for m in result.modes if m.skipped is None]
    if ran:
        lines += ["## Latency per query (ms)", "", "| mode | mean | p50 | p95 |", "|---|---|---|---|"]
        for m in ran:
            lat = m.latency_ms
            lines.append(f"| {m.mode} | {lat.get('mean', 0):.1f} | {lat.get('p50', 0):.1f} | {lat.get('p95', 0):.1f} |")
        lines.append("")
    table = wins_losses(result, metric)
    if table:
        lines += [f"## Hybrid against each single retriever, per query ({metric}, document level)", "",
                  "| versus | hybrid better | same | hybrid worse |", "|---|---|---|---|"]
        lines += [f"| {name} | {c['wins']} | {c['ties']} | {c['losses']} |" for name, c in table.items()]
        lines.append("")
    recall_k = f"recall@{10 if 10 in result.ks else max(result.ks)}"
    kinds = {m: by_kind(result, judgements, m) for m in (metric, recall_k)}
    if kinds[metric]:
        names = [m.mode for m in ran]
        lines += [f"## By question type (document level, {metric} / {recall_k})", "",
                  "| type | n | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for kind, row in kinds[metric].items():
            cells = [f"{row[n]:.3f} / {kinds[recall_k][kind][n]:.3f}" if n in row else "–" for n in names]
            lines.append(f"| {kind} | {row['n']} | " + " | ".join(cells) + " |")
        lines.append("")
    for section in result.sections:
        lines += [section, ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)


#: Line styles that keep overlapping curves (modes that rank alike) distinguishable.
_STYLES = [dict(marker=m, linestyle=ls, markersize=ms, alpha=0.85) for m, ls, ms in
           (("o", "-", 6), ("s", "--", 5), ("^", ":", 5), ("D", "-.", 4), ("v", "-", 4), ("x", "--", 6))] * 3


def plot(result: EvalResult, judgements: Sequence[Judgement], out: Path, depth: int) -> list[Path]:
    """Recall@k curves per mode (each level with data) and hybrid's per-query wins/losses; PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    written = []
    ran = [m for m in result.modes if m.skipped is None]
    depth = min(depth, max(result.ks))
    for level in LEVELS:
        curves = {m.mode: recall_curve(m, judgements, depth, level) for m in ran}
        curves = {name: c for name, c in curves.items() if c}
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for (name, curve), style in zip(curves.items(), _STYLES):
            ax.plot(range(1, len(curve) + 1), curve, label=name, **style)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="k", ylabel="recall@k", ylim=(0, 1.02), title=f"{result.dataset}: {LEVEL_TITLES[level].lower()} recall@k")
        ax.grid(alpha=0.3)
        ax.legend()
        path = out / f"recall_at_k_{level}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    metric = headline_metric(result.ks)
    table = wins_losses(result, metric)
    if table:
        fig, ax = plt.subplots(figsize=(6, 0.7 * len(table) + 2.0))
        names = list(table)
        left = [0] * len(names)
        for part, colour in (("wins", "#2a9d55"), ("ties", "#bbbbbb"), ("losses", "#d1495b")):
            values = [table[n][part] for n in names]
            ax.barh(names, values, left=left, color=colour, label={"wins": "hybrid better", "ties": "same",
                                                                     "losses": "hybrid worse"}[part])
            left = [a + b for a, b in zip(left, values)]
        ax.set(xlabel="queries", title=f"hybrid vs single retrievers, per query ({metric})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
        path = out / "wins_losses.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write(result: EvalResult, judgements: Sequence[Judgement], out: Path, depth: int) -> dict[str, Path]:
    """Write every artefact of a run into ``out``; returns their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "per_query": out / "per_query.jsonl", "report": out / "report.md"}
    paths["metrics"].write_text(json.dumps(to_json(result, judgements), ensure_ascii=False, indent=2), encoding="utf-8")
    texts = {j.query.id: j.query.query for j in judgements}
    with paths["per_query"].open("w", encoding="utf-8") as handle:
        for mode in result.modes:
            for q in mode.queries:
                handle.write(json.dumps({"query": texts.get(q.query_id, ""), **q.as_dict()}, ensure_ascii=False) + "\n")
    plots = plot(result, judgements, out, depth)
    paths["report"].write_text(markdown(result, judgements, [str(p) for p in plots]), encoding="utf-8")
    paths.update({p.stem: p for p in plots})
    return paths
