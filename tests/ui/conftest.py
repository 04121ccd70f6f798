"""A tiny knowledge base for the UI tests: three real files, real MiniLM vectors, a few triples.

Built directly with ``put_document`` (no parsing) so it costs one embedding call; one document is
restricted to the ``hr`` group so access control shows on every page. Each test that writes (users,
feedback, ingest) gets its own copy.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import PUBLIC, Chunk, Document, Triple

#: (file name, title, groups, [(heading, text, [(subject, relation, object)])])
CORPUS = [
    ("travel-policy.md", "Travel policy", (PUBLIC,), [
        ("Hotels", "Employees may book hotels up to 180 euros per night in Berlin and 150 euros elsewhere.",
         [("Travel policy", "sets_limit", "Hotels"), ("Hotels", "located_in", "Berlin")]),
        ("Flights", "Flights longer than six hours may be booked in business class with approval from Finance.",
         [("Finance", "approves", "Business class")]),
    ]),
    ("acme-profile.md", "Acme Robotics profile", (PUBLIC,), [
        ("Company", "Acme Robotics was founded in 2011 by Maria Keller and is headquartered in Berlin.",
         [("Maria Keller", "founded", "Acme Robotics"), ("Acme Robotics", "headquartered_in", "Berlin")]),
        ("Products", "Acme Robotics builds warehouse robots called Shelfmate.",
         [("Acme Robotics", "builds", "Shelfmate")]),
    ]),
    ("salaries.md", "Salary bands", ("hr",), [
        ("Bands", "Senior engineers at Acme Robotics earn between 90000 and 120000 euros.",
         [("Acme Robotics", "pays", "Senior engineers")]),
    ]),
]


@pytest.fixture(scope="session")
def ui_kb_template(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("ui")
    files = root / "files"
    files.mkdir()
    with KnowledgeBase.open(root / "kb", embedder.name, embedder.dimension) as kb:
        for name, title, groups, sections in CORPUS:
            path = files / name
            path.write_text("\n\n".join(f"# {h}\n\n{text}" for h, text, _ in sections), encoding="utf-8")
            chunks = [Chunk(text=text, position=i, n_tokens=len(text.split()), page=1, heading_path=(title, h))
                      for i, (h, text, _) in enumerate(sections)]
            triples = [[Triple(s, r, o, subject_type="entity", object_type="entity") for s, r, o in facts]
                       for _, _, facts in sections]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            doc = Document(source=str(path), content_hash=digest, title=title, kind="md", size=path.stat().st_size,
                           pages=1, groups=groups)
            kb.put_document(doc, chunks, embedder.embed([c.text for c in chunks]), triples)
        kb.save_vectors()
    return root / "kb"


@pytest.fixture()
def ui_kb(ui_kb_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny knowledge base, configured for the app through ``ZHIKU_KB``."""
    kb = tmp_path / "kb"
    shutil.copytree(ui_kb_template, kb)
    monkeypatch.setenv("ZHIKU_KB", str(kb))
    monkeypatch.setenv("ZHIKU_LLM", "extractive")
    monkeypatch.chdir(tmp_path)
    return kb
