"""The incremental ingest: idempotent, replaces changed files, prunes removed ones, survives a kill."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.acl import Acl, glob_regex
from ingest.pipeline import Filters, ingest
from zhiku.kb import KnowledgeBase, ModelMismatchError
from zhiku.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(kb=tmp_path / "kb", embedding_model="minilm", workers=0)


@pytest.fixture
def kb(settings: Settings, embedder):
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as opened:
        yield opened


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_consistent(kb: KnowledgeBase) -> None:
    """Every chunk has its vector and no vector lacks its chunk; no document is half-stored."""
    stats = kb.stats()
    index = kb.vector_index()
    assert index.ntotal == stats["chunks"]
    ids = {c.id for c in kb.iter_chunks()}
    assert all(index.id_map.at(i) in ids for i in range(index.ntotal))
    assert all(d.n_chunks > 0 for d in kb.documents())


def test_add_then_rerun_is_idempotent(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "a.md", "# Leave\n\nEmployees get 28 days of paid leave per year.")
    write(docs, "b.txt", "The Berlin office opens at 8am.")
    first = ingest(kb, embedder, [docs], settings)
    assert (first.added, first.unchanged, first.documents) == (2, 0, 2)
    second = ingest(kb, embedder, [docs], settings)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 2)
    assert second.chunks == first.chunks
    assert_consistent(kb)


def test_changed_file_replaces_its_chunks_and_vectors(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    path = write(docs, "a.md", "Hotels are capped at 150 EUR per night.")
    ingest(kb, embedder, [docs], settings)
    write(docs, "a.md", "Hotels are capped at 180 EUR per night.\n\nTaxis need a receipt.")
    report = ingest(kb, embedder, [docs], settings)
    assert report.updated == 1
    stored = kb.get_document(str(path.resolve()))
    texts = " ".join(c.text for c in kb.chunks_of(stored.id))
    assert "180 EUR" in texts and "150 EUR" not in texts
    assert_consistent(kb)


def test_prune_removes_documents_whose_files_are_gone(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "keep.txt", "Keep me.")
    gone = write(docs, "gone.txt", "Delete me.")
    ingest(kb, embedder, [docs], settings)
    gone.unlink()
    without_prune = ingest(kb, embedder, [docs], settings)
    assert without_prune.removed == 0 and without_prune.documents == 2
    report = ingest(kb, embedder, [docs], settings, prune=True)
    assert report.removed == 1 and report.documents == 1
    assert_consistent(kb)


def test_include_and_exclude_globs(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "a.md", "Alpha.")
    write(docs, "notes/b.txt", "Beta.")
    write(docs, "notes/draft/c.txt", "Gamma.")
    report = ingest(kb, embedder, [docs], settings, filters=Filters(include=("*.txt",), exclude=("notes/draft/**",)))
    assert report.added == 1
    assert [Path(d.source).name for d in kb.documents()] == ["b.txt"]


def test_acl_file_sets_groups_last_match_wins_and_is_not_a_document(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "zhiku-acl.toml", '"hr/**" = ["hr"]\n"hr/public/*" = ["everyone"]\n')
    write(docs, "hr/salaries.txt", "Salary bands.")
    write(docs, "hr/public/holidays.txt", "Holiday calendar.")
    write(docs, "readme.txt", "Welcome.")
    ingest(kb, embedder, [docs], settings, groups=["staff"])
    groups = {Path(d.source).name: d.groups for d in kb.documents()}
    assert groups == {"salaries.txt": ("hr",), "holidays.txt": ("everyone",), "readme.txt": ("staff",)}
    write(docs, "zhiku-acl.toml", '"hr/**" = ["hr", "executives"]\n')
    report = ingest(kb, embedder, [docs], settings)
    assert report.unchanged == 3
    assert kb.get_document(str((docs / "hr/salaries.txt").resolve())).groups == ("hr", "executives")


def test_broken_acl_refuses_its_folder(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "zhiku-acl.toml", '"hr/**" = "hr"\n')
    write(docs, "hr/salaries.txt", "Salary bands.")
    report = ingest(kb, embedder, [docs], settings)
    assert report.added == 0 and report.documents == 0
    assert "zhiku-acl.toml" in report.failed[0].path and "list of group names" in report.failed[0].error


def test_glob_semantics() -> None:
    assert glob_regex("hr/**").match("hr/a/b.txt")
    assert glob_regex("**/*.pdf").match("x.pdf") and glob_regex("**/*.pdf").match("a/b/x.pdf")
    assert not glob_regex("*.pdf").match("a/x.pdf")
    assert Acl().groups_for("anything") == ("*",)


def test_bad_files_are_reported_and_the_rest_goes_on(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "good.txt", "A good file.")
    write(docs, "empty.txt", "")
    (docs / "broken.pdf").write_bytes(b"not a pdf")
    report = ingest(kb, embedder, [docs, tmp_path / "missing"], settings)
    assert report.added == 1
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"empty.txt", "broken.pdf", "missing"}


def test_chinese_document_is_tagged_zh(tmp_path: Path, kb, embedder, settings) -> None:
    docs = tmp_path / "docs"
    write(docs, "上海.md", "# 差旅政策\n\n上海办公室员工出差住宿每晚不超过800元。报销需在30天内提交。")
    ingest(kb, embedder, [docs], settings)
    (doc,) = kb.documents()
    assert doc.language == "zh" and doc.title == "差旅政策"


def test_parsing_in_several_workers_matches_one_worker(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    for i in range(6):
        write(docs, f"d{i}.md", f"# Doc {i}\n\nDocument {i} talks about topic {i}.")
    results = []
    for workers in (1, 2):
        settings = Settings(kb=tmp_path / f"kb{workers}", workers=workers)
        with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
            ingest(kb, embedder, [docs], settings)
            results.append(sorted((Path(d.source).name, d.n_chunks, d.title) for d in kb.documents()))
    assert results[0] == results[1] and len(results[0]) == 6


def test_triples_are_extracted_in_the_parser_workers_as_they_would_be_here(tmp_path: Path, embedder) -> None:
    """A portable extractor runs where each file was parsed, so the process that embeds never loads
    spaCy; the graph is the one an extractor running in this process (not portable) builds."""
    from kg.extract import DefaultExtractor, load_spacy

    docs = tmp_path / "docs"
    write(docs, "team.md", "# Atlas migration\n\nMarcus Hale approves expenses above 5,000 EUR. "
                           "Kestrel Robotics opened an office in Munich in 2024.\n\nOwner: Li Na")
    write(docs, "深圳.md", "# 深圳办公室\n\n华为公司在深圳设立了研发中心。张伟负责采购审批。")
    in_workers, here = DefaultExtractor(), DefaultExtractor(nlp=load_spacy())
    assert in_workers.portable() is not None and here.portable() is None
    graphs = []
    for name, extractor in (("workers", in_workers), ("here", here)):
        settings = Settings(kb=tmp_path / name, workers=1)
        with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
            ingest(kb, embedder, [docs], settings, extractor=extractor)
            graphs.append(sorted((t.subject, t.relation, t.object) for t in kb.triples()))
    assert "_nlp" not in vars(in_workers)  # never loaded in this process
    assert graphs[0] == graphs[1]
    assert {("Atlas migration", "Owner", "Li Na"), ("Kestrel Robotics", "opened office in", "Munich"),
            ("华为公司", "设立", "研发中心")} <= set(graphs[0])


def test_other_embedding_model_is_refused_with_the_fix(settings, kb) -> None:
    with pytest.raises(ModelMismatchError) as error:
        KnowledgeBase.open(settings.kb, "multilingual")
    message = str(error.value)
    assert "'minilm'" in message and "'multilingual'" in message and "zhiku reindex" in message


def test_stale_vector_index_is_rebuilt_from_sqlite(tmp_path: Path, settings, embedder) -> None:
    docs = tmp_path / "docs"
    write(docs, "a.txt", "Alpha text.")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [docs], settings)
    (settings.kb / "vectors.faiss").write_bytes(b"garbage")
    (settings.kb / "vectors.stamp").write_text("-1")
    with KnowledgeBase.open(settings.kb, "minilm") as kb:
        assert_consistent(kb)


def test_killed_ingest_leaves_a_consistent_kb_and_a_rerun_completes(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    total = 24  # the kill lands once 5 are stored, well before the end
    paragraph = "The travel policy covers flights, hotels and meals for every office. " * 12
    for i in range(total):
        write(docs, f"doc{i:02}.txt", "\n\n".join(f"Section {j} of document {i}. {paragraph}" for j in range(4)))
    kb_dir = tmp_path / "kb"
    env = {**os.environ, "ZHIKU_EMBED_BATCH_SIZE": "2", "ZHIKU_WORKERS": "1"}
    command = [sys.executable, "-m", "zhiku.cli", "ingest", str(docs), "--kb", str(kb_dir), "--no-graph", "--json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    stored = 0
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(kb_dir / "kb.sqlite", timeout=1) as conn:
                stored = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        except sqlite3.Error:
            continue
        if stored >= 5:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert 5 <= stored < total, "the ingest was not caught mid-way"
    with KnowledgeBase.open(kb_dir, "minilm") as kb:
        assert 5 <= kb.stats()["documents"] < total
        assert_consistent(kb)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    summary = json.loads(rerun.stdout)
    assert summary["documents"] == total and summary["failed"] == []
    assert summary["unchanged"] >= 5 and summary["added"] == total - summary["unchanged"]
    with KnowledgeBase.open(kb_dir, "minilm") as kb:
        assert_consistent(kb)
