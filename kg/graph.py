"""The knowledge graph: a NetworkX multigraph derived from the knowledge base's triples table.

Nodes are resolved entities (key = canonical name, see ``kg.resolve``) with attributes ``name``,
``type``, ``aliases`` (every surface form), ``mentions`` and ``doc_ids``; edges are relations, one
per stored triple, carrying ``relation``, ``chunk_id``, ``doc_id`` and ``confidence`` so every fact
points back to the passage it came from. Removing a document (whose triples SQLite deletes by
cascade) therefore also removes every entity no remaining triple mentions.

Access control: a user's graph is resolved from the triples of the documents they may read and
from nothing else (``for_user``). Names, aliases, types, mention counts, degrees, keys, merges and
the forms a question is linked by all come from visible triples, so what only a restricted
document says (a codename alias, "A is also known as B", a type vote, one more relation) never
shows through; an entity no visible triple mentions does not exist for that user. Views are kept
per set of groups (an LRU on the graph, which is immutable, so a rebuilt graph starts with none).
Every query takes an optional ``user`` and answers from that user's graph; ``user=None`` is the
whole graph (administration commands).

Persistence: SQLite stays the truth. The graph is saved in the knowledge base folder as plain JSON
(``graph.json``: the triples column-wise with interned strings, their resolution, the documents'
groups; nothing in it can run code), beside ``graph.stamp`` with the ``kb.epoch`` and a fingerprint
of the triples and documents it reflects. It is rebuilt when the stamp lags ``kb.epoch`` and the
fingerprint moved; a damaged, foreign or outdated file is rebuilt from SQLite, and a
``graph.pickle`` left by an older version is deleted unread.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from kg.resolve import ALIAS_RELATIONS, Entity, canonical_key, normalize, resolve
from zhiku.errors import UnknownEntityError, UsageError
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.records import Triple, User

log = logging.getLogger(__name__)

GRAPH_FILE = "graph.json"
GRAPH_STAMP = "graph.stamp"
#: What versions before FORMAT_VERSION 2 saved. Unpickling runs code, so it is deleted unread.
LEGACY_GRAPH_FILE = "graph.pickle"
#: Bumped when the saved layout changes, so an old file is rebuilt instead of misread.
FORMAT_VERSION = 2
#: Users' graphs kept per graph, one per distinct set of groups asking (least recently used go).
VIEW_CACHE_SIZE = 16

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
#: Longest name, in words (Latin) or characters (Chinese), that ``link`` looks for.
_MAX_LINK_WORDS, _MAX_LINK_CHARS = 8, 16
#: ``chunk_id`` / ``doc_id`` None in the integer columns.
_NONE = -1


@dataclass(frozen=True)
class TripleColumns:
    """Triples column-wise with their strings interned: the graph's sources, kept compact in memory
    (a user's graph is resolved from a selection of them) and saved as they are.

    ``ints`` has one row per triple: the string indices of subject, relation, object, subject type
    and object type, then ``chunk_id`` and ``doc_id`` (``-1`` for None).
    """

    strings: list[str]
    ints: np.ndarray  # int64, shape (n, 7)
    confidence: np.ndarray  # float64, shape (n,)

    @classmethod
    def of(cls, triples: Sequence[Triple]) -> TripleColumns:
        index: dict[str, int] = {}
        rows = [
            (index.setdefault(t.subject, len(index)), index.setdefault(t.relation, len(index)),
             index.setdefault(t.object, len(index)), index.setdefault(t.subject_type, len(index)),
             index.setdefault(t.object_type, len(index)),
             _NONE if t.chunk_id is None else t.chunk_id, _NONE if t.doc_id is None else t.doc_id)
            for t in triples
        ]
        return cls(list(index), np.array(rows, dtype=np.int64).reshape(-1, 7),
                   np.array([t.confidence for t in triples], dtype=np.float64))

    def doc_ids(self) -> frozenset[int]:
        """Every document id the triples come from (``-1`` stands for triples without one)."""
        return frozenset(np.unique(self.ints[:, 6]).tolist())

    def triples(self, docs: Collection[int] | None = None) -> list[Triple]:
        """The triples, in order; only those of the documents ``docs`` when given."""
        ints, confidence = self.ints, self.confidence
        if docs is not None:
            keep = np.isin(ints[:, 6], np.fromiter(docs, dtype=np.int64, count=len(docs)))
            ints, confidence = ints[keep], confidence[keep]
        s = self.strings
        return [
            Triple(s[a], s[r], s[b], None if c == _NONE else c, s[ta], s[tb], f, None if d == _NONE else d)
            for (a, r, b, ta, tb, c, d), f in zip(ints.tolist(), confidence.tolist())
        ]

    def to_json(self) -> dict[str, Any]:
        return {"strings": self.strings, "ints": self.ints.ravel().tolist(), "confidence": self.confidence.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TripleColumns:
        """Columns from ``to_json``'s output; ``ValueError`` for anything inconsistent."""
        strings = data["strings"]
        if not all(isinstance(s, str) for s in strings):
            raise ValueError("strings must be text")
        ints = np.array(data["ints"], dtype=np.int64).reshape(-1, 7)
        confidence = np.array(data["confidence"], dtype=np.float64).reshape(-1)
        if len(confidence) != len(ints) or (ints[:, :5] < 0).any() or (ints[:, :5] >= len(strings)).any():
            raise ValueError("triple columns do not match")
        return cls(list(strings), ints, confidence)


class KnowledgeGraph:
    """The graph and its queries. Build it with ``load_graph(kb)``; it is read-only afterwards."""

    def __init__(
        self, graph: nx.MultiDiGraph, sources: TripleColumns, forms: dict[str, str],
        doc_groups: dict[int, tuple[str, ...]], epoch: int = -1, fingerprint: str = "",
    ) -> None:
        self.graph = graph
        #: The triples the graph was resolved from (a user's graph is resolved from some of them).
        self.sources = sources
        #: Normalised and canonical forms of every alias -> entity key (for lookups and linking).
        self.forms = forms
        #: Document id -> access groups, as the knowledge base had them when the graph was built.
        self.doc_groups = doc_groups
        self.epoch = epoch
        #: Summary of the triples and documents the graph was built from (see ``source_state``).
        self.fingerprint = fingerprint
        self._views: OrderedDict[frozenset[str], KnowledgeGraph] = OrderedDict()
        self._views_lock = threading.Lock()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_triples(
        cls, triples: Iterable[Triple], doc_groups: dict[int, tuple[str, ...]], epoch: int = -1
    ) -> KnowledgeGraph:
        """Resolve the triples' entities and add one edge per triple (alias triples become merges)."""
        with _gc_paused():
            triples = list(triples)
            resolution = resolve(triples)
            forms: dict[str, str] = {}
            key_of: dict[str, str] = {}
            for entity in resolution.entities.values():
                for alias in sorted(entity.aliases):
                    key_of[alias] = entity.key
                    forms.setdefault(normalize(alias), entity.key)
                    forms.setdefault(resolution.canonical[alias], entity.key)
            entities = {e.key: (e.name, e.type, e.mentions) for e in resolution.entities.values()}
            return cls._assemble(TripleColumns.of(triples), key_of, entities, forms, dict(doc_groups), epoch)

    @classmethod
    def _assemble(
        cls, sources: TripleColumns, key_of: dict[str, str], entities: dict[str, tuple[str, str, int]],
        forms: dict[str, str], doc_groups: dict[int, tuple[str, ...]], epoch: int, fingerprint: str = "",
    ) -> KnowledgeGraph:
        """The NetworkX graph of resolved triples: what a fresh build and a saved file both end in.

        ``key_of`` maps every subject and object to its entity, ``entities`` each entity key to its
        name, type and mention count; aliases and documents per entity are derived here.
        """
        if not set(key_of.values()) <= entities.keys() or not set(forms.values()) <= entities.keys():
            raise ValueError("aliases name entities that are not in the graph")
        keys = list(entities)
        position = {key: i for i, key in enumerate(keys)}
        aliases: dict[str, list[str]] = defaultdict(list)
        for surface, key in key_of.items():
            aliases[key].append(surface)
        # Column-wise with numpy: one Python step per edge is what remains (this runs on every load).
        node_of = np.array([position.get(key_of.get(s, ""), -1) for s in sources.strings], dtype=np.int64)
        ints = sources.ints
        u, v, doc = node_of[ints[:, 0]], node_of[ints[:, 2]], ints[:, 6]
        if (u < 0).any() or (v < 0).any():
            raise ValueError("a triple names an entity that is not in the graph")
        # The documents mentioning each entity: distinct (entity, document) pairs, coded as one integer.
        width = int(doc.max(initial=0)) + 2
        pairs = np.sort(np.concatenate([u * width + doc + 1, v * width + doc + 1]))
        pairs = pairs[np.diff(pairs, prepend=-1) != 0]
        pairs = pairs[pairs % width != 0]  # triples without a document
        bounds = np.searchsorted(pairs // width, np.arange(1, len(keys)))
        docs = [frozenset(ids.tolist()) for ids in np.split(pairs % width - 1, bounds)]
        alias_relations = [i for i, s in enumerate(sources.strings) if s in ALIAS_RELATIONS]
        # An alias is a merge, not a fact; "Acme Corp. owns Acme" says nothing once both are one.
        edges = np.flatnonzero(~np.isin(ints[:, 1], alias_relations) & (u != v))
        names = np.array(keys, dtype=object)
        strings = np.array(sources.strings, dtype=object)
        chunk_ids, doc_ids = ints[edges, 5].tolist(), ints[edges, 6].tolist()
        if (ints[edges, 5:] == _NONE).any():
            chunk_ids = [None if c == _NONE else c for c in chunk_ids]
            doc_ids = [None if d == _NONE else d for d in doc_ids]
        data = [{"relation": relation, "chunk_id": chunk_id, "doc_id": doc_id, "confidence": confidence}
                for relation, chunk_id, doc_id, confidence in zip(
                    strings[ints[edges, 1]].tolist(), chunk_ids, doc_ids, sources.confidence[edges].tolist())]
        succ: dict[str, dict[str, dict[int, dict[str, Any]]]] = {key: {} for key in keys}
        pred: dict[str, dict[str, dict[int, dict[str, Any]]]] = {key: {} for key in keys}
        # The edge key is the triple's position.
        for i, a, b, attributes in zip(edges.tolist(), names[u[edges]].tolist(), names[v[edges]].tolist(), data):
            out = succ[a]
            by_key = out.get(b)
            if by_key is None:
                out[b] = pred[b][a] = {i: attributes}
            else:
                by_key[i] = attributes
        graph = nx.MultiDiGraph()
        # NetworkX's own add_edges_from costs three times this loop (a graph is loaded on every
        # start); its adjacency is these plain dicts, successors and predecessors sharing each
        # edge-key dict, exactly as add_edge would leave them.
        graph._node.update(
            (key, {"name": name, "type": type_, "aliases": tuple(sorted(aliases[key])), "mentions": mentions,
                   "doc_ids": ids})
            for (key, (name, type_, mentions)), ids in zip(entities.items(), docs)
        )
        graph._succ.update(succ)
        graph._pred.update(pred)
        return cls(graph, sources, forms, doc_groups, epoch, fingerprint)

    @classmethod
    def build(cls, kb: KnowledgeBase) -> KnowledgeGraph:
        """Build from the knowledge base's triples, stamped with the state read *before* reading them."""
        epoch, fingerprint = source_state(kb)
        groups = {d.id: d.groups for d in kb.documents() if d.id is not None}
        graph = cls.from_triples(kb.triples(), groups, epoch)
        graph.fingerprint = fingerprint
        return graph

    # --------------------------------------------------------------- persistence
    def to_json(self) -> dict[str, Any]:
        """The graph as plain data: its triples, their resolution and the documents' groups."""
        keys = {key: i for i, key in enumerate(self.graph.nodes)}
        string = {s: i for i, s in enumerate(self.sources.strings)}
        return {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "doc_groups": [[doc_id, list(groups)] for doc_id, groups in self.doc_groups.items()],
            "triples": self.sources.to_json(),
            "entities": [[key, data["name"], data["type"], data["mentions"], [string[a] for a in data["aliases"]]]
                         for key, data in self.graph.nodes(data=True)],
            "forms": [[form, keys[key]] for form, key in self.forms.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], epoch: int) -> KnowledgeGraph:
        """The graph ``to_json`` wrote; ``ValueError``, ``KeyError``, ``TypeError`` or ``IndexError``
        when the data is not such a graph."""
        sources = TripleColumns.from_json(data["triples"])
        entities: dict[str, tuple[str, str, int]] = {}
        key_of: dict[str, str] = {}
        for key, name, type_, mentions, aliases in data["entities"]:
            entities[str(key)] = (str(name), str(type_), int(mentions))
            for alias in aliases:
                key_of[sources.strings[alias]] = str(key)
        keys = list(entities)
        forms = {str(form): keys[index] for form, index in data["forms"]}
        doc_groups = {int(doc_id): tuple(map(str, groups)) for doc_id, groups in data["doc_groups"]}
        return cls._assemble(sources, key_of, entities, forms, doc_groups, epoch, str(data["fingerprint"]))

    def save(self, root: Path) -> None:
        """Write the graph, then its stamp, each atomically: a crash between them only forces a rebuild."""
        payload = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        atomic_write(root / GRAPH_FILE, lambda tmp: tmp.write_text(payload, encoding="utf-8"))
        _write_stamp(root, self.epoch, self.fingerprint)

    # ---------------------------------------------------------------- visibility
    def for_user(self, user: User | None) -> KnowledgeGraph:
        """The graph ``user`` may see: resolved from the triples of their documents and nothing else.

        ``None`` (administration) and a user who may see every document the triples come from get
        this graph itself; others a graph of their own, built on first use and kept per set of
        groups (``VIEW_CACHE_SIZE`` of them).
        """
        if user is None or user.sees_all:
            return self
        groups = frozenset(user.groups)
        with self._views_lock:
            view = self._views.get(groups)
            if view is not None:
                self._views.move_to_end(groups)
                view.epoch = self.epoch
                return view
            visible = {doc_id: g for doc_id, g in self.doc_groups.items() if user.can_see(g)}
            if visible.keys() >= self.sources.doc_ids():
                view = self
            else:
                view = KnowledgeGraph.from_triples(self.sources.triples(visible), visible, self.epoch)
            self._views[groups] = view
            if len(self._views) > VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
            return view

    # ------------------------------------------------------------------- lookups
    def entity_key(self, text: str, user: User | None = None) -> str | None:
        """The key of the entity named ``text`` (a key, any alias, any spelling variant), or None."""
        g = self.for_user(user)
        for candidate in (text, g.forms.get(normalize(text)), g.forms.get(canonical_key(text))):
            if candidate is not None and candidate in g.graph:
                return candidate
        return None

    def require(self, text: str, user: User | None = None) -> str:
        """Like ``entity_key`` but raises ``UnknownEntityError`` naming what was asked.

        The message is the same whether nobody mentions ``text`` or only documents ``user`` may not
        read do, so the error does not tell that a hidden entity exists.
        """
        key = self.entity_key(text, user)
        if key is None:
            raise UnknownEntityError(f"no entity named {text!r} in the knowledge graph")
        return key

    def entity(self, key: str, user: User | None = None) -> Entity:
        g = self.for_user(user)
        if key not in g.graph:
            raise UnknownEntityError(f"no entity named {key!r} in the knowledge graph")
        data = g.graph.nodes[key]
        return Entity(key=key, name=data["name"], type=data["type"], aliases=set(data["aliases"]),
                      mentions=data["mentions"], doc_ids=set(data["doc_ids"]))

    def names(self, user: User | None = None) -> dict[str, list[str]]:
        """Entity key -> its name followed by its other surface forms (for embedding-based linking)."""
        return {
            key: [data["name"], *(a for a in data["aliases"] if a != data["name"])]
            for key, data in self.for_user(user).graph.nodes(data=True)
        }

    def link(self, text: str, user: User | None = None) -> list[str]:
        """Keys of the entities named in ``text`` (a question), longest names first.

        Matches whole words for Latin names and substrings for Chinese ones, on normalised forms of
        every alias the user may see. A shorter name found inside a longer matched one ("Acme"
        inside "Acme Robotics Europe") is dropped in favour of the longer.
        """
        forms = self.for_user(user).forms
        norm = normalize(text)
        matches: dict[str, str] = {}  # matched form -> key
        words = norm.split()
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + _MAX_LINK_WORDS) + 1):
                form = " ".join(words[i:j])
                if form in forms and len(form) >= 2:
                    matches[form] = forms[form]
        for run in _CJK_RUN.findall(norm):
            for i in range(len(run)):
                for j in range(i + 2, min(len(run), i + _MAX_LINK_CHARS) + 1):
                    if run[i:j] in forms:
                        matches[run[i:j]] = forms[run[i:j]]
        ordered = sorted(matches, key=lambda f: (-len(f), f))
        keys: list[str] = []
        kept: list[str] = []
        for form in ordered:
            key = matches[form]
            if key in keys:
                continue
            if any(form in longer and matches[longer] != key for longer in kept):
                continue
            kept.append(form)
            keys.append(key)
        return keys

    # ------------------------------------------------------------------- queries
    def distances(self, entity: str, hops: int = 1, user: User | None = None) -> dict[str, int]:
        """Entity keys within ``hops`` of ``entity`` (either edge direction) -> their distance."""
        g = self.for_user(user)
        start = g.require(entity)
        return dict(nx.single_source_shortest_path_length(g.graph.to_undirected(as_view=True), start, cutoff=hops))

    def neighbors(
        self, entity: str, hops: int = 1, user: User | None = None, limit: int | None = None
    ) -> list[Triple]:
        """The relations within ``hops`` of ``entity``, nearest first, each with its provenance.

        An edge belongs to the neighbourhood when one end is closer than ``hops`` and the other end
        is within it. Subjects and objects are entity names (``entity_key`` maps them back).
        """
        g = self.for_user(user)
        dist = g.distances(entity, hops)
        edges = [
            (min(dist[u], dist[v]), -data["confidence"], u, v, data)
            for u, v, data in g.graph.subgraph(dist).edges(data=True)
            if min(dist[u], dist[v]) < hops
        ]
        edges.sort(key=lambda e: e[:2] + (e[2], e[3], e[4]["chunk_id"] or 0))
        triples = [g._triple(u, v, data) for *_, u, v, data in edges]
        return _dedupe(triples)[:limit]

    def path(self, source: str, target: str, user: User | None = None) -> list[Triple]:
        """The relations along a shortest path between two entities (either direction); [] if none."""
        g = self.for_user(user)
        a, b = g.require(source), g.require(target)
        try:
            nodes = nx.shortest_path(g.graph.to_undirected(as_view=True), a, b)
        except nx.NetworkXNoPath:
            return []
        steps = []
        for u, v in zip(nodes, nodes[1:]):
            candidates = [(u, v, d) for d in g.graph.get_edge_data(u, v, default={}).values()]
            candidates += [(v, u, d) for d in g.graph.get_edge_data(v, u, default={}).values()]
            s, o, data = max(candidates, key=lambda c: c[2]["confidence"])
            steps.append(g._triple(s, o, data))
        return steps

    def subgraph(self, entities: Sequence[str], hops: int = 1, user: User | None = None) -> nx.MultiDiGraph:
        """A copy of the graph around ``entities`` (each within ``hops``), as ``user`` may see it."""
        g = self.for_user(user)
        keep: set[str] = set()
        for entity in entities:
            keep.update(g.distances(entity, hops))
        return g.graph.subgraph(keep).copy()

    def top_entities(self, n: int = 10, by: str = "degree", user: User | None = None) -> list[tuple[str, float]]:
        """The ``n`` most central entities by ``degree`` (relation count) or ``pagerank``."""
        graph = self.for_user(user).graph
        if by == "degree":
            scores: dict[str, float] = dict(graph.degree())
        elif by == "pagerank":
            scores = nx.pagerank(nx.DiGraph(graph)) if graph.number_of_nodes() else {}
        else:
            raise ValueError(f"top_entities: by must be 'degree' or 'pagerank', not {by!r}")
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def entities_of(self, doc_id: int, user: User | None = None) -> list[str]:
        """Keys of the entities mentioned in one document (none when ``user`` may not see it)."""
        return sorted(k for k, ids in self.for_user(user).graph.nodes(data="doc_ids") if doc_id in ids)

    def stats(self, user: User | None = None) -> dict[str, Any]:
        graph = self.for_user(user).graph
        types = Counter(t or "unknown" for _, t in graph.nodes(data="type"))
        return {
            "entities": graph.number_of_nodes(),
            "relations": graph.number_of_edges(),
            "documents": len({d for _, _, d in graph.edges(data="doc_id")}),
            "components": nx.number_weakly_connected_components(graph) if graph.number_of_nodes() else 0,
            "types": dict(types.most_common()),
            "epoch": self.epoch,
        }

    # -------------------------------------------------------------------- export
    def export(self, path: Path, user: User | None = None) -> None:
        """Write the graph ``user`` may see as GraphML (``.graphml``) or node-link JSON (``.json``).

        Attributes are flattened to strings and numbers so Gephi, Neo4j and yEd can read them:
        aliases are joined with " | ", document ids with ",".
        """
        graph = self.for_user(user).graph
        flat = nx.MultiDiGraph()
        for key, data in graph.nodes(data=True):
            flat.add_node(key, name=data["name"], type=data["type"], aliases=" | ".join(data["aliases"]),
                          mentions=data["mentions"], doc_ids=",".join(map(str, sorted(data["doc_ids"]))))
        for u, v, data in graph.edges(data=True):
            flat.add_edge(u, v, relation=data["relation"], chunk_id=_scalar(data["chunk_id"]),
                          doc_id=_scalar(data["doc_id"]), confidence=float(data["confidence"]))
        suffix = path.suffix.lower()
        if suffix == ".graphml":
            atomic_write(path, lambda tmp: nx.write_graphml(flat, tmp))
        elif suffix == ".json":
            payload = json.dumps(nx.node_link_data(flat, edges="edges"), ensure_ascii=False, indent=1)
            atomic_write(path, lambda tmp: tmp.write_text(payload, encoding="utf-8"))
        else:
            raise UsageError(f"{path}: export format is chosen by extension: use .graphml or .json")

    def _triple(self, u: str, v: str, data: dict[str, Any]) -> Triple:
        nodes = self.graph.nodes
        return Triple(
            subject=nodes[u]["name"], relation=data["relation"], object=nodes[v]["name"],
            chunk_id=data["chunk_id"], subject_type=nodes[u]["type"], object_type=nodes[v]["type"],
            confidence=data["confidence"], doc_id=data["doc_id"],
        )


def _scalar(value: int | None) -> int:
    return -1 if value is None else int(value)


def _dedupe(triples: list[Triple]) -> list[Triple]:
    seen: set[Triple] = set()
    return [t for t in triples if not (t in seen or seen.add(t))]


#: One statement, so the epoch and what the graph derives from come from one snapshot: every
#: document's id, content hash and groups, and every triple's strings (each column joined in id
#: order), chunk, document and confidence (sums weighted by id: exact for a changed or moved value).
_STATE_SQL = """SELECT
  (SELECT value FROM meta WHERE key = 'epoch'),
  (SELECT group_concat(id || ' ' || content_hash || ' ' || groups, char(30))
     FROM (SELECT id, content_hash, groups FROM documents ORDER BY id)),
  count(*), total(id), total(id * chunk_id), total(id * doc_id), total(confidence), total(id * confidence),
  group_concat(subject, char(31)), group_concat(relation, char(31)), group_concat(object, char(31)),
  group_concat(subject_type, char(31)), group_concat(object_type, char(31))
FROM triples"""


def source_state(kb: KnowledgeBase) -> tuple[int, str]:
    """The knowledge base's epoch and a fingerprint of what the graph derives from.

    The epoch moves with every write (feedback and users too); the fingerprint moves only when a
    document's id, content or access groups change, or any triple's content does (an ACL edit of
    the same length, a re-extraction that reuses the ids), so other writes do not force a rebuild.
    """
    epoch, *state = kb.query(_STATE_SQL)[0]
    digest = hashlib.blake2b(digest_size=16)
    for part in state:
        digest.update(str(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return int(epoch), digest.hexdigest()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a graph is built: its few hundred thousand new objects
    would trigger passes over every live object in the process, none of which can be garbage yet
    (about half the load time of a 100k-triple graph)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_stamp(root: Path) -> tuple[int, str] | None:
    try:
        data = json.loads((root / GRAPH_STAMP).read_text(encoding="utf-8"))
        return int(data["epoch"]), str(data["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_stamp(root: Path, epoch: int, fingerprint: str) -> None:
    stamp = json.dumps({"epoch": epoch, "fingerprint": fingerprint})
    atomic_write(root / GRAPH_STAMP, lambda tmp: tmp.write_text(stamp, encoding="utf-8"))


def _read_saved(path: Path, fingerprint: str, epoch: int) -> KnowledgeGraph | None:
    """The saved graph when it is ours and reflects ``fingerprint``; None (rebuild) otherwise."""
    try:
        with _gc_paused():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT_VERSION or data.get("fingerprint") != fingerprint:
                return None
            return KnowledgeGraph.from_json(data, epoch)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        log.warning("%s is damaged (%s: %s); rebuilding the graph from the knowledge base",
                    path, type(exc).__name__, exc)
        return None


def _drop_legacy(root: Path) -> None:
    """Delete a ``graph.pickle`` an older version left: never unpickled, it could run any code."""
    legacy = root / LEGACY_GRAPH_FILE
    try:
        legacy.unlink()
        log.info("deleted %s (an old graph format that is never read); the graph is %s", legacy, GRAPH_FILE)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete %s (%s); it is ignored", legacy, exc)


def load_graph(kb: KnowledgeBase, current: KnowledgeGraph | None = None) -> KnowledgeGraph:
    """The knowledge base's graph, current with its epoch.

    Returns ``current`` when it still reflects the knowledge base (so a long-lived caller can keep
    one and call this before each query; its ``epoch`` is advanced when only unrelated tables
    changed), else the saved graph when its stamp matches, else a fresh build that is saved for the
    next caller. A damaged, outdated or foreign file is rebuilt, never trusted.
    """
    epoch = kb.epoch
    if current is not None and current.epoch == epoch:
        return current
    _drop_legacy(kb.root)
    stamp = _read_stamp(kb.root)
    if stamp is not None and stamp[0] == epoch:
        fingerprint = stamp[1]
    else:
        epoch, fingerprint = source_state(kb)
    if current is not None and current.fingerprint == fingerprint:
        current.epoch = epoch
        return current
    if stamp is not None and stamp[1] == fingerprint:
        graph = _read_saved(kb.root / GRAPH_FILE, fingerprint, epoch)
        if graph is not None:
            if stamp[0] != epoch:
                _write_stamp(kb.root, epoch, fingerprint)
            return graph
    built = KnowledgeGraph.build(kb)
    built.save(kb.root)
    return built
