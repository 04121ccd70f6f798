"""`zhiku ingest PATH --ray ADDRESS`: on a local two-node Ray cluster it builds the knowledge base a
local ingest builds from the same files and reports the same way; without --ray Ray is never imported."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from zhiku.cli import main
from zhiku.kb import KnowledgeBase

#: Sample-corpus files of every broad kind: restricted by the ACL, tables, Office, PDF, e-mail, Chinese.
FILES = (
    "hr/leave_policy.md", "hr/salary_bands_2026.csv", "sales/nordhafen_master_supply_agreement.docx",
    "products/k5_lift_datasheet.pdf", "mail/2026-10-20_ledgerly_rollout.eml", "company/about_kestrel.html",
    "zh/shanghai_office_rules.md", "zh/k2_courier_product_intro.md", "zhiku-acl.toml",
)
QUERIES = ("How many days of annual leave do employees get?", "上海办公室的规定", "Nordhafen supply agreement term")
MiB = 2**20


@pytest.fixture(scope="module")
def ray_address():
    """A head and one worker node on loopback, one CPU each (their own raylet processes); stopped after."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80 * MiB, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=80 * MiB)
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def corpus(sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray") / "corpus"
    for name in FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_corpus / name, folder / name)
    (folder / "products" / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a PDF")
    return folder


def ingest(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(["ingest", *argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def contents(kb_path: Path) -> dict[str, dict]:
    """Everything a knowledge base holds per source: the document, its chunks, vectors and triples."""
    with KnowledgeBase.open(kb_path, KnowledgeBase.resolve_model(kb_path, "")) as kb:
        out = {}
        for doc in kb.documents():
            chunks = kb.chunks_of(doc.id)
            position = {c.id: c.position for c in chunks}
            out[doc.source] = {
                "document": (doc.title, doc.kind, doc.groups, doc.language, doc.pages, doc.content_hash, doc.metadata),
                "chunks": [(c.position, c.text, c.page, c.heading_path, c.kind) for c in chunks],
                "vectors": kb.vectors_of([c.id for c in chunks]),
                "triples": sorted((position[t.chunk_id], t.subject, t.relation, t.object, t.subject_type, t.object_type)
                                  for t in kb.triples(doc.id)),
            }
        return out


def search(capsys: pytest.CaptureFixture[str], kb_path: Path, query: str, mode: str) -> list[tuple]:
    assert main(["search", query, "--kb", str(kb_path), "--mode", mode, "--k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    return [(h["source"], h["text"], round(h["score"], 3)) for h in hits]


def local_ingest(corpus: Path, kb: Path) -> subprocess.Popen:
    """``zhiku ingest CORPUS --json`` in a fresh interpreter, which then prints the Ray modules it
    holds: a local ingest must import none (this process has Ray loaded for the cluster)."""
    script = (
        "import json, sys\n"
        "from zhiku.cli import build_parser, main\n"
        "build_parser()\n"
        "ray_after_import = [m for m in sys.modules if m.split('.')[0] == 'ray']\n"
        f"assert main(['ingest', {str(corpus)!r}, '--kb', {str(kb)!r}, '--json']) == 0\n"
        "ray_after_ingest = [m for m in sys.modules if m.split('.')[0] == 'ray']\n"
        "print(json.dumps([ray_after_import, ray_after_ingest]))\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.integration
def test_ray_ingest_builds_the_knowledge_base_a_local_ingest_builds(
        ray_address: str, corpus: Path, tmp_path: Path, capsys, caplog) -> None:
    local_kb, ray_kb = tmp_path / "local", tmp_path / "ray"
    baseline = local_ingest(corpus, local_kb)  # runs beside the Ray ingest
    caplog.set_level(logging.INFO, logger="ingest.distributed")
    distributed = ingest(capsys, str(corpus), "--kb", str(ray_kb), "--ray", ray_address)
    out, err = baseline.communicate(timeout=600)
    assert baseline.returncode == 0, err
    *report, modules = out.strip().splitlines()
    local = json.loads("\n".join(report))

    assert json.loads(modules) == [[], []]  # without --ray, Ray is never imported
    timings = distributed.pop("seconds"), local.pop("seconds")
    assert distributed == local  # the same --json report, the bad file and its reason included
    assert set(timings[0]) == set(timings[1])  # the same stages timed (not the same seconds)
    assert local["added"] == len(FILES) - 1 and local["documents"] == len(FILES) - 1
    assert [(f["path"], f["stage"]) for f in local["failed"]] == [(str(corpus.resolve() / "products/broken.pdf"), "parse")]
    nodes = {m.split(" (")[0] for r in caplog.records if (m := r.getMessage()).endswith("file(s) done")}
    assert len(nodes) == 2, nodes  # both nodes did part of the work

    expected, got = contents(local_kb), contents(ray_kb)
    assert sorted(got) == sorted(expected)
    for source, stored in expected.items():
        assert got[source]["document"] == stored["document"], source
        assert got[source]["chunks"] == stored["chunks"], source
        assert got[source]["triples"] == stored["triples"], source
        np.testing.assert_allclose(got[source]["vectors"], stored["vectors"], atol=1e-5, err_msg=source)
    assert expected[str(corpus.resolve() / "hr/leave_policy.md")]["document"][2] == ("hr",)
    for query in QUERIES:
        for mode in ("vector", "keyword", "hybrid"):
            assert search(capsys, ray_kb, query, mode) == search(capsys, local_kb, query, mode), (query, mode)

    (corpus / "products" / "broken.pdf").unlink()  # else it is retried, as local ingest retries it
    again = ingest(capsys, str(corpus), "--kb", str(ray_kb), "--ray", ray_address)
    assert (again["added"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, len(FILES) - 1, [])


def test_a_worker_needs_only_the_bytes_not_the_drivers_disk(tmp_path: Path) -> None:
    """``NodeWorker`` is a plain class: run here, it is given bytes of files that are gone from disk."""
    from ingest.distributed import NodeWorker
    from ingest.pipeline import Embedded, Failure, Job, SourceFile
    from zhiku.settings import Settings

    notes, bad = tmp_path / "docs" / "canteen_notes.txt", tmp_path / "docs" / "scan.pdf"
    notes.parent.mkdir()
    notes.write_text("The canteen opens at noon. Soup is served until two.")
    bad.write_bytes(b"%PDF-1.7\nnot really a PDF")
    jobs = [Job(SourceFile(p, p.name, ("staff",)), "hash", p.stat(), False) for p in (notes, bad)]
    blobs = [p.read_bytes() for p in (notes, bad)]
    for path in (notes, bad):
        path.unlink()

    gone = subprocess.Popen(["true"])
    gone.wait()  # an actor killed while parsing left its copies behind: the next one removes them
    stale = Path(tempfile.gettempdir()) / f"zhiku-ray-{gone.pid}-test"
    (stale / "0").mkdir(parents=True)
    (stale / "0" / "salaries.csv").write_text("name,salary\nAda,1\n")

    worker = NodeWorker(Settings(kb=tmp_path / "kb", embedding_model="minilm", extractor="none"), None, 1)
    try:
        assert not stale.exists()
        done, failed = worker.process(jobs, blobs)
    finally:
        worker.close()
    assert isinstance(done, Embedded) and isinstance(failed, Failure)
    assert (done.prepared.parsed.path, done.prepared.parsed.title) == (str(notes), "canteen_notes")
    assert [c.text for c in done.prepared.chunks] == ["The canteen opens at noon. Soup is served until two."]
    assert done.vectors.shape == (1, 384) and done.prepared.job.source.groups == ("staff",)
    assert (failed.path, failed.stage) == (str(bad), "parse") and "zhiku-ray-" not in failed.error


def test_an_unreachable_head_is_a_clear_error_not_a_long_wait(tmp_path: Path, capsys) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "a.txt").write_text("The cafeteria opens at noon.")
    code = main(["ingest", str(tmp_path / "a.txt"), "--kb", str(tmp_path / "kb"), "--ray", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err and "ray start --head" in err
