"""The graph built from a real knowledge base: structure, persistence, queries and access control."""
import json
import os
import pickle

import networkx as nx
import pytest

from kg.graph import (
    FORMAT_VERSION, GRAPH_FILE, GRAPH_STAMP, LEGACY_GRAPH_FILE, KnowledgeGraph, UnknownEntityError, load_graph,
    source_state,
)
from zhiku.errors import UsageError
from zhiku.records import Triple, User

TYPES = {"Mary Chen": "PERSON", "Acme Robotics": "ORG", "Initech": "ORG", "Berlin": "GPE"}
ACME_FACTS = [
    [("Mary Chen", "CTO of", "Acme Robotics"), ("Acme Robotics", "headquartered in", "Berlin")],
    [("Acme Robotics Inc.", "acquired", "Initech"), ("AR", "partnered with", "Globex")],
]
SECRET_FACTS = [[("Initech", "supplies", "Umbrella Ltd"), ("Umbrella Ltd", "based in", "Berlin")]]


@pytest.fixture
def kb(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/acme.md", ACME_FACTS, types=TYPES)
    put(kb, "/docs/secret.md", SECRET_FACTS, groups=("finance",), types=TYPES)
    return kb


def test_nodes_are_resolved_entities_with_type_aliases_mentions_and_documents(kb):
    g = load_graph(kb)
    acme = g.entity(g.require("Acme Robotics"))
    assert acme.aliases == {"Acme Robotics", "Acme Robotics Inc.", "AR"}
    assert acme.type == "ORG" and acme.mentions == 4
    assert g.entity(g.require("Initech")).doc_ids == {1, 2}
    assert g.graph.number_of_nodes() == 6  # Mary Chen, Acme, Berlin, Initech, Globex, Umbrella


def test_every_edge_carries_its_relation_chunk_and_document(kb):
    g = load_graph(kb)
    chunk_ids = {c.id for c in kb.chunks_of(1)}
    edges = [d for u, v, d in g.graph.edges(data=True) if d["doc_id"] == 1]
    assert len(edges) == 4
    assert {e["chunk_id"] for e in edges} == chunk_ids
    assert {e["relation"] for e in edges} == {"CTO of", "headquartered in", "acquired", "partnered with"}


def test_the_graph_is_saved_with_a_stamp_and_reloaded_while_current(kb):
    g = load_graph(kb)
    assert (kb.root / GRAPH_FILE).exists()
    assert json.loads((kb.root / GRAPH_STAMP).read_text())["epoch"] == kb.epoch
    again = load_graph(kb)
    assert again is not g and nx.utils.graphs_equal(again.graph, g.graph)
    assert load_graph(kb, current=g) is g


def test_a_write_makes_the_graph_stale_and_the_next_load_rebuilds_it(kb, put):
    g = load_graph(kb)
    put(kb, "/docs/new.md", [[("Globex", "based in", "Paris")]])
    fresh = load_graph(kb, current=g)
    assert fresh is not g and fresh.epoch == kb.epoch
    assert fresh.entity_key("Paris") is not None and g.entity_key("Paris") is None


def test_writes_that_leave_triples_and_documents_alone_do_not_rebuild(kb, monkeypatch):
    g = load_graph(kb)
    with kb.transaction() as conn:
        conn.execute("INSERT INTO feedback (created_at, user, question, answer, rating) VALUES (0, 'u', 'q', 'a', 1)")
    monkeypatch.setattr(KnowledgeGraph, "build", lambda kb: pytest.fail("rebuilt for an unrelated write"))
    assert load_graph(kb, current=g) is g and g.epoch == kb.epoch
    again = load_graph(kb)  # a fresh process: the saved graph, its stamp moved to the new epoch
    assert again.epoch == kb.epoch and json.loads((kb.root / GRAPH_STAMP).read_text())["epoch"] == kb.epoch


def test_replaced_triples_with_the_same_count_are_noticed(kb):
    g = load_graph(kb)
    chunk = kb.chunks_of(1)[0]
    kb.replace_triples({1: [Triple("Mary Chen", "CTO of", "Hooli", chunk_id=chunk.id),
                            Triple("Hooli", "based in", "Paris", chunk_id=chunk.id),
                            Triple("Hooli", "owns", "Initech", chunk_id=chunk.id),
                            Triple("Hooli", "owns", "Globex", chunk_id=chunk.id)]})
    fresh = load_graph(kb, current=g)
    assert fresh is not g and fresh.entity_key("Hooli") == "hooli"


def test_a_damaged_graph_file_is_rebuilt(kb):
    load_graph(kb)
    (kb.root / GRAPH_FILE).write_bytes(b"not a pickle")
    assert load_graph(kb).entity_key("Berlin") == "berlin"


def test_removing_a_document_drops_its_edges_and_entities_left_without_mentions(kb):
    kb.remove_document("/docs/secret.md")
    g = load_graph(kb)
    assert g.entity_key("Umbrella Ltd") is None
    assert g.entity(g.require("Initech")).doc_ids == {1}
    assert all(d != 2 for _, _, d in g.graph.edges(data="doc_id"))


def test_updating_a_document_replaces_its_facts(kb, put):
    put(kb, "/docs/secret.md", [[("Initech", "supplies", "Hooli")]], groups=("finance",))
    g = load_graph(kb)
    assert g.entity_key("Umbrella Ltd") is None and g.entity_key("Hooli") is not None


def test_neighbors_within_k_hops_nearest_first(kb):
    g = load_graph(kb)
    one = g.neighbors("Mary Chen", hops=1)
    assert [(t.subject, t.relation, t.object) for t in one] == [("Mary Chen", "CTO of", "Acme Robotics")]
    two = g.neighbors("mary chen", hops=2)
    assert two[0] == one[0]
    assert {t.object for t in two} >= {"Berlin", "Initech", "Globex"}
    assert all(t.chunk_id is not None and t.doc_id is not None for t in two)
    assert len(g.neighbors("Mary Chen", hops=2, limit=2)) == 2
    assert g.distances("Mary Chen", hops=2)["berlin"] == 2


def test_path_between_two_entities_follows_edges_either_way(kb):
    g = load_graph(kb)
    path = g.path("Mary Chen", "Umbrella Ltd")
    assert len(path) == 3  # via Acme Robotics and then Initech or Berlin
    assert path[0].subject == "Mary Chen" and path[-1].subject == "Umbrella Ltd" or path[-1].object == "Umbrella Ltd"
    assert all(t.chunk_id is not None for t in path)
    with pytest.raises(UnknownEntityError, match="Nobody"):
        g.path("Mary Chen", "Nobody")


def test_subgraph_top_entities_and_entities_of_a_document(kb):
    g = load_graph(kb)
    sub = g.subgraph(["Globex"], hops=1)
    assert set(sub) == {"globex", "acme robotics"}
    top = g.top_entities(2)
    assert top[0][0] == "acme robotics"
    assert g.top_entities(1, by="pagerank")[0][0] in g.graph
    assert g.entities_of(2) == ["berlin", "initech", "umbrella"]


def test_link_finds_entities_named_in_a_question_by_any_alias():
    facts = [
        ("Acme Robotics", "based in", "Berlin"),
        ("Acme Robotics Europe", "part of", "Acme Robotics"),
        ("华为技术有限公司", "位于", "深圳"),
    ]
    g = KnowledgeGraph.from_triples([Triple(s, r, o, doc_id=1) for s, r, o in facts], {1: ("*",)})
    assert g.link("Who runs ACME ROBOTICS in berlin?") == ["acme robotics", "berlin"]
    assert g.link("What does Acme Robotics Europe sell?") == ["acme robotics europe"]
    assert g.link("华为的总部在深圳吗？") == ["华为", "深圳"]
    assert g.link("nothing relevant here") == []
    assert "Acme Robotics" in g.names()["acme robotics"]


def test_a_user_never_sees_facts_only_supported_by_documents_they_cannot_read(kb):
    g = load_graph(kb)
    outsider = User("bob", groups=("sales",))
    insider = User("eve", groups=("finance",))
    assert g.entity_key("Umbrella Ltd", outsider) is None
    assert g.entity_key("Umbrella Ltd", insider) == "umbrella"
    assert all(t.doc_id == 1 for t in g.neighbors("Initech", hops=2, user=outsider))
    assert any(t.object == "Umbrella Ltd" for t in g.neighbors("Initech", user=insider))
    assert g.link("Is Umbrella Ltd in Berlin?", user=outsider) == ["berlin"]
    assert g.entities_of(2, user=outsider) == []
    assert g.stats(outsider)["relations"] == 4 and g.stats()["relations"] == 6
    with pytest.raises(UnknownEntityError):
        g.path("Mary Chen", "Umbrella Ltd", user=outsider)
    assert "umbrella" not in g.subgraph(["Initech"], hops=2, user=outsider)


def test_export_writes_graphml_and_node_link_json_with_scalar_attributes(kb, tmp_path):
    g = load_graph(kb)
    g.export(tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert back.number_of_nodes() == 6 and back.nodes["acme robotics"]["aliases"] == "AR | Acme Robotics | Acme Robotics Inc."
    g.export(tmp_path / "g.json", user=User("bob", groups=("sales",)))
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert len(data["nodes"]) == 5 and all(e["doc_id"] == 1 for e in data["edges"])
    with pytest.raises(UsageError, match=".graphml or .json"):
        g.export(tmp_path / "g.csv")


# ------------------------------------------------------------------ per-user graphs
def test_a_users_graph_is_resolved_from_the_triples_they_may_read_and_cached_per_group_set(kb):
    g = load_graph(kb)
    outsider = User("bob", groups=("sales",))
    view = g.for_user(outsider)
    assert view is g.for_user(User("carl", groups=("sales",)))  # same groups, same graph
    assert g.for_user(None) is g and g.for_user(User("root", sees_all=True)) is g
    assert set(view.graph) == {"mary chen", "acme robotics", "berlin", "initech", "globex"}
    assert view.entity("initech").doc_ids == {1} and view.graph.degree("initech") == 1
    assert view.entity("berlin").mentions == 1 and g.entity("berlin").mentions == 2
    assert view.for_user(outsider) is view


def test_a_name_alias_or_type_only_a_restricted_document_gives_never_reaches_an_outsider(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/public.md", [[("Kestrel Robotics", "based in", "Munich")]],
        types={"Kestrel Robotics": "ORG", "Munich": "GPE"})
    put(kb, "/docs/deal.md", [[("Kestrel Robotics", "also known as", "Bluejay")],
                              [("Bluejay", "acquires", "Vantorix"), ("Bluejay", "pays", "Vantorix"),
                               ("Bluejay", "bids for", "Hawk Industries")],
                              [("Munich", "also known as", "Hawk Industries")]],
        groups=("finance",), types={"Bluejay": "PROJECT", "Kestrel Robotics": "PROJECT"})
    put(kb, "/docs/hawk.md", [[("Hawk Industries", "based in", "Lyon")]])
    g = load_graph(kb)
    whole = g.entity(g.require("Bluejay"))
    assert whole.name == "Bluejay" and whole.type == "PROJECT"  # what the whole corpus says
    outsider = User("pat", groups=("eng",))
    key = g.require("Kestrel Robotics", outsider)
    kestrel = g.entity(key, outsider)
    assert (key, kestrel.name, kestrel.aliases, kestrel.type) == (
        "kestrel robotics", "Kestrel Robotics", {"Kestrel Robotics"}, "ORG")
    assert kestrel.mentions == 1 and kestrel.doc_ids == {1}
    assert g.entity_key("Bluejay", outsider) is None and g.link("What is Bluejay buying?", outsider) == []
    # The restricted merge of Munich and Hawk Industries is not made for the outsider either.
    assert g.require("Munich", outsider) != g.require("Hawk Industries", outsider)
    assert g.require("Munich") == g.require("Hawk Industries")
    facts = g.neighbors("Kestrel Robotics", hops=3, user=outsider)
    assert {(t.subject, t.object) for t in facts} == {("Kestrel Robotics", "Munich")}
    messages = []
    for name in ("Vantorix", "Nowhere"):  # hidden, and truly unknown: the same answer
        with pytest.raises(UnknownEntityError) as refused:
            g.require(name, outsider)
        messages.append(str(refused.value).replace(name, "?"))
    assert messages[0] == messages[1]


def test_an_acl_edit_of_the_same_length_rebuilds_the_graph_and_drops_stale_user_graphs(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/a.md", [[("Mary Chen", "CTO of", "Acme Robotics")]])
    put(kb, "/docs/deal.md", [[("Acme Robotics", "acquires", "Umbrella")]], groups=("sales",))
    sales = User("sam", groups=("sales",))
    g = load_graph(kb)
    assert g.entity_key("Umbrella", sales) == "umbrella"
    before = source_state(kb)[1]
    kb.set_groups("/docs/deal.md", ["legal"])
    assert source_state(kb)[1] != before
    fresh = load_graph(kb, current=g)
    assert fresh is not g and fresh.entity_key("Umbrella", sales) is None
    assert load_graph(kb).entity_key("Umbrella", sales) is None  # a fresh process rebuilds too
    assert load_graph(kb).entity_key("Umbrella", User("lee", groups=("legal",))) == "umbrella"


def test_a_content_edit_or_a_triple_edited_in_place_to_the_same_length_rebuild_the_graph(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/a.md", [[("Hooli", "based in", "Paris")]])
    g = load_graph(kb)
    doc = kb.get_document("/docs/a.md")
    with kb.transaction() as conn:
        conn.execute("UPDATE documents SET content_hash = 'edited' WHERE id = ?", (doc.id,))
    g = load_graph(kb, current=g)
    assert g.fingerprint == source_state(kb)[1]
    ids = [r[0] for r in kb.query("SELECT id FROM triples")]
    with kb.transaction() as conn:  # same id, same lengths: only the text moved
        conn.execute("UPDATE triples SET subject = 'Hoola'")
    assert [r[0] for r in kb.query("SELECT id FROM triples")] == ids
    fresh = load_graph(kb, current=g)
    assert fresh is not g and fresh.entity_key("Hoola") == "hoola" and fresh.entity_key("Hooli") is None


# ---------------------------------------------------------------------- the file
def test_the_saved_graph_is_plain_json_and_loads_equal_to_a_fresh_build(kb):
    g = load_graph(kb)
    data = json.loads((kb.root / GRAPH_FILE).read_text(encoding="utf-8"))
    assert data["format"] == FORMAT_VERSION and data["fingerprint"] == g.fingerprint
    again = load_graph(kb)
    assert again is not g and nx.utils.graphs_equal(again.graph, g.graph) and again.forms == g.forms
    outsider = User("bob", groups=("sales",))
    assert nx.utils.graphs_equal(again.for_user(outsider).graph, g.for_user(outsider).graph)


def test_the_graph_is_what_networkx_builds_from_its_edges_in_order(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/a.md", [[("Acme", "owns", "Initech"), ("Mary Chen", "CTO of", "Acme"), ("Acme", "sued", "Initech")],
                           [("Initech", "supplies", "Acme"), ("Acme", "also known as", "ACME Corp."),
                            ("Globex", "owns", "Initech"), ("Acme", "owns", "Initech")]])
    g = load_graph(kb).graph
    edges = sorted(g.edges(keys=True, data=True), key=lambda e: e[2])
    reference = nx.MultiDiGraph()
    reference.add_nodes_from(g.nodes(data=True))
    reference.add_edges_from(edges)
    assert [e[2] for e in edges] == [0, 1, 2, 3, 5, 6]  # the triple's position; the alias is a merge

    def ordered(adjacency):
        return [(n, [(m, list(by_key.items())) for m, by_key in others.items()]) for n, others in adjacency.items()]

    assert ordered(g.succ) == ordered(reference.succ) and ordered(g.pred) == ordered(reference.pred)
    assert g._succ["acme"]["initech"] is g._pred["initech"]["acme"]  # one edge-key dict, two indexes


class _Planted:
    """A pickle that creates a directory when unpickled: proof that the file was executed."""

    def __init__(self, proof):
        self.proof = proof

    def __reduce__(self):
        return os.mkdir, (str(self.proof),)


@pytest.mark.parametrize("built_before", [False, True])
def test_a_planted_graph_pickle_is_never_unpickled_and_is_deleted(kb, tmp_path, built_before):
    if built_before:
        load_graph(kb)
    proof = tmp_path / "pwned"
    (kb.root / LEGACY_GRAPH_FILE).write_bytes(pickle.dumps(_Planted(proof)))
    g = load_graph(kb)
    assert not proof.exists() and not (kb.root / LEGACY_GRAPH_FILE).exists()
    assert g.entity_key("Berlin") == "berlin"


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],  # torn
    lambda text: text.replace('"mentions":[', '"mentions":[1,'),  # one entity too many
    lambda text: text.replace('"names":[', '"names":[7,'),  # not text
    lambda text: text.replace('"data":"', '"data":"!', 1),  # not base64
    lambda text: text.replace('"dtype":"<i4"', '"dtype":"|O"', 1),  # not numbers
    lambda text: text.replace('"data":"', '"data":"AAAA', 1),  # columns that do not match
    lambda text: "[]",
    lambda text: "[" * 100_000 + "]" * 100_000,  # nested too deep for the parser
    lambda text: "\udcff",  # not UTF-8
])
def test_a_torn_or_damaged_graph_file_is_rebuilt_from_the_knowledge_base(kb, damage):
    g = load_graph(kb)
    path = kb.root / GRAPH_FILE
    text = path.read_text(encoding="utf-8")
    assert damage(text) != text
    path.write_text(damage(text), encoding="utf-8", errors="surrogateescape")
    again = load_graph(kb)
    assert nx.utils.graphs_equal(again.graph, g.graph)
    assert json.loads(path.read_text(encoding="utf-8"))["fingerprint"] == g.fingerprint
