"""Access control: a user never receives, in any mode, a chunk or a fact of a document outside their groups."""
from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_corpus import EVERYONE, HR, OUTSIDER, build_kb
from retrieval import MODES, GraphRetriever, as_llama_index, build_retriever
from zhiku.kb import KnowledgeBase
from zhiku.records import PUBLIC, Chunk, Document, User
from zhiku.settings import Settings

MODES_WITHOUT_RERANKER = [m for m in MODES if m != "hybrid+rerank"]
#: Questions aimed squarely at the restricted documents (salaries.md: hr; deploy.md: eng).
PROBES = [
    "Who leads Project Falcon?",
    "What is the salary band for senior engineers?",
    "Jane Smith",
    "confidential salary euros",
    "Who manages the Kubernetes clusters?",
]


def sources(hits) -> set[str]:
    return {Path(h.document.source).name for h in hits}


def fact_docs(hits) -> set[int]:
    return {f.doc_id for h in hits for f in h.facts}


@pytest.fixture
def restricted_ids(small_kb) -> dict[str, int]:
    return {Path(d.source).name: d.id for d in small_kb.documents() if PUBLIC not in d.groups}


@pytest.mark.parametrize("mode", MODES_WITHOUT_RERANKER)
def test_outsiders_never_see_restricted_chunks_or_facts(small_kb, embedder, tmp_path, restricted_ids, mode):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), mode)
    for question in PROBES:
        hits = retriever.retrieve(question, 10, OUTSIDER)
        assert not sources(hits) & {"salaries.md", "deploy.md"}, (mode, question)
        assert not fact_docs(hits) & set(restricted_ids.values()), (mode, question)
        assert all("Falcon" not in f.subject for h in hits for f in h.facts)


@pytest.mark.parametrize("mode", MODES_WITHOUT_RERANKER)
def test_members_see_their_groups_documents_but_no_others(small_kb, embedder, tmp_path, mode):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), mode)
    found = set()
    for question in PROBES:
        hits = retriever.retrieve(question, 10, HR)
        found |= sources(hits)
        assert "deploy.md" not in sources(hits)
    assert "salaries.md" in found


def test_vector_search_still_fills_k_when_most_chunks_are_hidden(small_kb, embedder, tmp_path):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), "vector")
    hits = retriever.retrieve("Project Falcon salary band", 5, OUTSIDER)
    assert len(hits) == 5  # the five public chunks, found by widening the search past the hidden ones


def test_graph_facts_of_the_neighbourhood_are_filtered_too(small_kb, embedder):
    retriever = GraphRetriever(small_kb, embedder)
    _, facts = retriever.retrieve_with_facts("Jane Smith", 10, OUTSIDER)
    assert facts and all(f.subject != "Project Falcon" for f in facts)
    _, facts = retriever.retrieve_with_facts("Jane Smith", 10, HR)
    assert any(f.subject == "Project Falcon" for f in facts)


def test_a_user_without_groups_sees_only_public_documents(small_kb, embedder, tmp_path):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), "hybrid")
    nobody = User("nobody", ())
    assert sources(retriever.retrieve("salary Kubernetes vacation", 10, nobody)) <= {"handbook.md", "zh-handbook.md"}


def test_llama_index_adapter_filters_for_its_user(small_kb, embedder, tmp_path):
    retriever = build_retriever(small_kb, embedder, Settings(kb=tmp_path), "hybrid")
    nodes = as_llama_index(retriever, OUTSIDER, k=10).retrieve("Who leads Project Falcon?")
    assert nodes and all(Path(n.node.metadata["source"]).name not in {"salaries.md", "deploy.md"} for n in nodes)


def test_changing_a_documents_groups_takes_effect_on_the_next_query(tmp_path, embedder):
    root = build_kb(tmp_path / "kb", embedder)
    with KnowledgeBase.open(root, embedder.name) as kb:
        retriever = build_retriever(kb, embedder, Settings(kb=root), "hybrid")
        assert "salaries.md" in sources(retriever.retrieve("Project Falcon", 5, EVERYONE))
        assert "salaries.md" not in sources(retriever.retrieve("Project Falcon", 5, OUTSIDER))
        text = "Project Falcon has been cancelled."
        kb.put_document(Document(source="/corpus/salaries.md", content_hash="v2", groups=(PUBLIC,)),
                        [Chunk(text=text, position=0, n_tokens=5)], embedder.embed([text]))
        assert "salaries.md" in sources(retriever.retrieve("Project Falcon", 5, OUTSIDER))
        kb.put_document(Document(source="/corpus/salaries.md", content_hash="v2", groups=("hr",)),
                        [Chunk(text=text, position=0, n_tokens=5)], embedder.embed([text]))
        assert "salaries.md" not in sources(retriever.retrieve("Project Falcon", 5, OUTSIDER))


def test_the_cli_user_comes_from_groups_an_account_or_is_the_local_user(small_kb):
    from argparse import Namespace

    from zhiku.accounts import add_user, remove_user
    from zhiku.cli.common import UsageError
    from zhiku.cli.search import user_from_args

    assert user_from_args(Namespace(user=None, groups=None), small_kb) == User("local", sees_all=True)
    assert user_from_args(Namespace(user=None, groups="hr, eng"), small_kb) == User("cli", ("hr", "eng"))
    assert user_from_args(Namespace(user="x", groups=""), small_kb) == User("x", ())
    add_user(small_kb, "hana", "secret-for-hana", ("hr",))
    try:  # the knowledge base is shared by the session: leave it without accounts
        assert user_from_args(Namespace(user="hana", groups=None), small_kb) == User("hana", ("hr",))
    finally:
        remove_user(small_kb, "hana")
    with pytest.raises(UsageError, match="no user named 'ghost'.*zhiku user add ghost"):
        user_from_args(Namespace(user="ghost", groups=None), small_kb)


def test_zhiku_search_prints_only_what_the_user_may_see(small_kb_path, capsys):
    import json

    from zhiku.cli import main

    base = ["search", "Who leads Project Falcon?", "--kb", str(small_kb_path), "--k", "3", "--json"]
    assert main(base + ["--mode", "keyword"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["rank"] for h in hits] == [1] and Path(hits[0]["source"]).name == "salaries.md"
    assert {"rank", "score", "found_by", "source", "title", "page", "section", "chunk_id", "text"} <= set(hits[0])
    assert main(base + ["--groups", "eng"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and all(Path(h["source"]).name != "salaries.md" for h in hits)
    assert main(["search", " ", "--kb", str(small_kb_path)]) == 2
    assert "empty" in capsys.readouterr().err


def test_the_sample_corpus_keeps_hr_files_from_outsiders_in_every_mode(sample_kb, embedder):
    """End to end over the ingested sample corpus, whose zhiku-acl.toml restricts hr/ to group hr."""
    with KnowledgeBase.open(sample_kb, embedder.name) as kb:
        for mode in MODES_WITHOUT_RERANKER:
            retriever = build_retriever(kb, embedder, Settings(kb=sample_kb), mode)
            question = "What is the salary band of a Senior Engineer E3 in Germany?"
            outsider = [h.document.source for h in retriever.retrieve(question, 10, OUTSIDER)]
            assert not [s for s in outsider if "/hr/" in s or "/finance/" in s], mode
            if mode in ("vector", "keyword", "hybrid"):
                hr = [h.document.source for h in retriever.retrieve(question, 5, HR)]
                assert any(s.endswith("hr/salary_bands_2026.csv") for s in hr), (mode, hr)
        hybrid = build_retriever(kb, embedder, Settings(kb=sample_kb), "hybrid")
        founders = hybrid.retrieve("Who founded Kestrel Robotics?", 3, OUTSIDER)
        assert any("founded" in h.chunk.text and "Anna Weber" in h.chunk.text for h in founders)
