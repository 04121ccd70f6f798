"""Evaluation page: open a report folder written by ``zhiku eval`` and show its tables and plots.

A report folder holds ``metrics.json`` (per mode: each metric@k at document and chunk level, as a
mean with a 95% bootstrap interval), ``report.md`` and PNG plots. The page finds report folders under
a root the admin gives (default: ``eval-out`` and the knowledge base's ``reports`` folder). The page is
for admins only, and like server-folder ingest it reads only inside the ``ui_ingest_roots`` allow-list
(report folders may also lie under the default roots), checked after resolving symlinks and ``..``.

The page also lists the knowledge base's tuning runs (``<kb>/tune/runs.jsonl``, written by
``zhiku tune``): each run's stages with their decisions, and the before/after table on its held-out
generated questions. An admin may start a run from here; it trains on the documents every user may
see, and the record holds figures and model names only.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ingest.uploads import allowed_path
from retrieval import MODES
from ui.cards import safe_markdown
from ui.context import Context, current
from zhiku.accounts import is_admin
from zhiku.errors import DatasetError, NotAllowedError

METRICS_FILE = "metrics.json"


def default_roots(ctx: Context) -> list[Path]:
    return [Path("eval-out"), ctx.kb.root / "reports"]


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
        raise DatasetError(f"{path} is not valid JSON ({exc}); run the evaluation again") from exc


def metrics_table(
    metrics: dict[str, Any], level: str, k: int | None = None, with_interval: bool = False
) -> pd.DataFrame:
    """Modes as rows, ``metric@k`` as columns (only at ``k`` when given), each a mean or "mean [low, high]".

    A skipped mode is a row that says why.
    """
    rows = {}
    for mode, data in metrics.get("modes", {}).items():
        if data.get("skipped"):
            rows[mode] = {"skipped": data["skipped"]}
            continue
        rows[mode] = {
            name: (f"{e['mean']:.3f} [{e['low']:.2f}, {e['high']:.2f}]" if with_interval else round(e["mean"], 4))
            for name, e in data.get(level, {}).items() if e.get("n") and (k is None or name.endswith(f"@{k}"))
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def latency_table(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = {m: d.get("latency_ms", {}) for m, d in metrics.get("modes", {}).items() if not d.get("skipped")}
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def run_evaluation(ctx: Context, dataset: Path, modes: list[str], limit: int) -> Path:
    """Evaluate ``modes`` on a judged dataset (``eval.runner``, as ``zhiku eval`` does); returns the report folder."""
    from eval.runner import RunConfig, run

    out = ctx.kb.root / "reports" / time.strftime("%Y%m%d-%H%M%S")
    config = RunConfig(dataset=dataset, modes=modes, ks=[1, 5, 10], out=out, limit=limit or None, progress=False)
    run(config, ctx.settings, ctx.assistant.embedder)
    return out


def run_form(ctx: Context) -> None:
    """Admins may start a small run from the page; its report lands under the knowledge base's ``reports``."""
    with st.expander("Run an evaluation"):
        with st.form("eval_run"):
            dataset = st.text_input("Dataset (JSONL of judged questions, or a BEIR / MultiHop-RAG folder)",
                                    key="eval_dataset")
            modes = st.multiselect("Modes", MODES, default=["vector", "keyword", "hybrid"], key="eval_modes")
            limit = st.number_input("At most this many questions (0: all)", 0, 10_000, 20, key="eval_limit")
            if not st.form_submit_button("Run"):
                return
        if not dataset.strip():
            st.error("No dataset given: type the path of a JSONL file or a dataset folder.")
            return
        try:
            path = allowed_path(Path(dataset.strip()), ctx.settings.ui_ingest_roots, "evaluation runs")
        except (NotAllowedError, FileNotFoundError) as exc:
            st.error(safe_markdown(str(exc)))
            return
        with st.spinner(f"Evaluating {len(modes)} modes…", show_time=True):
            out = run_evaluation(ctx, path, modes, int(limit))
        st.success(f"Report written to {out}; it is selected below.")
        st.session_state["eval_report"] = out.resolve()


def start_tuning(ctx: Context) -> None:
    """The admin's form to run ``zhiku tune``'s pipeline on this knowledge base, with a progress bar."""
    from tune.pipeline import STAGES, PipelineConfig, run

    with st.expander("Start a tuning run"):
        st.caption("Generates questions from the documents every user may see, fine-tunes the embedder and "
                   "trains a reranker on them, and keeps each new model only if it is better on held-out "
                   "questions. Minutes to an hour on a CPU; the page waits for it.")
        with st.form("tune_run"):
            n = st.number_input("Generated pairs", 20, 20_000, 1000, key="tune_n")
            stages = st.multiselect("Stages", STAGES, default=list(STAGES), key="tune_stages")
            if not st.form_submit_button("Start tuning"):
                return
        if not stages:
            st.error("Pick at least one stage.")
            return
        bar = st.progress(0.0, text="Starting…")

        def step(name: str, done: int, total: int) -> None:
            bar.progress(done / total, text=f"Tuning: {name} (step {done + 1} of {total})")

        record = run(ctx.settings, PipelineConfig(pairs=int(n), stages=tuple(stages)), on_step=step)
        bar.progress(1.0, text=f"Done in {record.seconds:.0f} s")
        st.success("Tuning run recorded; it is shown below. Kept models apply from the next page load.")


def tuning_runs(ctx: Context) -> None:
    """The knowledge base's tuning runs, newest first: stages and decisions, then before/after."""
    from tune.pipeline import load_runs

    st.subheader("Tuning runs")
    start_tuning(ctx)
    runs = load_runs(ctx.kb.root)
    if not runs:
        st.info("No tuning run yet: start one above, or run `zhiku tune` on the server.")
        return
    index = st.selectbox("Tuning run", range(len(runs)), key="tune_run_pick",
                         format_func=lambda i: f"{runs[i].started} ({runs[i].held_out} held-out questions)")
    record = runs[index]
    st.dataframe(pd.DataFrame([{"stage": s.name, "decision": s.status, "seconds": s.seconds, "detail": s.detail}
                               for s in record.stages]), hide_index=True)
    st.dataframe(pd.DataFrame(record.rows()).set_index(["mode", "metric"]))
    models = " · ".join(f"{k}: {safe_markdown(record.models_before.get(k, '?'))} → {safe_markdown(v)}"
                        for k, v in record.models_after.items())
    st.caption(f"Means with 95% bootstrap intervals on held-out generated questions · {models}")


def report_roots(ctx: Context, text: str) -> list[Path]:
    """The typed roots (``;``-separated) that exist, resolved; each must lie under a default root or
    ``ui_ingest_roots``."""
    allowed = [*default_roots(ctx), *ctx.settings.ui_ingest_roots]
    typed = [Path(p.strip()) for p in text.split(";") if p.strip()]
    return [allowed_path(p, allowed, "report folders") for p in typed if p.expanduser().exists()]


def render(ctx: Context) -> None:
    st.title("Evaluation")
    if not is_admin(ctx.user, ctx.settings.admin_group):
        st.warning(f"Only members of the group '{ctx.settings.admin_group}' may use the evaluation page.")
        return
    if ctx.settings.ui_ingest_roots:
        run_form(ctx)
    else:
        st.caption("Evaluation runs from the page are off: an administrator lists the folders datasets may "
                   "come from in the setting `ui_ingest_roots` (or runs `zhiku eval`).")
    tuning_runs(ctx)
    st.subheader("Evaluation reports")
    roots_text = st.text_input("Report folders under", value="; ".join(map(str, default_roots(ctx))),
                               key="eval_roots",
                               help="Folders holding reports written by `zhiku eval --out DIR`, separated by ';'")
    reports = find_reports(report_roots(ctx, roots_text))
    if not reports:
        st.info("No evaluation reports found there. Write one with `zhiku eval --dataset FILE` "
                "(reports go to eval-out/), then pick it here.")
        return
    folder = st.selectbox("Report", reports, format_func=lambda p: p.name, key="eval_report")
    metrics = load_metrics(folder)
    coverage = metrics.get("coverage", {})
    st.caption(f"Dataset **{safe_markdown(str(metrics.get('dataset', '?')))}** · "
               f"{coverage.get('queries', '?')} queries, "
               f"{coverage.get('judged', '?')} judged · means with 95% bootstrap intervals")
    for note in metrics.get("notes", []):
        st.caption(f":material/info: {safe_markdown(str(note))}")
    level = st.radio("Level", ("doc", "chunk"), horizontal=True, key="eval_level",
                     format_func={"doc": "Documents", "chunk": "Chunks"}.get)
    ks = metrics.get("ks") or []
    k = st.segmented_control("At k", ks, default=max(ks) if ks else None, key="eval_k") if ks else None
    with_interval = st.toggle("Show 95% intervals", key="eval_intervals")
    st.dataframe(metrics_table(metrics, level, k, with_interval))
    latency = latency_table(metrics)
    if not latency.empty:
        st.subheader("Latency per query (ms)")
        st.dataframe(latency)
    plots = sorted(folder.glob("*.png"))
    for column, plot in zip(st.columns(2) * ((len(plots) + 1) // 2), plots):
        column.image(str(plot), caption=plot.stem.replace("_", " "))


if __name__ == "__main__":
    render(current())
