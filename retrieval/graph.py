"""Graph retrieval: from the entities a question names to the passages that state facts about them.

1. **Link** the question to graph entities: exact and alias matches (``KnowledgeGraph.link``)
   weigh 1.0; when there are none, the entities whose names embed closest to the question
   (cosine >= ``link_threshold``) stand in, weighted by their similarity. Entity-name vectors are computed once per name and kept (in the
   instance and in ``entity_vectors.npz`` in the knowledge-base folder), so a rebuilt graph only
   embeds its new names.
2. **Expand** ``hops`` steps around the seeds over the relations the user may see (relations
   between two seeds always; otherwise at most ``edges_per_node`` per entity, ``max_nodes``
   entities and ``max_edges`` relations, so a hub cannot blow up a query), then run personalised PageRank from the seeds on
   that neighbourhood.
3. **Score chunks** by the relations they carry: each relation adds the PageRank mass of its two
   ends to the chunk it was extracted from, boosted by ``relation_boost`` for every word of the
   question (beyond the entities it names) that the relation says ("founded" matches "founded
   in"): a hub entity is linked to everything, the question's other words pick its relevant
   relations. Chunks under ``min_relative_score`` of the best are left out, so fusion is not fed
   noise. The hit's ``facts`` are its relations, best first.

Access control: everything runs on the asking user's graph (``KnowledgeGraph.for_user``: resolved
from the triples of the documents they may read), so linking only knows the names and aliases
those documents use, and facts carry the names and types they give. Relations are filtered once
more by the *current* document groups (the retriever's catalog) before expansion, so a document
hidden since the graph was built contributes neither a chunk nor a fact nor a path through which
relevance could flow.
"""
from __future__ import annotations

import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
from scipy import sparse

from kg.graph import KnowledgeGraph, load_graph
from retrieval.catalog import Catalog
from retrieval.keyword import Tokenizer
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.models import Embedder
from zhiku.records import Hit, Triple, User

log = logging.getLogger(__name__)

ENTITY_VECTORS = "entity_vectors.npz"


class EntityVectors:
    """Embeddings of entity names, computed once per distinct name and remembered on disk."""

    def __init__(self, embedder: Embedder, path: Path | None) -> None:
        self.embedder = embedder
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded = False

    def matrix(self, names: list[str]) -> np.ndarray:
        """Row i is the normalised embedding of ``names[i]``."""
        if not self._loaded:
            self._loaded = True
            self._read()
        missing = [n for n in dict.fromkeys(names) if n not in self._vectors]
        if missing:
            for name, vector in zip(missing, self.embedder.embed(missing)):
                self._vectors[name] = vector
            self._write()
        if not names:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([self._vectors[n] for n in names])

    def _read(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["model"]) == self.embedder.name:
                    self._vectors = dict(zip(saved["names"].tolist(), saved["vectors"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable %s (%s)", self.path, exc)

    def _write(self) -> None:
        if self.path is None:
            return
        names = list(self._vectors)
        vectors = np.stack([self._vectors[n] for n in names])

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(out, model=np.array(self.embedder.name), names=np.array(names), vectors=vectors)

        try:
            atomic_write(self.path, write)
        except OSError as exc:
            log.warning("could not save entity vectors to %s: %s", self.path, exc)


class GraphRetriever:
    """Entity linking, neighbourhood expansion and personalised PageRank over the knowledge graph."""

    name = "graph"

    def __init__(
        self,
        kb: KnowledgeBase,
        embedder: Embedder,
        graph: KnowledgeGraph | None = None,
        catalog: Catalog | None = None,
        hops: int = 2,
        link_threshold: float = 0.55,
        max_similar: int = 3,
        max_nodes: int = 150,
        edges_per_node: int = 32,
        max_edges: int = 1500,
        facts_per_hit: int = 5,
        relation_boost: float = 2.0,
        min_relative_score: float = 0.1,
        persist: bool = True,
    ) -> None:
        self.kb = kb
        self.embedder = embedder
        self.catalog = catalog or Catalog(kb)
        self.hops = hops
        self.link_threshold = link_threshold
        self.max_similar = max_similar
        self.max_nodes = max_nodes
        self.edges_per_node = edges_per_node
        self.max_edges = max_edges
        self.facts_per_hit = facts_per_hit
        self.relation_boost = relation_boost
        self.min_relative_score = min_relative_score
        self.tokenize = Tokenizer()
        self._term_cache: dict[str, frozenset[str]] = {}
        self._graph = graph
        #: A user's graph -> its entity keys and their name matrix (dropped with the graph).
        self._names: weakref.WeakKeyDictionary[KnowledgeGraph, tuple[list[str], np.ndarray]] = \
            weakref.WeakKeyDictionary()
        self._vectors = EntityVectors(embedder, kb.root / ENTITY_VECTORS if persist else None)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state
    def graph(self) -> KnowledgeGraph:
        """The knowledge graph, reloaded when the knowledge base changed."""
        with self._lock:
            self._graph = load_graph(self.kb, self._graph)
            return self._graph

    def _name_matrix(self, kg: KnowledgeGraph) -> tuple[list[str], np.ndarray]:
        with self._lock:
            found = self._names.get(kg)
            if found is None:
                keys = list(kg.graph.nodes)
                names = [kg.graph.nodes[key]["name"] for key in keys]
                found = self._names[kg] = (keys, self._vectors.matrix(names))
            return found

    def _terms(self, text: str) -> frozenset[str]:
        terms = self._term_cache.get(text)
        if terms is None:
            terms = self._term_cache[text] = frozenset(self.tokenize(text))
        return terms

    # -------------------------------------------------------------- retrieval
    def link(self, query: str, kg: KnowledgeGraph) -> dict[str, float]:
        """Seed entities of ``query`` -> weight, in ``kg`` (the asking user's graph).

        Entities the question names (exactly or by an alias) weigh 1.0. Only when it names none
        (a misspelling, a paraphrase, another language) do the entities whose names embed closest
        to the question stand in, weighted by their cosine similarity: next to an exact match
        they would only add look-alikes ("Project Heron359" for "Project Heron35").
        """
        seeds = {key: 1.0 for key in kg.link(query)}
        if seeds:
            return seeds
        keys, matrix = self._name_matrix(kg)
        if not keys:
            return {}
        sims = matrix @ self.embedder.embed([query])[0]
        top = np.argpartition(-sims, self.max_similar)[: self.max_similar] if len(sims) > self.max_similar \
            else np.arange(len(sims))
        return {keys[i]: float(sims[i]) for i in top[np.argsort(-sims[top])] if sims[i] >= self.link_threshold}

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        hits, _ = self.retrieve_with_facts(query, k, user)
        return hits

    def retrieve_with_facts(
        self, query: str, k: int, user: User, max_facts: int = 50
    ) -> tuple[list[Hit], list[Triple]]:
        """Hits, and the best ``max_facts`` visible relations of the query's neighbourhood."""
        if not query.strip() or k <= 0:
            return [], []
        kg = self.graph().for_user(user)
        if not kg.graph:
            return [], []
        seeds = self.link(query, kg)
        if not seeds:
            return [], []
        g = kg.graph
        # Words of the question beyond the entities it names ("founded" in "Who founded Acme?"):
        # a relation that says them ("founded in") is what the question asks about.
        asked = set(self.tokenize(query)) - {t for s in seeds if s in g for t in self._terms(g.nodes[s]["name"])}

        def matches(u: str, v: str, data: dict) -> int:
            if not asked:
                return 0
            said = self._terms(data["relation"]) | self._terms(g.nodes[u]["name"]) | self._terms(g.nodes[v]["name"])
            return len(asked & said)

        edges = self._neighbourhood(g, seeds, self.catalog.document_mask(user), matches)
        if not edges:
            return [], []
        rank = self._pagerank(edges, seeds)
        by_chunk: dict[int, float] = defaultdict(float)
        weighted = []
        for u, v, data in edges:
            weight = (rank.get(u, 0.0) + rank.get(v, 0.0)) * float(data.get("confidence", 1.0))
            weight *= 1 + self.relation_boost * matches(u, v, data)
            weighted.append((weight, u, v, data))
            if data.get("chunk_id") is not None:
                by_chunk[data["chunk_id"]] += weight
        weighted.sort(key=lambda e: -e[0])
        ranked = sorted(by_chunk, key=lambda c: -by_chunk[c])
        floor = self.min_relative_score * by_chunk[ranked[0]]
        best = [c for c in ranked[:k] if by_chunk[c] >= floor]
        hits = self.catalog.hits(best, [by_chunk[c] for c in best], self.name)
        for hit in hits:
            own = [_fact(kg.graph, u, v, data) for _, u, v, data in weighted if data.get("chunk_id") == hit.chunk.id]
            hit.facts = _unique(own)[: self.facts_per_hit]
        return hits, _unique([_fact(kg.graph, u, v, data) for _, u, v, data in weighted[: 2 * max_facts]])[:max_facts]

    def _neighbourhood(
        self, g: nx.MultiDiGraph, seeds: dict[str, float], visible: np.ndarray,
        matches: Callable[[str, str, dict], int],
    ) -> list[tuple[str, str, dict]]:
        """Visible relations around the seeds: those between seeds, then ``hops`` steps breadth-first.

        Each entity contributes at most ``edges_per_node`` relations and the walk stops at
        ``max_nodes`` entities or ``max_edges`` relations, so a hub (a city every document
        mentions) costs the same as a leaf. A seed's own relations are all read and those that
        ``matches`` the question's words go first, so a hub seed keeps its relevant relations.
        """

        def seen(data: dict) -> bool:
            # ``visible`` is False for documents removed since the graph was built, too.
            doc_id = data.get("doc_id")
            return doc_id is not None and 0 <= doc_id < len(visible) and bool(visible[doc_id])

        reached = {s for s in seeds if s in g}
        edges: dict[tuple[str, str, int], dict] = {}
        for a in reached:  # relations between two named entities matter most: never capped
            for b in reached:
                for key, data in g.succ[a].get(b, {}).items():
                    if seen(data):
                        edges[(a, b, key)] = data
        frontier = list(reached)
        for _ in range(self.hops):
            next_frontier = []
            for node in frontier:
                taken = 0
                incident = _incident(g, node)
                if node in seeds:
                    incident = sorted(incident, key=lambda e: -matches(e[0], e[1], e[3]))
                for u, v, key, data in incident:
                    if taken >= self.edges_per_node or len(edges) >= self.max_edges:
                        break
                    if not seen(data):
                        continue
                    other = v if u == node else u
                    if other not in reached:
                        if len(reached) >= self.max_nodes:
                            continue
                        reached.add(other)
                        next_frontier.append(other)
                    edges[(u, v, key)] = data
                    taken += 1
            frontier = next_frontier
            if not frontier:
                break
        return [(u, v, data) for (u, v, _), data in edges.items()]

    @staticmethod
    def _pagerank(
        edges: list[tuple[str, str, dict]], seeds: dict[str, float], alpha: float = 0.85, iterations: int = 50
    ) -> dict[str, float]:
        """Personalised PageRank from the seeds over the (undirected, confidence-weighted) neighbourhood.

        Power iteration on a sparse matrix: the neighbourhood has at most a few thousand relations,
        where building a NetworkX graph for ``nx.pagerank`` would cost more than the walk itself.
        """
        index: dict[str, int] = {}
        rows, cols, weights = [], [], []
        for u, v, data in edges:
            i, j = index.setdefault(u, len(index)), index.setdefault(v, len(index))
            weight = float(data.get("confidence", 1.0))
            rows += (i, j)
            cols += (j, i)
            weights += (weight, weight)
        n = len(index)
        start = np.zeros(n)
        for seed, weight in seeds.items():
            if seed in index:
                start[index[seed]] = weight
        if not start.any():
            return {}
        start /= start.sum()
        adjacency = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
        out = np.asarray(adjacency.sum(axis=1)).ravel()
        walk = sparse.diags(1.0 / np.where(out > 0, out, 1.0)) @ adjacency  # row-stochastic
        rank = start.copy()
        for _ in range(iterations):
            nxt = alpha * (walk.T @ rank) + (1 - alpha) * start
            done = np.abs(nxt - rank).sum() < 1e-8
            rank = nxt
            if done:
                break
        return dict(zip(index, rank.tolist()))


def _incident(g: nx.MultiDiGraph, node: str):
    """Every relation touching ``node``, in either direction, as (u, v, key, data)."""
    for other, by_key in g.succ[node].items():
        for key, data in by_key.items():
            yield node, other, key, data
    for other, by_key in g.pred[node].items():
        for key, data in by_key.items():
            yield other, node, key, data


def _fact(g: nx.MultiDiGraph, u: str, v: str, data: dict) -> Triple:
    """A relation of the graph as the ``Triple`` it came from (entity names, provenance)."""
    nodes = g.nodes
    return Triple(
        subject=nodes[u]["name"], relation=data["relation"], object=nodes[v]["name"],
        chunk_id=data.get("chunk_id"), subject_type=nodes[u].get("type", ""),
        object_type=nodes[v].get("type", ""), confidence=float(data.get("confidence", 1.0)),
        doc_id=data.get("doc_id"),
    )


def _unique(triples: list[Triple]) -> list[Triple]:
    seen: set[Triple] = set()
    return [t for t in triples if not (t in seen or seen.add(t))]
