"""Graph retrieval, HippoRAG 2 style: personalised PageRank over entities and passages.

1. **Link** the question to the user's knowledge graph: entities it names exactly or by an alias
   (``KnowledgeGraph.link``), the facts whose sentences ("Acme Robotics founded by Jane Smith")
   embed closest to it (their two ends become seeds, weighted by the similarity), and entities
   whose names embed close to it. Name and fact vectors are computed once per distinct text and
   kept (in the instance and in ``entity_vectors.npz`` / ``fact_vectors.npz`` in the knowledge-base
   folder), so a rebuilt graph only embeds what is new. No LLM is involved, at ingest or here.
2. **Seed** the walk: the linked entities, each divided by the number of chunks that mention it (a
   name every document uses says little), and the chunks dense retrieval ranks best
   (``passage_share`` of the reset mass, in proportion to their min-max normalised cosine).
3. **Walk** personalised PageRank over the passage graph (``retrieval.passage_graph``: chunk and
   entity nodes, mention, relation and synonym edges), built once per graph and user view, and
   rank chunks by the mass they hold. Mass is pushed from nodes holding more than
   ``push_threshold`` (1e-5: the same rankings as 1e-6 on both dev sets, at a quarter of the time
   on 100k chunks). A hit's ``facts`` are the relations extracted from it,
   those closest to the question first.

When the question links to nothing (no name, no fact above ``fact_threshold``, no name above
``name_threshold``), the graph has nothing to add and the retriever returns no hits.

Access control: everything runs on the asking user's graph (``KnowledgeGraph.for_user``: resolved
from the triples of the documents they may read), so linking only knows the names, aliases and
facts those documents give, and the passage graph holds only their chunks and relations. The walk
also leaves out the nodes and edges of documents the *current* catalog hides (a change since the
graph was built): ``passage_graph.HiddenWalk`` is the walk of the graph built without them, so no
relevance flows through them, computed on the same matrices (no copy per set of visible
documents); dense seeds are the user's visible chunks only.
"""
from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from kg.graph import KnowledgeGraph, load_graph
from retrieval.catalog import Catalog
from retrieval.fusion import min_max
from retrieval.passage_graph import (
    DEFAULT_SYNONYM_THRESHOLD, SYNONYM_THRESHOLDS, HiddenWalk, PassageGraph, build_passage_graph,
    inner_product_index, personalized_pagerank, shown,
)
from retrieval.vector import VectorRetriever
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.models import Embedder
from zhiku.records import Hit, Triple, User

log = logging.getLogger(__name__)

ENTITY_VECTORS = "entity_vectors.npz"
FACT_VECTORS = "fact_vectors.npz"


class TextVectors:
    """Embeddings of short texts (entity names, fact sentences), computed once per distinct text
    and remembered on disk, so only new texts are embedded after the graph changes.

    Nothing stays in memory between calls: the view's FAISS indexes hold the one resident copy (a
    cache here was a second one, 1.5 GB of fact vectors at 1M chunks), and a view is rebuilt only
    when the graph changes, when reading the file back costs far less than what the build does.
    Without a file (``path`` None) the instance keeps them, as the only place they can be kept.
    """

    def __init__(self, embedder: Embedder, path: Path | None) -> None:
        self.embedder = embedder
        self.path = path
        self._kept: tuple[list[str], np.ndarray] | None = None  # only without a file
        self._lock = threading.Lock()

    def matrix(self, texts: list[str]) -> np.ndarray:
        """Row i is the normalised embedding of ``texts[i]``."""
        with self._lock:
            names, vectors = self._stored()
            row = {text: i for i, text in enumerate(names)}
            missing = [t for t in dict.fromkeys(texts) if t not in row]
            if missing:
                added = np.asarray(self.embedder.embed(missing), dtype=np.float32).reshape(len(missing), -1)
                row.update((text, len(names) + i) for i, text in enumerate(missing))
                names, vectors = names + missing, np.concatenate([vectors, added]) if len(names) else added
                self._store(names, vectors)
            if not texts:
                return np.zeros((0, self.embedder.dimension), dtype=np.float32)
            return vectors[np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))].astype(
                np.float32, copy=False)

    def _stored(self) -> tuple[list[str], np.ndarray]:
        empty: tuple[list[str], np.ndarray] = ([], np.zeros((0, self.embedder.dimension), dtype=np.float32))
        if self.path is None:
            return self._kept or empty
        if not self.path.exists():
            return empty
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["model"]) == self.embedder.name:
                    return saved["names"].tolist(), saved["vectors"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable %s (%s)", self.path, exc)
        return empty

    def _store(self, names: list[str], vectors: np.ndarray) -> None:
        if self.path is None:
            self._kept = names, vectors
            return

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(out, model=np.array(self.embedder.name), names=np.array(names), vectors=vectors)

        try:
            atomic_write(self.path, write)
        except OSError as exc:
            log.warning("could not save vectors to %s: %s", self.path, exc)


@dataclass
class _View:
    """One user view's passage graph and what linking needs of it, built on its first query."""

    pg: PassageGraph
    index: dict[str, int]
    names: faiss.Index  # entity name vectors, in entity order
    #: Distinct fact sentence vectors, each stored once however many facts say it (most of the
    #: view's memory); ``reconstruct`` gives one back.
    sentences: faiss.Index
    sentence_of: np.ndarray  # fact -> row of ``sentences``
    #: Facts ordered by sentence: sentence ``s`` is said by ``said_by[said_cuts[s]:said_cuts[s + 1]]``.
    said_by: np.ndarray
    said_cuts: np.ndarray
    #: Facts ordered by chunk id (and those chunk ids), for the facts of a hit.
    by_chunk: np.ndarray
    chunk_of: np.ndarray
    #: Every document a node or edge comes from.
    documents: np.ndarray


class GraphRetriever:
    """Query linking and personalised PageRank over the passage graph of the user's knowledge graph.

    Defaults are global (chosen on the development sets, the same for every knowledge base):
    see the README's graph-mode paragraph for the figures behind them.
    """

    name = "graph"

    def __init__(
        self,
        kb: KnowledgeBase,
        embedder: Embedder,
        graph: KnowledgeGraph | None = None,
        catalog: Catalog | None = None,
        dense: VectorRetriever | None = None,
        damping: float = 0.3,
        passage_share: float = 0.8,
        dense_pool: int = 10,
        name_weight: float = 1.0,
        facts_linked: int = 5,
        fact_threshold: float = 0.3,
        names_linked: int = 3,
        name_threshold: float = 0.55,
        synonym_threshold: float | None = None,
        facts_per_hit: int = 5,
        push_threshold: float = 1e-5,
        persist: bool = True,
    ) -> None:
        self.kb = kb
        self.embedder = embedder
        self.catalog = catalog or Catalog(kb)
        self.dense = dense or VectorRetriever(kb, embedder, self.catalog)
        self.damping = damping
        self.passage_share = passage_share
        self.dense_pool = dense_pool
        self.name_weight = name_weight
        self.facts_linked = facts_linked
        self.fact_threshold = fact_threshold
        self.names_linked = names_linked
        self.name_threshold = name_threshold
        self.synonym_threshold = synonym_threshold if synonym_threshold is not None \
            else SYNONYM_THRESHOLDS.get(embedder.name, DEFAULT_SYNONYM_THRESHOLD)
        self.facts_per_hit = facts_per_hit
        self.push_threshold = push_threshold
        self._graph = graph
        self._views: weakref.WeakKeyDictionary[KnowledgeGraph, _View] = weakref.WeakKeyDictionary()
        self._names = TextVectors(embedder, kb.root / ENTITY_VECTORS if persist else None)
        self._facts = TextVectors(embedder, kb.root / FACT_VECTORS if persist else None)
        self._lock = threading.Lock()
        self._view_lock = threading.Lock()

    # ------------------------------------------------------------------ state
    def graph(self) -> KnowledgeGraph:
        """The knowledge graph, reloaded when the knowledge base changed."""
        with self._lock:
            self._graph = load_graph(self.kb, self._graph)
            return self._graph

    def view(self, kg: KnowledgeGraph) -> _View:
        """The passage graph of ``kg`` (a user's graph) and its vectors, built once per graph."""
        with self._view_lock:
            found = self._views.get(kg)
            if found is None:
                found = self._views[kg] = self._build_view(kg)
            return found

    def _build_view(self, kg: KnowledgeGraph) -> _View:
        keys = list(kg.graph.nodes)
        names = self._names.matrix([kg.graph.nodes[key]["name"] for key in keys])
        pg = build_passage_graph(kg, names, self.synonym_threshold)
        sentences = [pg.fact_sentence(i) for i in range(len(pg.fact_heads))]
        distinct = list(dict.fromkeys(sentences))
        row = {s: i for i, s in enumerate(distinct)}
        by_chunk = np.argsort(pg.fact_chunks, kind="stable")
        sentence_of = np.fromiter((row[s] for s in sentences), dtype=np.int64, count=len(sentences))
        said_by = np.argsort(sentence_of, kind="stable")
        said_cuts = np.searchsorted(sentence_of[said_by], np.arange(len(distinct) + 1))
        # Searched as an index of one vector per fact would be (the same lists, trained alike).
        index = inner_product_index(self._facts.matrix(distinct), rows=sentence_of)
        return _View(pg, {key: i for i, key in enumerate(keys)}, inner_product_index(names), index, sentence_of,
                     said_by, said_cuts, by_chunk, pg.fact_chunks[by_chunk], pg.documents())

    # -------------------------------------------------------------- retrieval
    def link(self, query: str, kg: KnowledgeGraph, vector: np.ndarray | None = None,
             visible: np.ndarray | None = None) -> dict[str, float]:
        """Seed entities of ``query`` -> weight, in ``kg`` (the asking user's graph).

        Named entities weigh ``name_weight``; the ends of the ``facts_linked`` facts closest to the question
        (cosine >= ``fact_threshold``) add that cosine, and so do the ``names_linked`` entities
        whose names embed closest (cosine >= ``name_threshold``). ``visible[doc_id]`` limits the
        facts to documents the user may read now.
        """
        view = self.view(kg)
        if vector is None:
            vector = self.embedder.embed([query])[0]
        seeds: dict[str, float] = {key: self.name_weight for key in kg.link(query)} if self.name_weight > 0 else {}
        pg = view.pg
        facts_ok = shown(pg.fact_docs, visible) if visible is not None else None
        for i, sim in _nearest_facts(view, vector, self.facts_linked, self.fact_threshold, facts_ok):
            for end in (pg.fact_heads[i], pg.fact_tails[i]):
                key = pg.entities[end]
                seeds[key] = seeds.get(key, 0.0) + sim
        alive = None
        if facts_ok is not None and not facts_ok.all():
            alive = np.zeros(pg.n_entities, dtype=bool)
            alive[pg.fact_heads[facts_ok]] = alive[pg.fact_tails[facts_ok]] = True
        for i, sim in _nearest(view.names, vector, self.names_linked, self.name_threshold, alive):
            seeds[pg.entities[i]] = seeds.get(pg.entities[i], 0.0) + sim
        return seeds

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        hits, _ = self.retrieve_with_facts(query, k, user)
        return hits

    def retrieve_with_facts(
        self, query: str, k: int, user: User, max_facts: int = 50
    ) -> tuple[list[Hit], list[Triple]]:
        """Hits, and the ``max_facts`` visible relations closest to the question."""
        if not query.strip() or k <= 0:
            return [], []
        kg = self.graph().for_user(user)
        if not kg.graph:
            return [], []
        view = self.view(kg)
        visible = self.catalog.document_mask(user)
        everything = _all_seen(view.documents, visible)  # the usual case: no document hidden since the build
        vector = self.embedder.embed([query])[0]
        seeds = self.link(query, kg, vector, None if everything else visible)
        if not seeds:
            return [], []
        pg = view.pg
        # Documents hidden since the graph was built: walked around, on the same matrices.
        walk = pg.walk if everything else HiddenWalk.of(pg, visible)
        entity_chunks = pg.entity_chunks if everything else walk.entity_chunks
        reset = np.zeros(pg.n_nodes)
        for key, weight in seeds.items():
            i = view.index[key]
            reset[i] = weight / max(int(entity_chunks[i]), 1)
        reset *= (1.0 - self.passage_share) / reset.sum()
        # Dense seeds: chunks that are nodes join the reset vector; the others cannot be reached by
        # the walk and rank by their own reset mass, (1 - damping) of it.
        ids, scores = self.dense.search(vector, self.dense_pool, user)
        dense = np.array(min_max(np.asarray(scores, dtype=np.float64).tolist()), dtype=np.float64)
        if dense.sum() > 0:
            dense *= self.passage_share / dense.sum()
        nodes = pg.chunk_nodes(ids)
        np.add.at(reset, nodes[nodes >= 0], dense[nodes >= 0])
        rank = personalized_pagerank(walk, reset, self.damping, self.push_threshold, walk_t=pg.walk_t)
        candidates = np.concatenate([pg.chunk_ids, ids[nodes < 0]])
        values = np.concatenate([rank[pg.n_entities:], (1.0 - self.damping) * dense[nodes < 0]])
        best = _best_visible(candidates, values, k, lambda ids: self.catalog.visible_chunks(user, ids))
        hits = self.catalog.hits(candidates[best].tolist(), values[best].tolist(), self.name)
        seen = None if everything else shown(pg.fact_docs, visible)
        for hit in hits:
            own = self._facts_of(view, hit.chunk.id)
            if seen is not None:
                own = own[seen[own]]
            own = own[np.argsort(-(view.sentences.reconstruct_batch(view.sentence_of[own]) @ vector), kind="stable")]
            hit.facts = _unique([_fact(view.pg, i) for i in own])[: self.facts_per_hit]
        closest = _nearest_facts(view, vector, 2 * max_facts, -np.inf, seen)
        facts = _unique([_fact(view.pg, i) for i, _ in closest])[:max_facts]
        return hits, facts

    @staticmethod
    def _facts_of(view: _View, chunk_id: int | None) -> np.ndarray:
        if chunk_id is None:
            return np.zeros(0, dtype=np.int64)
        lo, hi = np.searchsorted(view.chunk_of, chunk_id), np.searchsorted(view.chunk_of, chunk_id, side="right")
        return view.by_chunk[lo:hi]


def embed_graph_texts(kb: KnowledgeBase, embedder: Embedder) -> int:
    """Embed the entity names and fact sentences of the knowledge base's graph now, and keep them
    on disk (ingest's last step), so the first graph query after a change does not; returns the
    number of facts. Only texts not embedded before are embedded."""
    retriever = GraphRetriever(kb, embedder)
    return len(retriever.view(retriever.graph()).sentence_of)


def _best_visible(ids: np.ndarray, values: np.ndarray, k: int, visible) -> np.ndarray:
    """Positions of the ``k`` highest positive ``values`` whose ``ids`` are ``visible(ids)``, best
    first: the top ``4k`` are sorted and checked first, all of them only when too few are visible."""
    positive = np.flatnonzero(values > 0)
    fetch = min(4 * k, len(positive))
    while True:
        top = positive if fetch >= len(positive) else positive[np.argpartition(-values[positive], fetch)[:fetch]]
        top = top[np.lexsort((top, -values[top]))]
        top = top[visible(ids[top])]
        if len(top) >= k or fetch >= len(positive):
            return top[:k]
        fetch = len(positive)


def _all_seen(doc_ids: np.ndarray, visible: np.ndarray) -> bool:
    """Whether every one of the distinct ``doc_ids`` (``-1``: none) is ``visible``."""
    doc_ids = doc_ids[doc_ids >= 0]
    return bool((doc_ids < len(visible)).all() and visible[doc_ids].all())


def _nearest(index: faiss.Index, vector: np.ndarray, n: int, floor: float,
             allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The ``n`` rows of ``index`` closest to ``vector`` with cosine >= ``floor`` (and ``allowed``), best first."""
    total = int(index.ntotal)
    if n <= 0 or total == 0:
        return []
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    fetch = min(n if allowed is None else 4 * n, total)
    while True:
        sims, ids = index.search(query, fetch)
        found = [(int(i), float(s)) for i, s in zip(ids[0], sims[0])
                 if i >= 0 and s >= floor and (allowed is None or allowed[i])]
        if len(found) >= n or fetch >= total or (len(sims[0]) and sims[0][-1] < floor):
            return found[:n]
        fetch = min(2 * fetch, total)


def _nearest_facts(view: _View, vector: np.ndarray, n: int, floor: float,
                   allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The ``n`` facts (``allowed`` ones) whose sentences are closest to ``vector`` with cosine >=
    ``floor``, best first, the facts of one sentence in fact order: what ``_nearest`` gives on an
    index of one vector per fact (each sentence found says at least one fact, so ``n`` suffice)."""
    said = None
    if allowed is not None:
        said = np.zeros(len(view.said_cuts) - 1, dtype=bool)
        said[view.sentence_of[allowed]] = True
    found: list[tuple[int, float]] = []
    for s, sim in _nearest(view.sentences, vector, n, floor, said):
        facts = view.said_by[view.said_cuts[s]:view.said_cuts[s + 1]]
        found.extend((int(i), sim) for i in (facts if allowed is None else facts[allowed[facts]]))
    return found[:n]


def _fact(pg: PassageGraph, i: int) -> Triple:
    """Fact ``i`` of the passage graph as the ``Triple`` it came from (entity names, provenance)."""
    chunk, doc = int(pg.fact_chunks[i]), int(pg.fact_docs[i])
    head, tail = pg.fact_heads[i], pg.fact_tails[i]
    return Triple(
        subject=pg.names[head], relation=pg.fact_relations[i], object=pg.fact_objects[i],
        chunk_id=None if chunk < 0 else chunk, subject_type=pg.types[head],
        object_type="" if pg.is_attribute(i) else pg.types[tail],
        confidence=float(pg.fact_confidence[i]), doc_id=None if doc < 0 else doc,
    )


def _unique(triples: list[Triple]) -> list[Triple]:
    seen: set[Triple] = set()
    return [t for t in triples if not (t in seen or seen.add(t))]
