"""The walk: symbolic links, knowledge-base folders, version-control folders and temporary files."""
from __future__ import annotations

import json
import os
from corpus_files import write
from pathlib import Path

import pytest

from ingest.pipeline import discover, ingest
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings




@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    write(root, "zhiku-acl.toml", '"hr/**" = ["hr"]\n')
    write(root, "hr/bands.md", "# Bands\n\nThe L5 band pays 90,000 EUR a year.")
    write(root, "public/welcome.md", "# Welcome\n\nThe office opens at 8am.")
    return root.resolve()


def names(found) -> dict[str, tuple[str, ...]]:
    return {f.path.relative_to(f.path.parents[1]).as_posix(): f.groups for f in found.files}


def test_symlinks_are_skipped_by_default_and_listed_with_the_reason(corpus: Path) -> None:
    link = corpus / "public" / "x.md"
    link.symlink_to(corpus / "hr" / "bands.md")
    (corpus / "public" / "hr-folder").symlink_to(corpus / "hr", target_is_directory=True)
    found = discover([corpus / "public"])
    assert [f.path.name for f in found.files] == ["welcome.md"]
    skipped = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(skipped) == {"x.md", "hr-folder"}
    assert all("symbolic link" in r and "--follow-symlinks" in r for r in skipped.values())


def test_a_followed_link_inside_the_roots_is_its_target_with_the_targets_groups(corpus: Path) -> None:
    (corpus / "public" / "x.md").symlink_to(corpus / "hr" / "bands.md")
    found = discover([corpus], follow_symlinks=True)
    assert names(found) == {"hr/bands.md": ("hr",), "public/welcome.md": ("*",)}
    assert found.skipped == []


def test_links_leading_outside_the_ingested_paths_are_skipped_even_when_following(corpus: Path, tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.md", "# Secret\n\nNot part of the corpus.")
    (corpus / "public" / "out.md").symlink_to(outside)
    (corpus / "public" / "host").symlink_to("/etc/hostname")
    (corpus / "public" / "into-hr.md").symlink_to(corpus / "hr" / "bands.md")
    found = discover([corpus / "public"], follow_symlinks=True)
    assert [f.path.name for f in found.files] == ["welcome.md"]  # hr/ is not an ingested path here
    skipped = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(skipped) == {"out.md", "host", "into-hr.md"}
    assert "outside the ingested folders" in skipped["out.md"] and "/etc/hostname" in skipped["host"]


def test_a_link_named_on_the_command_line_is_a_link_too(corpus: Path) -> None:
    link = corpus / "public" / "x.md"
    link.symlink_to(corpus / "hr" / "bands.md")
    found = discover([link])
    assert found.files == [] and found.skipped[0].path == str(link)


def test_a_knowledge_base_inside_the_corpus_is_never_entered(corpus: Path, tmp_path: Path, embedder) -> None:
    settings = Settings(kb=corpus / "zhiku-kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        first = ingest(kb, embedder, [corpus], settings)
        second = ingest(kb, embedder, [corpus], settings)
        assert {Path(d.source).name for d in kb.documents()} == {"bands.md", "welcome.md"}
    assert first.failed == [] and second.failed == [] and second.unchanged == 2
    assert [s.path for s in second.skipped] == [str(settings.kb.resolve())]
    assert discover([settings.kb]).files == [] and discover([settings.kb / "manifest.json"]).files == []


def test_uploads_kept_inside_a_knowledge_base_are_ingested_when_named_and_survive_a_prune_of_the_parent(
    corpus: Path, embedder
) -> None:
    settings = Settings(kb=corpus / "zhiku-kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        upload = write(settings.kb, "uploads/benefits.md", "# Benefits\n\nLunch is free on Fridays.")
        assert ingest(kb, embedder, [upload], settings).added == 1  # what the UI's upload does
        report = ingest(kb, embedder, [corpus], settings, prune=True)
        assert report.removed == 0 and kb.get_document(str(upload)) is not None
        assert report.added == 2 and report.failed == []


def test_any_manifest_json_that_is_not_zhikus_is_a_document(corpus: Path) -> None:
    write(corpus, "app/manifest.json", json.dumps({"name": "an app", "version": "1.0"}))
    assert "manifest.json" in {f.path.name for f in discover([corpus]).files}


def test_vcs_cache_and_temporary_files_are_skipped_also_when_named(corpus: Path) -> None:
    write(corpus, ".git/config", "[core]")
    write(corpus, "src/__pycache__/x.txt", "cached")
    write(corpus, "public/.welcome.md.a1b2.tmp", "half written")
    write(corpus, "public/download.tmp", "partial")
    write(corpus, "repo/.hg/store.txt", "store")
    assert sorted(f.path.name for f in discover([corpus]).files) == ["bands.md", "welcome.md"]
    for named in (corpus / ".git", corpus / ".git" / "config", corpus / "src" / "__pycache__", corpus / "repo" / ".hg"):
        found = discover([named])
        assert found.files == [] and found.failed == [] and "version-control or cache" in found.skipped[0].reason


def test_an_acl_file_or_temporary_file_named_explicitly_is_skipped_with_the_reason(corpus: Path) -> None:
    temporary = write(corpus, "public/.welcome.md.x1y2.tmp", "half written")
    for named, reason in ((corpus / "zhiku-acl.toml", "an ACL file"), (temporary, "a temporary file")):
        found = discover([named])
        assert found.files == [] and reason in found.skipped[0].reason


def test_a_hidden_folder_named_explicitly_is_still_walked(tmp_path: Path) -> None:
    write(tmp_path, ".notes/today.md", "# Today\n\nShip the release.")
    assert [f.path.name for f in discover([tmp_path / ".notes"]).files] == ["today.md"]


def test_a_stored_document_whose_file_became_a_symlink_is_removed(corpus: Path, tmp_path: Path, embedder) -> None:
    settings = Settings(kb=tmp_path / "kb", workers=1)
    link = corpus / "public" / "x.md"
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [corpus / "public"], settings)
        os.rename(corpus / "public" / "welcome.md", link)  # stored as a plain file at this path ...
        ingest(kb, embedder, [corpus / "public"], settings)
        assert kb.get_document(str(link)) is not None
        link.unlink()
        link.symlink_to(corpus / "hr" / "bands.md")  # ... which is now a link into hr/
        report = ingest(kb, embedder, [corpus / "public"], settings)
        assert report.removed == 1 and kb.get_document(str(link)) is None
