"""Access groups come from where a file lies, never from which path an ingest named."""
from __future__ import annotations

from corpus_files import write
from pathlib import Path

import pytest

from ingest.acl import AclRefusal, AclResolver, narrowest
from ingest.pipeline import Regrouped, discover, ingest
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings




@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    write(root, "zhiku-acl.toml", '"hr/**" = ["hr"]\n"finance/**" = ["finance"]\n')
    write(root, "hr/bands.md", "# Bands\n\nThe L5 band pays 90,000 EUR a year.")
    write(root, "hr/handbook/leave.md", "# Leave\n\nEmployees get 30 days of leave.")
    write(root, "hr/handbook/zhiku-acl.toml", '"*" = ["hr", "managers"]\n')
    write(root, "finance/plan.md", "# Plan\n\nThe budget grows 10 percent.")
    write(root, "welcome.md", "# Welcome\n\nThe office opens at 8am.")
    return root


def groups_by_name(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    return {Path(d.source).name: d.groups for d in kb.documents()}


def test_parent_subfolder_and_single_file_discoveries_give_identical_groups(corpus: Path) -> None:
    single_files = [corpus / "hr" / "bands.md", corpus / "hr" / "handbook" / "leave.md"]
    for paths in ([corpus], [corpus / "hr"], [corpus / "hr" / "handbook"], single_files):
        groups = {f.path.name: f.groups for f in discover(paths).files}
        assert groups.get("leave.md") == ("hr", "managers"), paths
        assert groups.get("bands.md", ("hr",)) == ("hr",), paths


def test_reingesting_a_subfolder_or_one_file_keeps_the_restricted_groups(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    settings = Settings(kb=tmp_path / "kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [corpus], settings, groups=["staff"])
        first = groups_by_name(kb)
        assert first == {"bands.md": ("hr",), "leave.md": ("hr", "managers"), "plan.md": ("finance",),
                         "welcome.md": ("staff",)}
        ingest(kb, embedder, [corpus / "hr"], settings)
        ingest(kb, embedder, [corpus / "hr" / "bands.md"], settings, groups=["everyone"])
        assert groups_by_name(kb) == first


def test_an_inner_acl_file_refines_an_outer_one_and_globs_are_relative_to_their_own_folder(corpus: Path) -> None:
    write(corpus, "hr/zhiku-acl.toml", '"public/*" = ["*"]\n')
    write(corpus, "hr/public/holidays.md", "# Holidays\n\nThe office closes on 24 December.")
    groups = {f.path.name: f.groups for f in discover([corpus / "hr"]).files}
    assert groups["holidays.md"] == ("*",)  # the inner rule wins over the outer "hr/**"
    assert groups["bands.md"] == ("hr",)  # the inner file matches nothing here: the outer rule stays


def test_groups_option_applies_only_where_no_rule_matches(corpus: Path) -> None:
    groups = {f.path.name: f.groups for f in discover([corpus], fallback=("staff",)).files}
    assert groups == {"bands.md": ("hr",), "leave.md": ("hr", "managers"), "plan.md": ("finance",),
                      "welcome.md": ("staff",)}


def test_acl_edit_updates_groups_without_reembedding(corpus: Path, tmp_path: Path, embedder) -> None:
    settings = Settings(kb=tmp_path / "kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [corpus / "hr"], settings)
        bands = kb.get_document(str(corpus / "hr" / "bands.md"))
        chunk_ids = [c.id for c in kb.chunks_of(bands.id)]
        vectors = kb.vectors_of(chunk_ids)
        write(corpus, "zhiku-acl.toml", '"hr/**" = ["hr", "executives"]\n')
        report = ingest(kb, embedder, [corpus / "hr" / "bands.md"], settings)
        assert (report.unchanged, report.added, report.updated) == (1, 0, 0)
        assert report.regrouped == [Regrouped(str(corpus / "hr" / "bands.md"), ("hr",), ("hr", "executives"))]
        after = kb.get_document(str(corpus / "hr" / "bands.md"))
        assert after.groups == ("hr", "executives")
        assert [c.id for c in kb.chunks_of(after.id)] == chunk_ids
        assert (kb.vectors_of(chunk_ids) == vectors).all()


def test_a_file_that_breaks_in_the_same_edit_as_its_acl_keeps_its_old_text_under_the_narrower_groups(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    settings = Settings(kb=tmp_path / "kb", workers=1)
    bands = str(corpus / "hr" / "bands.md")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        write(corpus, "zhiku-acl.toml", '"hr/**" = ["hr", "managers"]\n')
        ingest(kb, embedder, [corpus / "hr"], settings)
        (corpus / "hr" / "bands.md").write_bytes(bytes(range(256)) * 64)  # the new version cannot be read
        write(corpus, "zhiku-acl.toml", '"hr/**" = ["hr"]\n')  # ...and the ACL is tightened in the same edit
        report = ingest(kb, embedder, [corpus / "hr"], settings)
        assert [f.path for f in report.failed] == [bands]
        assert kb.get_document(bands).groups == ("hr",)  # tightened at once; the old text is kept
        assert report.regrouped == [Regrouped(bands, ("hr", "managers"), ("hr",))]
        write(corpus, "zhiku-acl.toml", '"hr/**" = ["hr", "board"]\n')  # loosened while still unreadable
        ingest(kb, embedder, [corpus / "hr"], settings)
        assert kb.get_document(bands).groups == ("hr",)  # the board never sees the old text


def test_a_file_whose_text_and_acl_change_together_is_reported_as_regrouped(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    settings = Settings(kb=tmp_path / "kb", workers=1)
    bands = str(corpus / "hr" / "bands.md")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [corpus / "hr"], settings)
        write(corpus, "hr/bands.md", "# Bands\n\nThe L6 band pays 110,000 EUR a year.")
        write(corpus, "zhiku-acl.toml", '"hr/**" = ["hr", "executives"]\n')
        report = ingest(kb, embedder, [corpus / "hr" / "bands.md"], settings)
        assert report.updated == 1
        assert report.regrouped == [Regrouped(bands, ("hr",), ("hr", "executives"))]  # so the audit log has it


def test_the_narrowest_groups_are_those_both_acls_allow() -> None:
    assert narrowest(("*",), ("hr",)) == ("hr",)
    assert narrowest(("hr",), ("*",)) == ("hr",)
    assert narrowest(("hr", "managers"), ("managers", "board")) == ("managers",)
    assert narrowest(("sales",), ("legal",)) == ()  # nobody but those who see everything


def test_a_broken_acl_file_above_a_file_refuses_it_whichever_path_is_named(corpus: Path) -> None:
    write(corpus, "zhiku-acl.toml", '"hr/**" = "hr"\n')
    for paths in ([corpus], [corpus / "hr"], [corpus / "hr" / "bands.md"]):
        found = discover(paths)
        assert not [f for f in found.files if f.path.name == "bands.md"], paths
        (failure,) = found.failed
        assert failure.path == str(corpus / "zhiku-acl.toml") and "list of group names" in failure.error
        assert failure.stage == "discover" and "not ingested until it is fixed" in failure.error


def test_resolver_reads_each_acl_file_once_and_remembers_a_broken_one(corpus: Path) -> None:
    resolver = AclResolver()
    assert resolver.groups_for(corpus / "hr" / "bands.md") == ("hr",)
    write(corpus, "zhiku-acl.toml", "not toml [")
    assert resolver.groups_for(corpus / "finance" / "plan.md") == ("finance",)  # cached for this walk
    refusal = AclResolver().groups_for(corpus / "finance" / "plan.md")
    assert isinstance(refusal, AclRefusal) and "not valid TOML" in refusal.reason
