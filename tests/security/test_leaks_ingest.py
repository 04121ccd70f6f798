"""Leak probes for ingest: however the leak corpus is ingested, the HR marker never reaches the public.

Ingesting the parent folder, the ``hr/`` subfolder or one HR file must label the HR document the
same way; a symbolic link in the public part pointing into ``hr/`` must never expose it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from leak_probe import HR_MARKER, HR_USER, PUBLIC_USER, assert_no_marker, build_leak_corpus
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_leak_corpus(tmp_path / "corpus").resolve()


def visible_text(kb: KnowledgeBase, user: User) -> str:
    """Everything ``user`` can see: document titles, sources, metadata and chunk text."""
    parts = []
    for document in kb.documents(user):
        parts += [document.source, document.title, str(document.metadata)]
        parts += [c.text for c in kb.chunks_of(document.id)]
    return "\n".join(parts)


@pytest.mark.parametrize("way", ["parent", "subfolder", "single file", "parent then subfolder then file"])
def test_the_hr_marker_stays_hidden_whichever_path_is_ingested(way: str, corpus: Path, tmp_path: Path, embedder) -> None:
    hr_file = corpus / "hr" / "salary_bands.md"
    paths = {"parent": [[corpus]], "subfolder": [[corpus / "hr"]], "single file": [[hr_file]],
             "parent then subfolder then file": [[corpus], [corpus / "hr"], [hr_file]]}[way]
    settings = Settings(kb=tmp_path / "kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        for given in paths:
            ingest(kb, embedder, given, settings)
            assert_no_marker(visible_text(kb, PUBLIC_USER), PUBLIC_USER)
        assert HR_MARKER in visible_text(kb, HR_USER)


@pytest.mark.parametrize("follow", [False, True])
def test_a_public_symlink_into_hr_never_exposes_the_marker(follow: bool, corpus: Path, tmp_path: Path, embedder) -> None:
    public = corpus / "public"
    public.mkdir()
    shutil.copy(corpus / "handbook.md", public / "handbook.md")
    (public / "bands.md").symlink_to(corpus / "hr" / "salary_bands.md")
    (public / "hr").symlink_to(corpus / "hr", target_is_directory=True)
    settings = Settings(kb=tmp_path / "kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        for given in ([public], [corpus]):
            options = {"follow_symlinks": True} if follow else {}  # the default is what most runs use
            report = ingest(kb, embedder, given, settings, **options)
            assert_no_marker(visible_text(kb, PUBLIC_USER), PUBLIC_USER)
            assert_no_marker(report.to_json(), PUBLIC_USER)
        assert HR_MARKER in visible_text(kb, HR_USER)
