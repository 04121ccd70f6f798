"""Cold start: the query commands must not load the heavy libraries only other commands need.

A search with the default ONNX embedder needs ONNX Runtime, ``tokenizers``, FAISS, bm25s and the
graph; it took 10 s and 935 MiB as a whole process while torch, transformers, sentence-transformers,
llama-index, unstructured, spaCy and NLTK were imported on its way (issue 15). Each test runs the
real ``zhiku`` command in a fresh interpreter and lists what it imported; no timing is asserted
(the machine's load would make that flaky), only the imports that made start-up slow.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from kg.extract import load_extractor
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
#: Imported by search or ask before issue 15, each costing seconds or hundreds of MiB, none needed;
#: and Ray, which only `zhiku ingest --ray` may import.
HEAVY = ("torch", "transformers", "sentence_transformers", "llama_index", "unstructured", "spacy", "nltk",
         "sklearn", "pandas", "presidio_analyzer", "ray")
#: Runs ``zhiku ARGS`` in this interpreter, then writes the names of every imported module to a file.
DRIVER = (
    "import json, sys\n"
    "from zhiku.cli import main\n"
    "code = main(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def tiny_kb(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """Two documents, English and Chinese, with their triples (so hybrid search walks a graph)."""
    docs = tmp_path_factory.mktemp("coldstart-docs")
    (docs / "leave.md").write_text("# Leave policy\n\nEmployees in Munich get 30 days of annual leave. "
                                   "Anna Schmidt approves leave requests.\n", encoding="utf-8")
    (docs / "rules.md").write_text("# 上海办公室规定\n\n上海办公室每年提供十五天年假。王芳负责审批。\n", encoding="utf-8")
    settings = Settings(kb=tmp_path_factory.mktemp("coldstart") / "kb", embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [docs], settings, extractor=load_extractor(settings))
    assert not report.failed and report.added == 2
    embedder.embed(["the ONNX export is in the cache now"])
    return settings.kb


def run_cold(tmp_path: Path, *args: str) -> tuple[dict, set[str]]:
    """(the command's JSON output, the top-level packages it imported) of ``zhiku ARGS`` in a new process."""
    modules_file = tmp_path / "modules.json"
    result = subprocess.run([sys.executable, "-c", DRIVER, str(modules_file), *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    modules = json.loads(modules_file.read_text())
    return json.loads(result.stdout), {name.split(".")[0] for name in modules}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("ZHIKU_")}


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword", "graph"])
def test_search_loads_none_of_the_heavy_libraries(tiny_kb: Path, tmp_path: Path, mode: str) -> None:
    payload, imported = run_cold(tmp_path, "search", "How many days of annual leave in Munich?", "--k", "3",
                                 "--json", "--mode", mode, "--kb", str(tiny_kb))
    assert payload["mode"] == mode
    if mode != "graph":  # the graph of two sentences links no entity of this question
        assert payload["hits"][0]["source"].endswith("leave.md")
    if mode == "keyword":  # BM25 alone: the embedding model is never loaded
        assert "onnxruntime" not in imported
    else:
        assert {"onnxruntime", "tokenizers", "faiss"} <= imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_vector_search_loads_neither_bm25_nor_the_graph(tiny_kb: Path, tmp_path: Path) -> None:
    _, imported = run_cold(tmp_path, "search", "annual leave", "--mode", "vector", "--json", "--kb", str(tiny_kb))
    assert not imported & {"bm25s", "numba", "networkx"}, sorted(imported & {"bm25s", "numba", "networkx"})


def test_extractive_ask_loads_none_of_the_heavy_libraries(tiny_kb: Path, tmp_path: Path) -> None:
    payload, imported = run_cold(tmp_path, "ask", "上海办公室每年有几天年假？", "--llm", "extractive", "--json",
                                 "--kb", str(tiny_kb))
    assert payload["citations"] and "十五天" in payload["answer"]
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_commands_that_do_not_search_load_no_retrieval_index(tiny_kb: Path, tmp_path: Path) -> None:
    _, imported = run_cold(tmp_path, "user", "list", "--json", "--kb", str(tiny_kb))
    assert not imported & {*HEAVY, "bm25s", "numba", "networkx", "onnxruntime"}


def test_loading_the_spacy_model_imports_no_other_package_s_pipeline_factories() -> None:
    """The parser workers' warm-up and the extractor load the spaCy model without Presidio's spaCy
    plugin, whose module imports transformers (seconds and ~150 MB in every worker)."""
    script = ("import sys, ingest.warm; from kg.extract import load_spacy; load_spacy(); "
              "print(sorted(m for m in ('presidio_analyzer', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
