"""The passage graph and personalised PageRank: exact values on graphs small enough to solve by hand,
the nodes and weights a knowledge graph yields, and what hiding a document removes before a walk."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from kg.graph import KnowledgeGraph
from retrieval.passage_graph import HiddenWalk, build_passage_graph, personalized_pagerank
from zhiku.records import PUBLIC, Triple


def walk_of(edges: list[tuple[int, int, float]], n: int) -> sparse.csr_matrix:
    """The row-stochastic walk of an undirected weighted graph."""
    a = np.zeros((n, n))
    for u, v, w in edges:
        a[u, v] += w
        a[v, u] += w
    degree = a.sum(axis=1)
    return sparse.csr_matrix(a / np.where(degree > 0, degree, 1)[:, None])


def test_pagerank_on_a_path_matches_the_hand_computed_values():
    # a - b - c, all mass reset on a, damping 0.5:
    #   p_a = 1/2 + 1/2 (p_b / 2),  p_b = 1/2 (p_a + p_c),  p_c = 1/2 (p_b / 2)
    #   => p_a = 7/12, p_b = 1/3, p_c = 1/12
    rank = personalized_pagerank(walk_of([(0, 1, 1.0), (1, 2, 1.0)], 3), np.array([1.0, 0, 0]), 0.5, epsilon=0)
    assert rank == pytest.approx([7 / 12, 1 / 3, 1 / 12], abs=1e-9)


def test_pagerank_follows_edge_weights_and_leaves_an_isolated_node_its_reset_mass():
    # b's edges: to a weight 1, to c weight 3; reset split between a and the isolated d.
    walk = walk_of([(0, 1, 1.0), (1, 2, 3.0)], 4)
    reset = np.array([0.5, 0, 0, 0.5])
    rank = personalized_pagerank(walk, reset, 0.5, epsilon=0)
    exact = 0.5 * np.linalg.solve(np.eye(4) - 0.5 * walk.toarray().T, reset)
    assert rank == pytest.approx(exact, abs=1e-9)
    assert rank[3] == pytest.approx(0.25)  # (1 - damping) of its reset mass: nothing flows in or out
    assert rank[1] > rank[2] > 0


def test_pagerank_with_a_push_threshold_stays_within_the_mass_it_leaves_behind():
    rng = np.random.default_rng(3)
    n = 60
    edges = [(int(u), int(v), float(w)) for u, v, w in zip(rng.integers(0, n, 200), rng.integers(0, n, 200),
                                                              rng.random(200) + 0.1) if u != v]
    walk = walk_of(edges, n)
    reset = np.zeros(n)
    reset[[1, 7, 30]] = [0.5, 0.3, 0.2]
    exact = 0.5 * np.linalg.solve(np.eye(n) - 0.5 * walk.toarray().T, reset)
    approx = personalized_pagerank(walk, reset, 0.5, epsilon=1e-4)
    assert np.abs(approx - exact).sum() < 1e-4 * n
    assert np.argsort(-approx)[:5].tolist() == np.argsort(-exact)[:5].tolist()


def small_graph() -> KnowledgeGraph:
    """Chunks 10 and 11 (document 1) and 20 (document 2): Acme is in two chunks, Berlin in all three."""
    triples = [
        Triple("Acme", "founded by", "Jane Smith", chunk_id=10, doc_id=1),
        Triple("Acme", "located in", "Berlin", chunk_id=11, doc_id=1),
        Triple("Falcon", "based in", "Berlin", chunk_id=20, doc_id=2),
    ]
    return KnowledgeGraph.from_triples(triples, {1: (PUBLIC,), 2: ("hr",)})


def test_chunks_and_entities_are_nodes_and_mentions_are_weighted_by_specificity():
    pg = build_passage_graph(small_graph())
    assert pg.chunk_ids.tolist() == [10, 11, 20] and pg.chunk_docs.tolist() == [1, 1, 2]
    df = dict(zip(pg.entities, pg.entity_chunks.tolist()))
    assert df == {"acme": 2, "jane smith": 1, "berlin": 2, "falcon": 1}
    node = {key: i for i, key in enumerate(pg.entities)}
    chunk_10 = pg.chunk_nodes(np.array([10]))[0]
    # Chunk 10 mentions Acme (idf log(1 + 3/2)) and Jane Smith (idf log(1 + 3/1)).
    row = pg.walk[chunk_10].toarray().ravel()
    total = math.log1p(3 / 2) + math.log1p(3)
    assert row[node["acme"]] == pytest.approx(math.log1p(3 / 2) / total, rel=1e-6)
    assert row[node["jane smith"]] == pytest.approx(math.log1p(3) / total, rel=1e-6)
    assert pg.chunk_nodes(np.array([11, 99])).tolist() == [chunk_10 + 1, -1]
    assert pg.fact_sentence(0) == "Acme founded by Jane Smith"


def test_a_hidden_document_loses_its_chunks_and_relations_before_the_walk():
    pg = build_passage_graph(small_graph())
    hidden = HiddenWalk.of(pg, np.array([False, True, False]))  # document 2 hidden
    falcon, berlin = pg.entities.index("falcon"), pg.entities.index("berlin")
    chunk_20 = pg.chunk_nodes(np.array([20]))[0]
    assert dict(zip(pg.entities, hidden.entity_chunks.tolist())) == {"acme": 2, "jane smith": 1, "berlin": 1,
                                                                      "falcon": 0}
    reset = np.zeros(pg.n_nodes)
    reset[berlin] = 1.0
    rank = personalized_pagerank(hidden, reset, 0.5, epsilon=0)
    assert rank[falcon] == 0 and rank[chunk_20] == 0  # only document 2 names Falcon and holds chunk 20
    assert rank.sum() == pytest.approx(1.0)  # nothing leaks out either


def visible_graph(triples: list[Triple], groups: dict[int, tuple[str, ...]], visible: np.ndarray) -> KnowledgeGraph:
    """The knowledge graph built from the triples of the ``visible`` documents only."""
    return KnowledgeGraph.from_triples([t for t in triples if visible[t.doc_id]], groups)


def rank_by_name(pg, rank: np.ndarray) -> dict:
    """Entity key or chunk id -> rank, for the nodes with any (graphs of fewer documents number nodes apart)."""
    names = list(pg.entities) + pg.chunk_ids.tolist()
    return {name: value for name, value in zip(names, rank.tolist()) if value > 0}


@pytest.mark.parametrize("hidden_docs", [[2], [3], [2, 3], [1, 3]])
def test_the_hidden_walk_is_the_walk_of_the_graph_built_without_the_hidden_documents(hidden_docs):
    # Acme - Berlin is stated by documents 1 and 3 (hiding 3 halves its weight), Bolt - Acme by 2
    # and 3; Munich / München are synonyms only while a visible fact names München; 3 states an
    # attribute; mention weights depend on how many visible chunks name an entity.
    triples = [
        Triple("Acme", "located in", "Berlin", chunk_id=10, doc_id=1, confidence=0.9),
        Triple("Acme", "founded by", "Jane Smith", chunk_id=11, doc_id=1),
        Triple("Bolt", "supplies", "Acme", chunk_id=20, doc_id=2, confidence=0.7),
        Triple("Bolt", "located in", "Munich", chunk_id=20, doc_id=2),
        Triple("Acme", "located in", "Berlin", chunk_id=30, doc_id=3, confidence=0.6),
        Triple("Bolt", "supplies", "Acme", chunk_id=31, doc_id=3),
        Triple("Kite", "located in", "München", chunk_id=31, doc_id=3),
        Triple("Acme", "headcount", "48", chunk_id=32, doc_id=3),
        Triple("Jane Smith", "lives in", "Munich", chunk_id=12, doc_id=1),
    ]
    groups = {1: (PUBLIC,), 2: (PUBLIC,), 3: (PUBLIC,)}
    visible = np.array([False, True, True, True])
    visible[hidden_docs] = False

    def graph_of(kg: KnowledgeGraph):
        keys = list(kg.graph.nodes)
        vectors = np.eye(len(keys), dtype=np.float32)
        if "münchen" in keys:  # München close to Munich
            vectors[keys.index("münchen")] = 0.0
            vectors[keys.index("münchen"), keys.index("munich")] = 1.0
        return build_passage_graph(kg, vectors, synonym_threshold=0.9)

    whole = graph_of(KnowledgeGraph.from_triples(triples, groups))
    alone = graph_of(visible_graph(triples, groups, visible))
    hidden = HiddenWalk.of(whole, visible)
    assert dict(zip(whole.entities, hidden.entity_chunks.tolist())) == {
        key: dict(zip(alone.entities, alone.entity_chunks.tolist())).get(key, 0) for key in whole.entities}
    for seeds in (["acme"], ["bolt", "munich"], ["jane smith"]):
        seeds = [key for key in seeds if key in alone.entities]
        reset, reset_alone = np.zeros(whole.n_nodes), np.zeros(alone.n_nodes)
        for key in seeds:
            reset[whole.entities.index(key)] = 1.0 / len(seeds)
            reset_alone[alone.entities.index(key)] = 1.0 / len(seeds)
        got = rank_by_name(whole, personalized_pagerank(hidden, reset, 0.5, epsilon=0, max_rounds=300))
        want = rank_by_name(alone, personalized_pagerank(alone.walk, reset_alone, 0.5, epsilon=0, max_rounds=300))
        assert got.keys() == want.keys() and got == pytest.approx(want, abs=1e-12), seeds
        # Pushing from the whole graph at once walks the same.
        wide = personalized_pagerank(hidden, reset, 0.5, epsilon=0, max_rounds=300, walk_t=whole.walk_t)
        assert rank_by_name(whole, wide) == pytest.approx(want, abs=1e-12)


def test_the_hidden_walk_copies_no_matrix_of_the_graph():
    """What it allocates is the edges among entities (rebuilt from the visible relations) and one
    vector per node: no walk matrix per set of visible documents."""
    pg = build_passage_graph(small_graph())
    hidden = HiddenWalk.of(pg, np.array([False, True, False]))
    matrices = [v for v in vars(hidden).values() if sparse.issparse(v)]
    assert [m.shape for m in matrices] == [(pg.n_entities, pg.n_entities)]
    assert hidden.pg is pg


def test_synonym_edges_join_close_names_only():
    kg = KnowledgeGraph.from_triples([
        Triple("Acme", "located in", "Munich", chunk_id=1, doc_id=1),
        Triple("Bolt", "located in", "München", chunk_id=2, doc_id=1),
        Triple("Bolt", "supplies", "Acme", chunk_id=2, doc_id=1),
    ], {1: (PUBLIC,)})
    keys = list(kg.graph.nodes)
    vectors = np.eye(len(keys), dtype=np.float32)
    munich, muenchen = keys.index("munich"), keys.index("münchen")
    vectors[muenchen] = 0.0
    vectors[muenchen, munich], vectors[muenchen, keys.index("acme")] = 0.9, math.sqrt(1 - 0.81)
    pg = build_passage_graph(kg, vectors, synonym_threshold=0.85)
    assert pg.synonym_pairs[:, :2].astype(int).tolist() == [sorted([munich, muenchen])]
    assert pg.walk[munich, muenchen] > 0 and pg.walk[muenchen, munich] > 0
    assert len(build_passage_graph(kg, vectors, synonym_threshold=0.95).synonym_pairs) == 0


def test_pushing_from_the_whole_graph_at_once_gives_the_same_ranks():
    rng = np.random.default_rng(5)
    n = 40
    ends = zip(rng.integers(0, n, 150).tolist(), rng.integers(0, n, 150).tolist())
    walk = walk_of([(u, v, 1.0) for u, v in ends if u != v], n)
    reset = rng.random(n)
    reset /= reset.sum()
    sliced = personalized_pagerank(walk, reset, 0.3, epsilon=0, max_rounds=200)
    whole = personalized_pagerank(walk, reset, 0.3, epsilon=0, max_rounds=200, walk_t=walk.T.tocsr())
    assert whole == pytest.approx(sliced, abs=1e-12)


def test_an_attribute_makes_its_chunk_a_node_and_is_a_fact_without_an_edge():
    kg = KnowledgeGraph.from_triples([
        Triple("Acme", "located in", "Berlin", chunk_id=11, doc_id=1),
        Triple("Acme", "headcount", "48", chunk_id=12, doc_id=2),
    ], {1: (PUBLIC,), 2: ("hr",)})
    pg = build_passage_graph(kg)
    assert pg.chunk_ids.tolist() == [11, 12] and "48" not in pg.entities
    value = [i for i in range(len(pg.fact_heads)) if pg.is_attribute(i)]
    assert [pg.fact_sentence(i) for i in value] == ["Acme headcount 48"]
    acme, chunk_12 = pg.entities.index("acme"), pg.chunk_nodes(np.array([12]))[0]
    assert pg.walk[chunk_12, acme] == pytest.approx(1.0)  # the chunk's one mention: its entity
    assert pg.walk[acme, acme] == 0  # no self-loop
    reset = np.zeros(pg.n_nodes)
    reset[acme] = 1.0
    rank = personalized_pagerank(HiddenWalk.of(pg, np.array([False, True, False])), reset, 0.5, epsilon=0)
    assert rank[chunk_12] == 0 and rank[pg.chunk_nodes(np.array([11]))[0]] > 0  # document 2 stated the value
