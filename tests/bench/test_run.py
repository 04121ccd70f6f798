"""``bench/run.py`` end to end at its smallest size: every section is measured, judged and written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_tiny_run_measures_every_figure_beside_its_peer(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--tiny", "--out", str(tmp_path),
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "tiny.json").read_text())
    systems = {row["system"] for row in result["ingest"]}
    assert {"zhiku", "zhiku (no extraction)",
            "zhiku-unchanged", "zhiku-1%-changed", "llama-index", "llama-index (zhiku chunks)", "st-raw", "zhiku-embed", "zhiku-embed (minilm-int8)",
            "extraction"} <= systems
    assert all(row["seconds"] > 0 and row["peak_mib"] > 0 for row in result["ingest"])
    compared = [row for row in result["ingest"] if row["system"] in {"zhiku", "llama-index", "llama-index (zhiku chunks)"}]
    assert all(row["mb_per_s"] > 0 and row["mean_chunk_tokens"] > 0 for row in compared)
    assert all(row["tree_peak_mib"] >= row["peak_mib"] * 0.9 for row in compared)  # the tree holds the process
    measured = {row["what"] for row in result["query"]}
    assert {"raw FAISS search (floor)", "zhiku vector", "zhiku keyword", "zhiku graph", "zhiku hybrid",
            "llama-index VectorStoreIndex (FAISS)", "zhiku hybrid + extractive answer"} <= measured
    assert all(row["p95"] >= row["p50"] > 0 for row in result["query"])
    assert result["memory"][0]["disk_mib"] > 0 and result["targets"]
    assert (tmp_path / "tiny.md").read_text().startswith("# Zhiku benchmark (tiny)")
