"""Leak probes for entity attributes (literal values such as "Budget: EUR 2.4 million"): a user sees
the attributes the documents they may read state, on every surface (the library, ``zhiku graph``,
exports), and never one that only a restricted document states about a public entity."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from leak_probe import FINANCE_PERSON, FINANCE_USER, HR_USER, PUBLIC_USER, assert_no_marker

from kg.graph import KnowledgeGraph, load_graph
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings

OUTSIDERS = [PUBLIC_USER, HR_USER]
#: The restricted value: only the finance document states it, about an entity a public one names.
SECRET_BUDGET = "EUR 2.4 million"
FILES = {
    "atlas.md": "# Atlas migration\n\nOwner: Li Na\nGo-live: 1 June 2027\n",
    "finance/atlas_budget.md": f"# Atlas migration\n\nBudget: {SECRET_BUDGET}\nSponsor: {FINANCE_PERSON}\n",
}


@pytest.fixture(scope="module")
def label_kb(tmp_path_factory, embedder) -> Path:
    """A public slide and a finance slide under the same title, ingested with the default extractor."""
    from ingest.pipeline import ingest
    from kg.extract import load_extractor

    root = tmp_path_factory.mktemp("labels")
    for relative, text in FILES.items():
        (root / "corpus" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / relative).write_text(text, encoding="utf-8")
    (root / "corpus" / "zhiku-acl.toml").write_text('"finance/**" = ["finance"]\n', encoding="utf-8")
    settings = Settings(kb=root / "kb", embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [root / "corpus"], settings, extractor=load_extractor(settings))
    assert not report.failed, report.failed
    return settings.kb


@pytest.fixture(scope="module")
def graph(label_kb: Path, embedder) -> KnowledgeGraph:
    with KnowledgeBase.open(label_kb, embedder.name) as kb:
        return load_graph(kb)


def values(graph: KnowledgeGraph, user: User) -> dict[str, str]:
    return {a.relation: a.object for a in graph.attributes("Atlas migration", user)}


@pytest.mark.parametrize("user", OUTSIDERS, ids=lambda u: u.name)
def test_an_outsider_sees_only_the_public_attributes_of_a_shared_entity(graph, user):
    assert values(graph, user) == {"Go-live": "1 June 2027"}
    node = graph.for_user(user).graph.nodes[graph.require("Atlas migration", user)]
    assert SECRET_BUDGET not in str(node) and FINANCE_PERSON not in str(node)
    assert_no_marker(graph.neighbors("Atlas migration", 2, user), user)
    assert graph.stats(user)["attributes"] == 1


def test_the_finance_user_sees_the_budget_with_its_finance_source(graph):
    assert values(graph, FINANCE_USER) == {"Go-live": "1 June 2027", "Budget": SECRET_BUDGET}
    [budget] = [a for a in graph.attributes("Atlas migration", FINANCE_USER) if a.relation == "Budget"]
    assert graph.doc_groups[budget.doc_id] == ("finance",)


@pytest.mark.parametrize("user", [PUBLIC_USER, HR_USER, FINANCE_USER], ids=lambda u: u.name)
def test_every_attribute_a_user_gets_comes_from_a_document_they_may_read(graph, user):
    view = graph.for_user(user)
    for key in view.graph:
        assert all(user.can_see(graph.doc_groups[a.doc_id]) for a in view.attributes(key))


def test_the_leak_corpus_attributes_stay_with_their_readers(leak_kb, embedder):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        graph = load_graph(kb)
    for user in (*OUTSIDERS, FINANCE_USER):
        view = graph.for_user(user)
        found = [a for key in view.graph for a in view.attributes(key)]
        assert all(user.can_see(graph.doc_groups[a.doc_id]) for a in found)
        if user is not FINANCE_USER:
            assert_no_marker(found, user)
            assert "240 million" not in str(found)


def test_zhiku_graph_neighbors_and_export_print_only_readable_attributes(label_kb, capsys, tmp_path):
    def run(*who: str) -> str:
        assert main(["graph", "neighbors", "Atlas migration", "--kb", str(label_kb), "--json", *who]) == 0
        out = capsys.readouterr().out
        assert main(["graph", "neighbors", "Atlas migration", "--kb", str(label_kb), *who]) == 0
        out += capsys.readouterr().out
        assert main(["graph", "export", str(tmp_path / "g.json"), "--kb", str(label_kb), "--json", *who]) == 0
        capsys.readouterr()
        return out + (tmp_path / "g.json").read_text(encoding="utf-8")

    public = run("--groups", "eng")
    assert SECRET_BUDGET not in public
    assert_no_marker(public, PUBLIC_USER)
    assert "1 June 2027" in public
    finance = run("--groups", "finance")
    assert SECRET_BUDGET in finance and FINANCE_PERSON in finance
    assert main(["graph", "neighbors", "Atlas migration", "--kb", str(label_kb), "--json", "--groups", "finance"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {a["relation"] for a in payload["attributes"]} == {"Go-live", "Budget"}
