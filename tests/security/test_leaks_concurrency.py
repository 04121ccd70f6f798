"""Leak probes under concurrency: searches running while documents are re-ingested, and a final
access check that catches a retriever that lets a restricted hit through.

The corpus: public documents and one ``hr`` document, plus ``rotating.md``, re-ingested round
after round with new text and, every other round, the ``hr`` group (it holds the highest ids, so a
knowledge base that reused ids would give its new chunks the ids of its old, public, ones). Every
version of every file carries its own tag word; a hit is foreign when its text does not carry the
tag of the document version it claims, and a leak when a user outside ``hr`` gets an ``hr`` tag.
The readers fetch chunk texts a little late (as a busy process would), so a commit often lands
between their ranking and their fetch.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from leak_probe import FINANCE_MARKER, PUBLIC_USER, assert_no_marker

from ingest.pipeline import file_hash, ingest
from retrieval.assistant import Assistant
from retrieval.catalog import Catalog
from retrieval.fusion import FusedRetriever
from retrieval.keyword import KeywordRetriever
from retrieval.vector import QueryEmbedder, VectorRetriever
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, Hit, User
from zhiku.settings import Settings

ROUNDS = 10
#: How late the readers fetch the chunks of their ranking, in seconds.
FETCH_DELAY = 0.003
QUERIES = ("travel policy leave days", "office hours and expenses", "salary review leave")
OUTSIDER = User("pat", ("eng",))


def _text(name: str, tag: str) -> str:
    return "\n\n".join(
        f"# {name} part {i}\n\nThe {tag} travel policy covers leave days, office hours and expenses. "
        f"Salary reviews follow the {tag} rules of section {i}."
        for i in range(4)
    )


class Corpus:
    """The files on disk and, for each content hash, the tag its text carries and whether it is hr-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions: dict[str, tuple[str, bool]] = {}
        (root / "hr").mkdir(parents=True)
        for name in ("handbook", "travel", "offices"):
            self.write(f"{name}.md", f"tag{name}")
        self.write("hr/reviews.md", "taghrreviews", restricted=True)

    def write(self, relative: str, tag: str, restricted: bool = False) -> None:
        path = self.root / relative
        path.write_text(_text(relative, tag), encoding="utf-8")
        self.versions[file_hash(path)] = (tag, restricted)

    def rotate(self, round_: int) -> None:
        restricted = round_ % 2 == 1
        acl = '"hr/**" = ["hr"]\n' + ('"rotating.md" = ["hr"]\n' if restricted else "")
        (self.root / "zhiku-acl.toml").write_text(acl, encoding="utf-8")
        self.write("rotating.md", f"tagrot{round_:02d}x", restricted=restricted)

    def check(self, hit: Hit, user: User) -> str | None:
        """What is wrong with ``hit`` for ``user`` (None when nothing is)."""
        if hit.chunk.doc_id != hit.document.id:
            return f"chunk {hit.chunk.id} of document {hit.chunk.doc_id} returned as document {hit.document.id}"
        tag, restricted = self.versions[hit.document.content_hash]
        if tag not in hit.chunk.text:
            return f"chunk {hit.chunk.id} does not carry the tag {tag!r} of {hit.document.source}: {hit.chunk.text[:80]!r}"
        hr_tags = {t for t, r in self.versions.values() if r}
        seen = {t for t in hr_tags if t in hit.chunk.text}
        if seen and "hr" not in user.groups and not user.sees_all:
            return f"{user.name} saw hr-only text {sorted(seen)} in chunk {hit.chunk.id}"
        return None


def _late(fetch: Callable[..., dict]) -> Callable[..., dict]:
    def fetch_late(*args: object) -> dict:
        time.sleep(FETCH_DELAY)
        return fetch(*args)

    return fetch_late


def _retriever(kb: KnowledgeBase, embedder) -> FusedRetriever:
    catalog = Catalog(kb)
    return FusedRetriever([VectorRetriever(kb, QueryEmbedder(embedder), catalog), KeywordRetriever(kb, catalog)])


@pytest.mark.slow
def test_searches_during_re_ingests_see_no_errors_no_foreign_hits_and_no_restricted_text(tmp_path: Path, embedder) -> None:
    corpus = Corpus(tmp_path / "corpus")
    corpus.rotate(0)
    settings = Settings(kb=tmp_path / "kb", embedding_model="minilm", workers=0, extractor="none")
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        ingest(kb, embedder, [corpus.root], settings)
    problems: list[str] = []
    searches = [0]
    stop = threading.Event()

    def search(kb: KnowledgeBase, user: User) -> None:
        retriever = _retriever(kb, embedder)
        while not stop.is_set():
            for query in QUERIES:
                try:
                    hits = retriever.retrieve(query, 20, user)
                except Exception as exc:  # noqa: BLE001 - every error is a finding here
                    problems.append(f"{type(exc).__name__}: {exc}")
                    continue
                problems.extend(p for p in (corpus.check(h, user) for h in hits) if p)
                searches[0] += 1

    with KnowledgeBase.open(settings.kb, embedder.name) as shared, \
            KnowledgeBase.open(settings.kb, embedder.name) as elsewhere:  # as if in another process
        for reader_kb in (shared, elsewhere):
            reader_kb.chunks_by_ids = _late(reader_kb.chunks_by_ids)  # type: ignore[method-assign]
        readers = [threading.Thread(target=search, args=args) for args in (
            (shared, OUTSIDER), (shared, LOCAL_USER), (shared, OUTSIDER), (elsewhere, OUTSIDER))]
        for reader in readers:
            reader.start()
        try:
            for round_ in range(1, ROUNDS + 1):
                corpus.rotate(round_)
                report = ingest(shared, embedder, [corpus.root], settings)
                assert report.updated == 1 and not report.failed
        finally:
            stop.set()
            for reader in readers:
                reader.join()
    assert searches[0] > 20, "the searches did not run alongside the ingests"
    assert not problems, f"{len(problems)} problems in {searches[0]} searches, first: {problems[:5]}"


class _LeakyRetriever:
    """A retriever with a bug: it returns every chunk it finds, whoever asks."""

    name = "vector"

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        hits = []
        for doc in self.kb.documents():
            for chunk in self.kb.chunks_of(doc.id):
                hits.append(Hit(chunk=chunk, document=doc, score=1.0, found_by={self.name: len(hits) + 1}))
        return hits[:k]


def test_fusion_drops_a_restricted_hit_a_buggy_retriever_let_through(leak_kb: Path, embedder) -> None:
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        fused = FusedRetriever([_LeakyRetriever(kb)])
        outsider_hits = fused.retrieve("acquisition plan", 20, PUBLIC_USER)
        assert outsider_hits
        assert_no_marker([h.chunk.text for h in outsider_hits], PUBLIC_USER)
        insider = User("finn", ("finance",))
        assert FINANCE_MARKER in " ".join(h.chunk.text for h in fused.retrieve("acquisition plan", 20, insider))


def test_the_assistant_drops_a_restricted_hit_whatever_its_retriever_returns(leak_kb: Path, embedder) -> None:
    settings = Settings(kb=leak_kb, embedding_model="minilm", llm="extractive")
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        assistant = Assistant(settings, kb, embedder, llm=None)
        assistant._retrievers["vector"] = _LeakyRetriever(kb)  # the buggy one, as if built for this mode
        hits = assistant.search("acquisition plan", mode="vector", k=20, user=PUBLIC_USER)
        assert hits
        assert_no_marker([h.chunk.text for h in hits], PUBLIC_USER)
        answer = assistant.ask("What is the acquisition plan?", user=PUBLIC_USER, mode="vector", k=20)
        assert_no_marker(answer, PUBLIC_USER)
        finance = assistant.search("acquisition plan", mode="vector", k=20, user=User("finn", ("finance",)))
        assert FINANCE_MARKER in " ".join(h.chunk.text for h in finance)
