"""Evaluation page: open a report folder written by ``zhiku eval`` and show its tables and plots.

A report folder holds ``metrics.json`` (per mode: each metric@k at document and chunk level, as a
mean with a 95% bootstrap interval), ``report.md`` and PNG plots. The page finds report folders under
a root the user gives (default: ``eval-reports`` and the knowledge base's ``reports`` folder).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ui.context import Context, current

METRICS_FILE = "metrics.json"


def default_roots(ctx: Context) -> list[Path]:
    return [Path("eval-reports"), ctx.kb.root / "reports"]


def find_reports(roots: list[Path]) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) holding a ``metrics.json``, newest first."""
    found = {p.parent.resolve() for root in roots if root.is_dir() for p in root.rglob(METRICS_FILE)}
    return sorted(found, key=lambda p: (p / METRICS_FILE).stat().st_mtime, reverse=True)


def load_metrics(folder: Path) -> dict[str, Any]:
    path = folder / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} holds no {METRICS_FILE}: pick a folder written by `zhiku eval`") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); run the evaluation again") from exc


def metrics_table(metrics: dict[str, Any], level: str, with_interval: bool = False) -> pd.DataFrame:
    """Modes as rows, ``metric@k`` as columns (means, or "mean [low, high]"); skipped modes say why."""
    rows = {}
    for mode, data in metrics.get("modes", {}).items():
        if data.get("skipped"):
            rows[mode] = {"skipped": data["skipped"]}
            continue
        rows[mode] = {
            name: (f"{e['mean']:.3f} [{e['low']:.2f}, {e['high']:.2f}]" if with_interval else round(e["mean"], 4))
            for name, e in data.get(level, {}).items() if e.get("n")
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def latency_table(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = {m: d.get("latency_ms", {}) for m, d in metrics.get("modes", {}).items() if not d.get("skipped")}
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def render(ctx: Context) -> None:
    st.title("Evaluation")
    roots_text = st.text_input("Report folders under", value="; ".join(map(str, default_roots(ctx))),
                               key="eval_roots", help="Folders written by `zhiku eval --out DIR`, separated by ';'")
    reports = find_reports([Path(p.strip()).expanduser() for p in roots_text.split(";") if p.strip()])
    if not reports:
        st.info("No evaluation reports found there. Write one with `zhiku eval DATASET --out eval-reports/NAME`, "
                "then pick it here.")
        return
    folder = st.selectbox("Report", reports, format_func=lambda p: p.name, key="eval_report")
    metrics = load_metrics(folder)
    coverage = metrics.get("coverage", {})
    st.caption(f"Dataset **{metrics.get('dataset', '?')}** · {coverage.get('queries', '?')} queries, "
               f"{coverage.get('judged', '?')} judged · means with 95% bootstrap intervals")
    for note in metrics.get("notes", []):
        st.caption(f":material/info: {note}")
    level = st.radio("Level", ("doc", "chunk"), horizontal=True, key="eval_level",
                     format_func={"doc": "Documents", "chunk": "Chunks"}.get)
    with_interval = st.toggle("Show intervals", key="eval_intervals")
    st.dataframe(metrics_table(metrics, level, with_interval))
    latency = latency_table(metrics)
    if not latency.empty:
        st.subheader("Latency per query (ms)")
        st.dataframe(latency)
    plots = sorted(folder.glob("*.png"))
    for column, plot in zip(st.columns(2) * ((len(plots) + 1) // 2), plots):
        column.image(str(plot), caption=plot.stem.replace("_", " "))


if __name__ == "__main__":
    render(current())
