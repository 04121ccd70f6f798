"""The passage graph: the retrieval view of a knowledge graph, and personalised PageRank over it.

HippoRAG 2 (Gutiérrez et al. 2025) ranks passages by where a random walk from the question's
entities and facts comes to rest on a graph holding both entity and passage nodes. This module
builds that graph from one ``KnowledgeGraph`` (a user's view of it, see ``kg.graph.for_user``) and
runs the walk; ``retrieval.graph`` links questions to it.

Nodes: the graph's entities (``0..E-1``) and the chunks their relations were extracted from
(``E..E+C-1``). Undirected, weighted edges:

- ``mentions``: chunk - entity, for every entity a relation of the chunk names, weighted by the
  entity's specificity ``log(1 + C / df)`` (``df`` = chunks that mention it): a city every
  document names spreads a question's mass thinly, a rare product name passes it on whole;
- relations: entity - entity, weighted by the summed confidence of the relations between them;
  an entity's attributes (literal values: "Headcount: 48", see ``kg.graph``) are facts from the
  entity to itself, so they add the chunk that states them as a mention and no edge;
- synonyms: entity - entity, between names whose embeddings are close (cosine >= a threshold),
  which joins spellings resolution cannot (Munich / München) and names across languages
  (Shenzhen / 深圳) with the multilingual embedder.

A chunk no relation came from is not a node: the walk cannot reach it, and the rank of such a
chunk seeded by dense retrieval is its reset mass alone (``(1 - damping) * reset``), which
``personalized_pagerank``'s leaky walk gives any isolated node.

The walk is exact personalised PageRank computed by pushes (Andersen, Chung and Lang 2006, all
nodes above the threshold at once, one sparse product per round), so it touches the part of the
graph the question's mass reaches rather than every node on every iteration: at damping 0.5 the
mass halves with every step.

Access control lives in what the graph is built from: the knowledge graph of one user holds only
relations of documents that user may read (and their names, resolved from those relations), and
``HiddenWalk`` walks it without every node and edge of documents hidden since it was built (on the
same matrices: no copy of the graph per set of visible documents).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np
from scipy import sparse

#: Synonym thresholds per embedder (cosine of two entity names): MiniLM puts different cities
#: close together (Beijing / Shanghai 0.85), the multilingual encoder keeps them apart (0.56) and
#: joins translations (Shenzhen / 深圳 0.81, Munich / München 0.88).
SYNONYM_THRESHOLDS = {"multilingual": 0.80}
#: For embedders not in the table: only near-identical names.
DEFAULT_SYNONYM_THRESHOLD = 0.92
#: Nearest names each entity is compared with for synonyms (more would be noise, and cost).
SYNONYM_NEIGHBOURS = 5
#: Above this many vectors, nearest neighbours (synonyms, linked names and facts) are searched in an
#: inverted-file index (a few lists of the closest centroids), not exhaustively: a query then reads
#: about 2% of 150k fact vectors, and the synonyms of 100k names take seconds, not minutes.
EXACT_SEARCH = 8000


@dataclass(frozen=True)
class EdgeWeights:
    """The weight of each kind of edge before the walk normalises a node's edges to probabilities."""

    mention: float = 1.0
    relation: float = 1.0
    synonym: float = 1.0


@dataclass(frozen=True)
class PassageGraph:
    """Entity and chunk nodes and their walk matrix, built once per knowledge graph (view).

    ``walk`` is row-stochastic over ``E + C`` nodes (``float64``, as the walk's vectors; the row of an isolated node is
    empty). Facts are the relations of the graph, one per edge of the knowledge graph, then the
    entities' attributes (head = tail, the value in ``fact_objects``), in arrays: ends (entity
    indices), chunk id and document id (``-1`` for none), relation, object text and confidence.
    """

    entities: list[str]
    names: list[str]
    types: list[str]
    #: Chunk node ``i`` is node ``E + i``; sorted ascending.
    chunk_ids: np.ndarray
    chunk_docs: np.ndarray
    #: How many chunks mention each entity (its document frequency).
    entity_chunks: np.ndarray
    walk: sparse.csr_matrix
    #: ``walk.T``, kept for rounds that push from much of the graph at once (one product, no slicing).
    walk_t: sparse.csr_matrix
    #: Each node's summed edge weight (what its row of ``walk`` was divided by).
    degree: np.ndarray
    fact_heads: np.ndarray
    fact_tails: np.ndarray
    fact_chunks: np.ndarray
    fact_docs: np.ndarray
    fact_relations: list[str]
    #: The object as stated: the tail's name for a relation, the value for an attribute.
    fact_objects: list[str]
    fact_confidence: np.ndarray
    #: ``(a, b, cosine)`` rows: the synonym edges (kept for the walk without some documents).
    synonym_pairs: np.ndarray
    weights: EdgeWeights

    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_nodes(self) -> int:
        return len(self.entities) + len(self.chunk_ids)

    def chunk_nodes(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Node index of each chunk id, ``-1`` for chunks that are not nodes."""
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        at = np.searchsorted(self.chunk_ids, chunk_ids)
        found = (at < len(self.chunk_ids)) & (self.chunk_ids[np.minimum(at, len(self.chunk_ids) - 1)] == chunk_ids) \
            if len(self.chunk_ids) else np.zeros(len(chunk_ids), dtype=bool)
        return np.where(found, at + self.n_entities, -1)

    def fact_sentence(self, i: int) -> str:
        """Fact ``i`` as the short sentence it is embedded as ("Acme Robotics founded by Jane Smith")."""
        return f"{self.names[self.fact_heads[i]]} {self.fact_relations[i]} {self.fact_objects[i]}"

    def is_attribute(self, i: int) -> bool:
        """Whether fact ``i`` is an attribute (a literal value of its entity), not a relation."""
        return bool(self.fact_heads[i] == self.fact_tails[i])

    def documents(self) -> np.ndarray:
        """Every document id a node or edge of the graph comes from."""
        return np.unique(np.concatenate([self.chunk_docs, self.fact_docs[self.fact_docs >= 0]]))


def build_passage_graph(
    kg, name_vectors: np.ndarray | None = None, synonym_threshold: float = DEFAULT_SYNONYM_THRESHOLD,
    weights: EdgeWeights = EdgeWeights(),
) -> PassageGraph:
    """The passage graph of ``kg`` (a ``kg.graph.KnowledgeGraph``, typically one user's view).

    ``name_vectors`` (row i: the normalised embedding of entity i's name, in ``kg.graph.nodes``
    order) adds synonym edges; without it there are none.
    """
    g = kg.graph
    entities = list(g.nodes)
    index = {key: i for i, key in enumerate(entities)}
    nodes = g.nodes
    heads, tails, chunks, docs, relations, objects, confidence = [], [], [], [], [], [], []

    def fact(head: int, tail: int, chunk: int | None, doc: int | None, relation: str, obj: str, conf: float) -> None:
        heads.append(head)
        tails.append(tail)
        chunks.append(-1 if chunk is None else chunk)
        docs.append(-1 if doc is None else doc)
        relations.append(relation)
        objects.append(obj)
        confidence.append(conf)

    for u, v, data in g.edges(data=True):
        fact(index[u], index[v], data.get("chunk_id"), data.get("doc_id"), data["relation"], nodes[v]["name"],
             float(data.get("confidence", 1.0)))
    for key in entities:
        for value in nodes[key].get("attributes", ()):
            fact(index[key], index[key], value.chunk_id, value.doc_id, value.relation, value.object, value.confidence)
    heads_a, tails_a = np.array(heads, dtype=np.int64), np.array(tails, dtype=np.int64)
    chunks_a, docs_a = np.array(chunks, dtype=np.int64), np.array(docs, dtype=np.int64)
    confidence_a = np.array(confidence, dtype=np.float64)
    synonyms = _synonym_pairs(name_vectors, synonym_threshold) if name_vectors is not None and len(entities) \
        else np.zeros((0, 3))
    return _assemble(entities, [nodes[k]["name"] for k in entities], [nodes[k].get("type", "") for k in entities],
                     heads_a, tails_a, chunks_a, docs_a, relations, objects, confidence_a, synonyms, weights)


def _assemble(
    entities: list[str], names: list[str], types: list[str], heads: np.ndarray, tails: np.ndarray,
    chunks: np.ndarray, docs: np.ndarray, relations: list[str], objects: list[str], confidence: np.ndarray,
    synonyms: np.ndarray, weights: EdgeWeights,
) -> PassageGraph:
    """The walk matrix of the given facts and synonym pairs (``(a, b, cosine)`` rows)."""
    n_entities = len(entities)
    with_chunk = chunks >= 0
    # Distinct (chunk, entity) mentions, and each chunk's document.
    pairs = np.unique(np.concatenate([
        np.stack([chunks[with_chunk], heads[with_chunk]], axis=1),
        np.stack([chunks[with_chunk], tails[with_chunk]], axis=1)]), axis=0) if with_chunk.any() \
        else np.zeros((0, 2), dtype=np.int64)
    chunk_ids, chunk_of_pair = np.unique(pairs[:, 0], return_inverse=True)
    chunk_docs = np.full(len(chunk_ids), -1, dtype=np.int64)
    chunk_docs[np.searchsorted(chunk_ids, chunks[with_chunk])] = docs[with_chunk]
    entity_chunks = np.bincount(pairs[:, 1], minlength=n_entities).astype(np.int64)
    n_chunks = len(chunk_ids)
    idf = np.log1p(n_chunks / np.maximum(entity_chunks, 1))
    rows = [n_entities + chunk_of_pair, heads, synonyms[:, 0].astype(np.int64)]
    cols = [pairs[:, 1], tails, synonyms[:, 1].astype(np.int64)]
    values = [weights.mention * idf[pairs[:, 1]], weights.relation * confidence, weights.synonym * synonyms[:, 2]]
    adjacency = _symmetric(n_entities + n_chunks, rows, cols, values)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    walk = (sparse.diags(1.0 / np.where(degree > 0, degree, 1.0)) @ adjacency).tocsr()
    return PassageGraph(entities, names, types, chunk_ids, chunk_docs, entity_chunks, walk, walk.T.tocsr(), degree,
                        heads, tails, chunks, docs, relations, objects, confidence, synonyms, weights)


@dataclass(frozen=True)
class HiddenWalk:
    """The walk of a passage graph without the documents ``visible`` hides, computed on the graph's
    own matrices: what the walk of the graph built from the visible facts alone does, without a
    copy of the graph per set of visible documents (one query's vectors and the relation edges
    among entities are all it allocates, and nothing is kept).

    That graph differs from this one in three ways, each exact here:

    - hidden chunks are no nodes: they get no mass (``chunk_seen`` masks what reaches them) and
      pass none on;
    - a mention weighs ``log(1 + C' / df')`` over the visible chunks: ``scale`` (that over this
      graph's weight, per entity) rescales every mention of an entity, and each chunk's row is
      renormalised by its scaled sum (``chunk_share``);
    - relation weights are the summed confidence of the visible facts only, and synonyms join
      entities a visible fact still names: those edges among entities (``links``, a fraction of the
      matrix) are rebuilt, and an entity's share to its chunks is ``scale * degree / degree'``.

    So no mass ever enters or leaves a node or edge only hidden documents give.
    """

    pg: PassageGraph
    chunk_seen: np.ndarray
    scale: np.ndarray
    #: Visible chunks mentioning each entity (``df'``), for the seeds' weights.
    entity_chunks: np.ndarray
    links: sparse.csr_matrix
    chunk_share: np.ndarray
    entity_share: np.ndarray
    inverse_degree: np.ndarray

    @classmethod
    def of(cls, pg: PassageGraph, visible: np.ndarray) -> HiddenWalk:
        keep = shown(pg.fact_docs, visible)
        n_entities, walk = pg.n_entities, pg.walk
        chunk_seen = shown(pg.chunk_docs, visible).astype(np.float64)
        mention_rows = np.diff(walk.indptr[n_entities:])
        mentioned = walk.indices[walk.indptr[n_entities]:]
        entity_chunks = np.bincount(mentioned, np.repeat(chunk_seen, mention_rows), n_entities).round().astype(np.int64)
        idf = np.log1p(len(pg.chunk_ids) / np.maximum(pg.entity_chunks, 1))
        shown_idf = np.log1p(chunk_seen.sum() / np.maximum(entity_chunks, 1))
        scale = np.divide(shown_idf, idf, out=np.zeros_like(idf), where=idf > 0)
        alive = np.zeros(n_entities, dtype=bool)
        alive[pg.fact_heads[keep]] = alive[pg.fact_tails[keep]] = True
        synonyms = pg.synonym_pairs[alive[pg.synonym_pairs[:, 0].astype(np.int64)]
                                    & alive[pg.synonym_pairs[:, 1].astype(np.int64)]]
        links = _symmetric(n_entities, [pg.fact_heads[keep], synonyms[:, 0].astype(np.int64)],
                           [pg.fact_tails[keep], synonyms[:, 1].astype(np.int64)],
                           [pg.weights.relation * pg.fact_confidence[keep], pg.weights.synonym * synonyms[:, 2]])
        scaled = walk[n_entities:] @ np.concatenate([scale, np.zeros(len(pg.chunk_ids))])  # degree' / degree
        chunk_share = np.divide(chunk_seen, scaled, out=np.zeros_like(scaled), where=chunk_seen > 0)
        mention_degree = pg.weights.mention * idf * scale * entity_chunks
        degree = mention_degree + np.asarray(links.sum(axis=1)).ravel()
        inverse_degree = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        entity_share = scale * pg.degree[:n_entities] * inverse_degree
        return cls(pg, chunk_seen, scale, entity_chunks, links, chunk_share, entity_share, inverse_degree)

    def step(self, active: np.ndarray, mass: np.ndarray, walk_t: sparse.csr_matrix | None = None) -> np.ndarray:
        """Where ``mass`` on the ``active`` nodes goes in one step (``walk[active].T @ mass`` of that
        graph); ``walk_t`` as in ``personalized_pagerank``."""
        pg, n_entities = self.pg, self.pg.n_entities
        out = np.zeros(pg.n_nodes)
        entity = active < n_entities
        chunks, entities = active[~entity], active[entity]
        if len(chunks):
            spread = _spread(pg.walk, walk_t, chunks, mass[~entity] * self.chunk_share[chunks - n_entities])
            out[:n_entities] += self.scale * spread[:n_entities]
        if len(entities):
            spread = _spread(pg.walk, walk_t, entities, mass[entity] * self.entity_share[entities])
            out[n_entities:] += self.chunk_seen * spread[n_entities:]
            out[:n_entities] += self.links[entities].T @ (mass[entity] * self.inverse_degree[entities])
        return out


def shown(doc_ids: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``visible[doc_id]`` per entry (False for ids outside the mask and for ``-1``)."""
    ok = (doc_ids >= 0) & (doc_ids < len(visible))
    out = np.zeros(len(doc_ids), dtype=bool)
    out[ok] = visible[doc_ids[ok]]
    return out


def _symmetric(n: int, rows: list[np.ndarray], cols: list[np.ndarray], values: list[np.ndarray]) -> sparse.csr_matrix:
    """The ``n x n`` undirected adjacency of the given edges: self-loops dropped, duplicates summed."""
    row, col, value = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    keep = row != col
    row, col, value = row[keep], col[keep], value[keep]
    return sparse.coo_matrix((np.concatenate([value, value]), (np.concatenate([row, col]), np.concatenate([col, row]))),
                             shape=(n, n)).tocsr()


def _spread(walk: sparse.csr_matrix, walk_t: sparse.csr_matrix | None, rows: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """``walk[rows].T @ mass``: by slicing rows, or for more than a twentieth of the nodes by one
    product with ``walk_t`` (``walk.T`` as CSR), where slicing would cost more than the product."""
    n = walk.shape[0]
    if walk_t is not None and len(rows) > n // 20:
        moved = np.zeros(n)
        moved[rows] = mass
        return walk_t @ moved
    return walk[rows].T @ mass


def inner_product_index(vectors: np.ndarray, rows: np.ndarray | None = None) -> faiss.Index:
    """A FAISS inner-product index of ``vectors``: exact up to ``EXACT_SEARCH`` rows, else an
    inverted file of ``sqrt(n)`` lists searched 16 at a time (approximate, but the nearest few
    are what linking and synonyms need). ``reconstruct`` gives a vector back.

    With ``rows``, the index stands for ``vectors[rows]`` (facts that share a sentence share its
    vector) while storing each of ``vectors`` once: exact or not, its lists and their training
    are those of that matrix, so a search finds the same vectors that matrix's index would.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    rows = np.arange(len(vectors)) if rows is None else rows
    n = len(rows)
    if n <= EXACT_SEARCH:
        index = faiss.IndexFlatIP(dim)
    else:
        lists = int(math.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors[rows[np.random.default_rng(0).permutation(n)[: 40 * lists]]])
        index.nprobe = 16
        index.set_direct_map_type(faiss.DirectMap.Array)
        _add_to_lists(index, vectors)
        return index
    if len(vectors):
        index.add(vectors)
    return index


def _add_to_lists(index: faiss.IndexIVF, vectors: np.ndarray) -> None:
    """``index.add(vectors)`` with each inverted list allocated once, at its final size: ``add``
    appends one vector at a time, so a list's buffer grows geometrically and ends a third larger
    than its vectors on average (300 MB of the fact index at 1M chunks)."""
    _, lists = index.quantizer.search(vectors, 1)
    lists = np.ascontiguousarray(lists.ravel(), dtype=np.int64)
    for i, count in enumerate(np.bincount(lists, minlength=index.nlist).tolist()):
        if count:
            index.invlists.resize(i, count)  # reserves the buffer ...
            index.invlists.resize(i, 0)  # ... which emptying keeps
    index.add_core(len(vectors), faiss.swig_ptr(vectors), None, faiss.swig_ptr(lists))


def _synonym_pairs(vectors: np.ndarray, threshold: float, neighbours: int = SYNONYM_NEIGHBOURS) -> np.ndarray:
    """``(a, b, cosine)`` rows, ``a < b``, for names among each other's nearest with cosine >= ``threshold``."""

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        return np.zeros((0, 3))
    k = min(neighbours + 1, n)
    index = inner_product_index(vectors)
    sims, ids = index.search(vectors, k)
    a = np.repeat(np.arange(n), k)
    b, s = ids.ravel(), sims.ravel()
    keep = (b >= 0) & (b != a) & (s >= threshold)
    a, b, s = a[keep], b[keep], s[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(lo * n + hi, return_index=True)
    return np.stack([lo[first], hi[first], s[first]], axis=1).astype(np.float64)


def personalized_pagerank(
    walk: sparse.csr_matrix | HiddenWalk, reset: np.ndarray, damping: float = 0.5, epsilon: float = 1e-6,
    max_rounds: int = 60, walk_t: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """PageRank personalised to ``reset`` (summing to 1) over ``walk``: the ``p`` with
    ``p = (1 - damping) * reset + damping * walk.T @ p``, to within the mass left unpushed.

    Every round moves the residual mass of every node holding more than ``epsilon`` one step along
    its edges (keeping ``1 - damping`` of it as rank). Mass reaching an isolated node stops there
    (its row is empty), so such a node ranks by its own reset mass. What is left when no node holds
    more than ``epsilon`` (or after ``max_rounds``) is at most the residual's sum, an L1 bound on the error.
    A round that pushes from more than a twentieth of the nodes multiplies by ``walk_t`` (``walk.T``
    as CSR) instead of slicing rows, which then costs more than the whole product. ``walk`` may be
    a ``HiddenWalk``: the walk without some documents, on the same matrices.
    """
    step = walk.step if isinstance(walk, HiddenWalk) else lambda rows, mass, walk_t: _spread(walk, walk_t, rows, mass)
    rank = np.zeros(walk.pg.n_nodes if isinstance(walk, HiddenWalk) else walk.shape[0])
    residual = np.asarray(reset, dtype=np.float64).copy()
    for _ in range(max_rounds):
        active = np.flatnonzero(residual > epsilon)
        if not len(active):
            break
        mass = residual[active]
        rank[active] += (1.0 - damping) * mass
        residual[active] = 0.0
        residual += damping * step(active, mass, walk_t)
    return rank
