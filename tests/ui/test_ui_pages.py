"""The pages' plain functions: document filters, report tables, graph drawing, upload handling."""
from __future__ import annotations

from pathlib import Path

import pytest

from kg.graph import KnowledgeGraph
from ui.views.documents import document_table, filter_documents
from ui.views.evaluation import find_reports, load_metrics, metrics_table
from ui.views.graph import find_entities, neighbourhood_dot
from ui.views.ingest import save_upload, server_paths
from zhiku.errors import DatasetError, NotAllowedError, UsageError
from zhiku.records import PUBLIC, Document, Triple, User

DOCS = [
    Document(source="/d/travel.pdf", content_hash="a", title="Travel policy", kind="pdf", groups=(PUBLIC,), size=2048),
    Document(source="/d/salaries.xlsx", content_hash="b", title="Salary bands", kind="xlsx", groups=("hr",)),
    Document(source="/d/hr/handbook.docx", content_hash="c", title="Handbook", kind="docx", groups=("hr", "staff")),
]


def test_documents_filter_by_text_type_and_group() -> None:
    assert [d.title for d in filter_documents(DOCS, "HR/")] == ["Handbook"]
    assert [d.title for d in filter_documents(DOCS, "salary")] == ["Salary bands"]
    assert [d.title for d in filter_documents(DOCS, kinds=["pdf", "docx"])] == ["Travel policy", "Handbook"]
    assert [d.title for d in filter_documents(DOCS, groups=["staff", PUBLIC])] == ["Travel policy", "Handbook"]
    table = document_table(DOCS)
    assert table.loc[0, "size (KB)"] == 2.0 and table.loc[0, "groups"] == "everyone"
    assert table.loc[2, "groups"] == "hr, staff"


METRICS = {
    "dataset": "demo", "ks": [1, 5],
    "modes": {
        "vector": {"skipped": None, "doc": {"recall@1": {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 2},
                                            "recall@5": {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2}},
                   "chunk": {}, "latency_ms": {"mean": 3.0}},
        "hybrid+rerank": {"skipped": "no reranker configured", "doc": {}, "chunk": {}, "latency_ms": {}},
    },
}


def test_metrics_table_has_a_row_per_mode_and_says_why_a_mode_was_skipped() -> None:
    table = metrics_table(METRICS, "doc")
    assert table.loc["vector", "recall@1"] == 0.5 and table.loc["vector", "recall@5"] == 1.0
    assert table.loc["hybrid+rerank", "skipped"] == "no reranker configured"
    assert list(metrics_table(METRICS, "doc", k=5).columns) == ["recall@5", "skipped"]
    assert metrics_table(METRICS, "doc", k=1, with_interval=True).loc["vector", "recall@1"] == "0.500 [0.00, 1.00]"


def test_reports_are_found_below_the_roots_and_a_bad_one_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "metrics.json").write_text("{", encoding="utf-8")
    assert find_reports([tmp_path / "runs", tmp_path / "absent"]) == [(tmp_path / "runs" / "a").resolve()]
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_metrics(tmp_path / "runs" / "a")
    with pytest.raises(FileNotFoundError, match="zhiku eval"):
        load_metrics(tmp_path)


def test_the_graph_view_finds_entities_by_alias_and_hides_restricted_ones() -> None:
    triples = [Triple("Acme Robotics", "based_in", "Berlin", chunk_id=1, doc_id=1),
               Triple("Acme Robotics", "pays", "Senior engineers", chunk_id=2, doc_id=2)]
    graph = KnowledgeGraph.from_triples(triples, {1: (PUBLIC,), 2: ("hr",)})
    outsider, insider = User("x"), User("y", groups=("hr",))
    assert [graph.graph.nodes[k]["name"] for k in find_entities(graph, "acme", outsider)] == ["Acme Robotics"]
    assert find_entities(graph, "senior", outsider) == [] and find_entities(graph, "senior", insider)
    dot = neighbourhood_dot('Acme "AR" Robotics', [Triple('Acme "AR" Robotics', "based_in", "Berlin")])
    assert '"Acme \\"AR\\" Robotics" -> "Berlin" [label="based_in"];' in dot


def test_uploads_are_stored_by_content_so_they_never_overwrite_each_other(tmp_path: Path) -> None:
    first = save_upload(tmp_path, "../../etc/notes.md", b"first", max_mb=1)
    second = save_upload(tmp_path, "notes.md", b"second", max_mb=1)
    assert first.name == second.name == "notes.md" and first != second
    assert first.parent.parent == tmp_path / "uploads" and len(first.parent.name) == 16
    assert first.read_bytes() == b"first" and second.read_bytes() == b"second"
    assert first.stat().st_mode & 0o777 == 0o600 and first.parent.stat().st_mode & 0o777 == 0o700
    assert save_upload(tmp_path, "notes.md", b"first", max_mb=1) == first  # the same file lands in the same place
    with pytest.raises(UsageError, match="no usable file name"):
        save_upload(tmp_path, ".hidden", b"z", max_mb=1)


def test_acl_files_and_files_over_the_size_limit_are_refused_from_uploads(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="zhiku-acl.toml was not accepted"):
        save_upload(tmp_path, "zhiku-acl.toml", b'"**" = ["hr"]\n', max_mb=1)
    with pytest.raises(UsageError, match="ZHIKU-ACL.TOML was not accepted"):
        save_upload(tmp_path, "sub/ZHIKU-ACL.TOML", b"", max_mb=1)
    with pytest.raises(UsageError, match="over the upload limit of 1 MiB.*upload_max_mb"):
        save_upload(tmp_path, "big.txt", b"x" * (2**20 + 1), max_mb=1)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").rglob("*.*"))


def test_server_paths_must_exist_and_lie_inside_the_allow_list_after_resolving(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    roots = [str(allowed)]
    assert server_paths(f"{allowed}\n  \n{allowed / 'sub'}", roots) == [allowed.resolve(), (allowed / "sub").resolve()]
    with pytest.raises(FileNotFoundError, match="missing"):
        server_paths(str(allowed / "missing"), roots)
    for escape in (outside, allowed / "sub" / ".." / ".." / "outside", allowed / "link"):
        with pytest.raises(NotAllowedError, match="outside the folders allowed.*ui_ingest_roots"):
            server_paths(str(escape), roots)
    with pytest.raises(NotAllowedError, match="off.*ui_ingest_roots"):
        server_paths(str(allowed), [])


def test_the_ui_settings_read_yes_no_values_and_folder_lists_from_toml_and_the_environment(tmp_path: Path) -> None:
    from zhiku.settings import Settings, SettingsError

    (tmp_path / "zhiku.toml").write_text('require_sign_in = true\nui_ingest_roots = ["/data/a", "/data/b"]\n')
    settings = Settings.load(env={}, cwd=tmp_path)
    assert settings.require_sign_in is True and settings.ui_ingest_roots == ("/data/a", "/data/b")
    assert (settings.session_idle_minutes, settings.upload_max_mb, settings.audit_questions) == (30, 200, True)
    settings = Settings.load(env={"ZHIKU_REQUIRE_SIGN_IN": "no", "ZHIKU_AUDIT_QUESTIONS": "false",
                                  "ZHIKU_UI_INGEST_ROOTS": "/srv/x:/srv/y"}, cwd=tmp_path)
    assert (settings.require_sign_in, settings.audit_questions) == (False, False)
    assert settings.ui_ingest_roots == ("/srv/x", "/srv/y")
    with pytest.raises(SettingsError, match="'require_sign_in'.*ZHIKU_REQUIRE_SIGN_IN.*bool"):
        Settings.load(env={"ZHIKU_REQUIRE_SIGN_IN": "perhaps"}, cwd=tmp_path)


def test_a_generated_answer_shows_its_first_token_time_and_tokens_per_second():
    from ui.views.chat import answer_backend, timing_caption
    from zhiku.records import Timing

    caption = timing_caption(Timing(retrieval_ms=14.6, first_token_ms=1430, tokens=40, tokens_per_s=13.24))
    assert caption == "first token 1.4 s · 13.2 tokens/s · retrieval 15 ms"
    assert answer_backend({"backend": "local", "model": "qwen0.5b", "runtime": "ctranslate2"}) == \
        "qwen0.5b (local, ctranslate2)"
