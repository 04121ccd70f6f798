"""Graph retrieval: from the entities a question names to the passages that state facts about them.

1. **Link** the question to graph entities: exact and alias matches (``KnowledgeGraph.link``)
   weigh 1.0; entities whose name embeds close to the question (cosine >= ``link_threshold``) add
   their similarity as weight. Entity-name vectors are computed once per name and kept (in the
   instance and in ``entity_vectors.npz`` in the knowledge-base folder), so a rebuilt graph only
   embeds its new names.
2. **Expand** ``hops`` steps around the seeds over the relations the user may see (at most
   ``max_nodes`` entities, so a hub cannot blow up a query), then run personalised PageRank from
   the seeds on that neighbourhood.
3. **Score chunks** by the relations they carry: each relation adds the PageRank mass of its two
   ends to the chunk it was extracted from. The hit's ``facts`` are those relations, best first.

Access control: relations are filtered by the *current* document groups (the retriever's catalog,
not the graph's snapshot) before expansion, so an invisible document contributes neither a chunk
nor a fact nor a path through which relevance could flow.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np

from kg.graph import KnowledgeGraph, load_graph
from retrieval.catalog import Catalog
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
        max_nodes: int = 400,
        facts_per_hit: int = 5,
        persist: bool = True,
    ) -> None:
        self.kb = kb
        self.embedder = embedder
        self.catalog = catalog or Catalog(kb)
        self.hops = hops
        self.link_threshold = link_threshold
        self.max_similar = max_similar
        self.max_nodes = max_nodes
        self.facts_per_hit = facts_per_hit
        self._graph = graph
        self._names: tuple[KnowledgeGraph, list[str], np.ndarray] | None = None  # (graph, keys, name matrix)
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
            if self._names is None or self._names[0] is not kg:
                keys = list(kg.graph.nodes)
                names = [kg.graph.nodes[key]["name"] for key in keys]
                self._names = (kg, keys, self._vectors.matrix(names))
            return self._names[1], self._names[2]

    # -------------------------------------------------------------- retrieval
    def link(self, query: str, kg: KnowledgeGraph) -> dict[str, float]:
        """Seed entities of ``query`` -> weight (exact/alias 1.0, else name-embedding similarity)."""
        seeds = {key: 1.0 for key in kg.link(query)}
        keys, matrix = self._name_matrix(kg)
        if len(keys):
            sims = matrix @ self.embedder.embed([query])[0]
            top = np.argsort(-sims)[: self.max_similar]
            for i in top:
                if sims[i] >= self.link_threshold:
                    seeds.setdefault(keys[i], float(sims[i]))
        return seeds

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        hits, _ = self.retrieve_with_facts(query, k, user)
        return hits

    def retrieve_with_facts(self, query: str, k: int, user: User) -> tuple[list[Hit], list[Triple]]:
        """Hits and every visible relation of the query's neighbourhood, best first."""
        if not query.strip() or k <= 0:
            return [], []
        kg = self.graph()
        if kg.graph.number_of_edges() == 0:
            return [], []
        seeds = self.link(query, kg)
        if not seeds:
            return [], []
        visible = self._visible_docs(user)
        edges = self._neighbourhood(kg.graph, seeds, visible)
        if not edges:
            return [], []
        rank = self._pagerank(edges, seeds)
        by_chunk: dict[int, float] = defaultdict(float)
        facts_of: dict[int, list[tuple[float, Triple]]] = defaultdict(list)
        for u, v, data in edges:
            weight = (rank.get(u, 0.0) + rank.get(v, 0.0)) * float(data.get("confidence", 1.0))
            chunk_id = data.get("chunk_id")
            if chunk_id is None:
                continue
            by_chunk[chunk_id] += weight
            facts_of[chunk_id].append((weight, _fact(kg.graph, u, v, data)))
        best = sorted(by_chunk, key=lambda c: -by_chunk[c])[:k]
        hits = self.catalog.hits(best, [by_chunk[c] for c in best], self.name)
        for hit in hits:
            ranked = sorted(facts_of[hit.chunk.id], key=lambda wf: -wf[0])
            hit.facts = _unique([t for _, t in ranked])[: self.facts_per_hit]
        all_facts = sorted((wf for chunk in facts_of.values() for wf in chunk), key=lambda wf: -wf[0])
        return hits, _unique([t for _, t in all_facts])

    def _visible_docs(self, user: User) -> np.ndarray | None:
        """visible[doc_id], or None when the user sees everything."""
        return None if self.catalog.sees_everything(user) else self.catalog.document_mask(user)

    def _neighbourhood(
        self, g: nx.MultiDiGraph, seeds: dict[str, float], visible: np.ndarray | None
    ) -> list[tuple[str, str, dict]]:
        """Visible relations among the entities within ``hops`` of the seeds (breadth-first, capped)."""

        def seen(data: dict) -> bool:
            doc_id = data.get("doc_id")
            if doc_id is None or self.catalog.document(doc_id) is None:
                return False  # a relation of a document removed since the graph was built
            return visible is None or (doc_id < len(visible) and bool(visible[doc_id]))

        reached = {s for s in seeds if s in g}
        frontier = list(reached)
        edges: dict[tuple[str, str, int], dict] = {}
        for _ in range(self.hops):
            next_frontier = []
            for node in frontier:
                for u, v, key, data in _incident(g, node):
                    if not seen(data):
                        continue
                    other = v if u == node else u
                    if other not in reached:
                        if len(reached) >= self.max_nodes:
                            continue
                        reached.add(other)
                        next_frontier.append(other)
                    edges[(u, v, key)] = data
            frontier = next_frontier
            if not frontier:
                break
        return [(u, v, data) for (u, v, _), data in edges.items()]

    @staticmethod
    def _pagerank(edges: list[tuple[str, str, dict]], seeds: dict[str, float]) -> dict[str, float]:
        """Personalised PageRank from the seeds over the (undirected, confidence-weighted) neighbourhood."""
        local = nx.Graph()
        for u, v, data in edges:
            weight = float(data.get("confidence", 1.0))
            if local.has_edge(u, v):
                local[u][v]["weight"] += weight
            else:
                local.add_edge(u, v, weight=weight)
        personalization = {s: w for s, w in seeds.items() if s in local}
        if not personalization:
            return {}
        return nx.pagerank(local, alpha=0.85, personalization=personalization, weight="weight")


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
