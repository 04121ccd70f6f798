"""The knowledge graph: a NetworkX multigraph derived from the knowledge base's triples table.

Nodes are resolved entities (key = canonical name, see ``kg.resolve``) with attributes ``name``,
``type``, ``aliases`` (every surface form), ``mentions``, ``doc_ids`` and ``attributes``; edges are
relations, one per stored triple, carrying ``relation``, ``chunk_id``, ``doc_id`` and ``confidence``
so every fact points back to the passage it came from. A triple whose object is a literal value
(``kg.resolve.is_attribute``: a number, amount, percentage or date) is no edge and makes no node: it
is one of its subject's ``attributes``, a ``Triple`` with the entity's name as subject and the same
provenance (``chunk_id``, ``doc_id``), so "Headcount 31 Dec 2025: 48" stays with Munich and its
passage without making "48" Munich's neighbour. Removing a document (whose triples SQLite deletes by
cascade) therefore also removes every entity no remaining triple mentions.

Access control: a user's graph is resolved from the triples of the documents they may read and
from nothing else (``for_user``); attributes too. Names, aliases, types, mention counts, degrees, keys, merges and
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

import base64
import gc
import hashlib
import json
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from kg.resolve import ALIAS_RELATIONS, Entity, canonical_key, normalize, resolve
from zhiku.errors import UnknownEntityError, UsageError
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.records import Triple, User
from zhiku.text import CJK_RUN

log = logging.getLogger(__name__)

GRAPH_FILE = "graph.json"
GRAPH_STAMP = "graph.stamp"
#: What versions before FORMAT_VERSION 2 saved. Unpickling runs code, so it is deleted unread.
LEGACY_GRAPH_FILE = "graph.pickle"
#: Bumped when the saved layout changes, so an old file is rebuilt instead of misread.
FORMAT_VERSION = 3
#: Users' graphs kept per graph, one per distinct set of groups asking (least recently used go);
#: each costs memory in proportion to the triples its user may read.
VIEW_CACHE_SIZE = 8

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


@dataclass(frozen=True)
class _Resolved:
    """Which entity each string names, and the entities: what resolution decided, saved as it is.

    ``entity_of[i]`` is the index (into ``keys``) of the entity ``strings[i]`` names as a subject
    or object, ``-1`` for strings that are only relations, types or literal values. ``forms`` maps
    the normalised and canonical forms of every alias to an entity index. ``attribute[j]`` says
    that triple ``j`` states a value of its subject rather than a relation.
    """

    keys: list[str]
    names: list[str]
    types: list[str]
    mentions: list[int]
    entity_of: np.ndarray  # int64, one per string of the sources
    forms: dict[str, int]
    attribute: np.ndarray  # bool, one per triple of the sources


class KnowledgeGraph:
    """The graph and its queries. Build it with ``load_graph(kb)``; it is read-only afterwards."""

    def __init__(
        self, graph: nx.MultiDiGraph, sources: TripleColumns, resolved: _Resolved,
        doc_groups: dict[int, tuple[str, ...]], epoch: int = -1, fingerprint: str = "",
    ) -> None:
        self.graph = graph
        #: The triples the graph was resolved from (a user's graph is resolved from some of them).
        self.sources = sources
        self._resolved = resolved
        #: Normalised and canonical forms of every alias -> entity key (for lookups and linking).
        keys = resolved.keys
        self.forms: dict[str, str] = {form: keys[i] for form, i in resolved.forms.items()}
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
            sources = TripleColumns.of(triples)
            entities = list(resolution.entities.values())
            index = {e.key: i for i, e in enumerate(entities)}
            forms: dict[str, int] = {}
            for entity in entities:
                for alias in sorted(entity.aliases):
                    forms.setdefault(normalize(alias), index[entity.key])
                    forms.setdefault(resolution.canonical[alias], index[entity.key])
            key_of = resolution.key_of
            entity_of = np.array([index[key_of[s]] if s in resolution.canonical else -1 for s in sources.strings],
                                 dtype=np.int64)
            attribute = np.array(resolution.attribute, dtype=bool).reshape(len(triples))
            resolved = _Resolved([e.key for e in entities], [e.name for e in entities], [e.type for e in entities],
                                 [e.mentions for e in entities], entity_of, forms, attribute)
            return cls._assemble(sources, resolved, dict(doc_groups), epoch)

    @classmethod
    def _assemble(
        cls, sources: TripleColumns, resolved: _Resolved, doc_groups: dict[int, tuple[str, ...]], epoch: int,
        fingerprint: str = "",
    ) -> KnowledgeGraph:
        """The NetworkX graph of resolved triples: what a fresh build and a saved file both end in.

        Aliases and documents per entity are derived here. Column-wise with numpy, and no Python
        step per edge but creating its attributes: this runs on every load of the graph.
        """
        keys, n = resolved.keys, len(resolved.keys)
        entity_of, ints, attribute = resolved.entity_of, sources.ints, resolved.attribute
        if not len(resolved.names) == len(resolved.types) == len(resolved.mentions) == n \
                or len(entity_of) != len(sources.strings) or (entity_of >= n).any() or (entity_of < -1).any() \
                or any(not 0 <= i < n for i in resolved.forms.values()) or len(attribute) != len(ints):
            raise ValueError("the resolution does not match the triples")
        u, v, doc = entity_of[ints[:, 0]], entity_of[ints[:, 2]], ints[:, 6]
        if (u < 0).any() or (v[~attribute] < 0).any():
            raise ValueError("a triple names an entity that is not in the graph")
        strings = np.array(sources.strings, dtype=object)
        # Each entity's surface forms, and the documents that mention it (distinct (entity, document)
        # pairs, coded as one integer), as runs of entity-sorted arrays.
        surfaces = np.flatnonzero(entity_of >= 0)
        surfaces = surfaces[np.argsort(entity_of[surfaces], kind="stable")]
        alias_cuts = np.searchsorted(entity_of[surfaces], np.arange(n + 1)).tolist()
        alias_names = strings[surfaces].tolist()
        width = int(doc.max(initial=0)) + 2
        pairs = np.sort(np.concatenate([u * width + doc + 1, (v * width + doc + 1)[~attribute]]))
        pairs = pairs[(np.diff(pairs, prepend=-1) != 0) & (pairs % width != 0)]  # distinct, with a document
        doc_cuts = np.searchsorted(pairs // width, np.arange(n + 1)).tolist()
        mentioned_in = (pairs % width - 1).tolist()
        # NetworkX keeps a graph in plain dicts (``_node``, ``_succ``, ``_pred``); filled directly.
        graph = nx.MultiDiGraph()
        values = _attributes(sources, resolved)
        graph._node.update(
            (key, {"name": name, "type": type_, "aliases": tuple(sorted(alias_names[a:b])), "mentions": mentions,
                   "doc_ids": frozenset(mentioned_in[c:d]), "attributes": values.get(i, ())})
            for i, (key, name, type_, mentions, a, b, c, d) in enumerate(zip(
                keys, resolved.names, resolved.types, resolved.mentions, alias_cuts, alias_cuts[1:],
                doc_cuts, doc_cuts[1:]))
        )
        alias_relations = [i for i, s in enumerate(sources.strings) if s in ALIAS_RELATIONS]
        # An alias is a merge, not a fact; "Acme Corp. owns Acme" says nothing once both are one.
        edges = np.flatnonzero(~np.isin(ints[:, 1], alias_relations) & (u != v) & ~attribute)
        chunk_ids, doc_ids = ints[edges, 5].tolist(), ints[edges, 6].tolist()
        if (ints[edges, 5:] == _NONE).any():
            chunk_ids = [None if c == _NONE else c for c in chunk_ids]
            doc_ids = [None if d == _NONE else d for d in doc_ids]
        data = [{"relation": relation, "chunk_id": chunk_id, "doc_id": doc_id, "confidence": confidence}
                for relation, chunk_id, doc_id, confidence in zip(
                    strings[ints[edges, 1]].tolist(), chunk_ids, _shared(doc_ids),
                    _shared(sources.confidence[edges].tolist()))]
        # The edge key is the triple's position.
        succ, pred = _adjacency(keys, edges, u[edges], v[edges], data)
        graph._succ.update(succ)
        graph._pred.update(pred)
        return cls(graph, sources, resolved, doc_groups, epoch, fingerprint)

    @classmethod
    def build(cls, kb: KnowledgeBase) -> KnowledgeGraph:
        """Build from the knowledge base's triples, stamped with the state they were read in."""
        with kb.snapshot():  # the state, the groups and the triples of one committed version
            epoch, fingerprint = source_state(kb)
            groups = {d.id: d.groups for d in kb.documents() if d.id is not None}
            triples = kb.triples()
        graph = cls.from_triples(triples, groups, epoch)
        graph.fingerprint = fingerprint
        return graph

    # --------------------------------------------------------------- persistence
    def _to_json(self) -> dict[str, Any]:
        """The graph as plain data: its triples, their resolution and the documents' groups. Number
        columns are little-endian arrays in base64 (a tenth of the cost of parsing JSON numbers)."""
        resolved = self._resolved
        return {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "doc_groups": [[doc_id, list(groups)] for doc_id, groups in self.doc_groups.items()],
            "strings": self.sources.strings,
            "triples": _pack(self.sources.ints),
            "confidence": _pack(self.sources.confidence),
            "keys": resolved.keys,
            "names": resolved.names,
            "types": resolved.types,
            "mentions": resolved.mentions,
            "entity_of": _pack(resolved.entity_of),
            "forms": list(resolved.forms),
            "form_entities": _pack(np.fromiter(resolved.forms.values(), dtype=np.int64, count=len(resolved.forms))),
            "attribute": _pack(resolved.attribute.astype(np.int64)),
        }

    @classmethod
    def _from_json(cls, data: dict[str, Any], epoch: int) -> KnowledgeGraph:
        strings = _texts(data["strings"])
        ints = _unpack(data["triples"], np.int64).reshape(-1, 7)
        confidence = _unpack(data["confidence"], np.float64)
        if len(confidence) != len(ints) or (ints[:, :5] < 0).any() or (ints[:, :5] >= len(strings)).any():
            raise ValueError("the triple columns do not match")
        forms = _texts(data["forms"])
        form_entities = _unpack(data["form_entities"], np.int64)
        if len(forms) != len(form_entities):
            raise ValueError("the forms do not match")
        resolved = _Resolved(_texts(data["keys"]), _texts(data["names"]), _texts(data["types"]),
                             [int(m) for m in data["mentions"]], _unpack(data["entity_of"], np.int64),
                             dict(zip(forms, form_entities.tolist())), _unpack(data["attribute"], np.int64) != 0)
        doc_groups = {int(doc_id): tuple(_texts(groups)) for doc_id, groups in data["doc_groups"]}
        return cls._assemble(TripleColumns(strings, ints, confidence), resolved, doc_groups, epoch,
                             str(data["fingerprint"]))

    @classmethod
    def read(cls, path: Path, epoch: int = -1) -> KnowledgeGraph:
        """The graph ``save`` wrote to ``path``.

        Raises ``OSError``, ``ValueError`` (``UnicodeError``, ``JSONDecodeError`` and base64's
        ``binascii.Error`` among them), ``KeyError``, ``TypeError``, ``IndexError`` or (JSON
        nested too deep) ``RecursionError`` for a file that is not such a graph.
        """
        with _gc_paused():
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
                raise ValueError(f"not a knowledge graph of format {FORMAT_VERSION}")
            return cls._from_json(data, epoch)

    def save(self, root: Path) -> None:
        """Write the graph, then its stamp, each atomically: a crash between them only forces a rebuild."""
        payload = json.dumps(self._to_json(), ensure_ascii=False, separators=(",", ":"))
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
        for run in CJK_RUN.findall(norm):
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

    def attributes(self, entity: str, user: User | None = None) -> list[Triple]:
        """The literal values stated about ``entity`` ("Headcount 31 Dec 2025: 48"), in source order,
        each a triple with the entity's name as subject and the chunk and document it came from."""
        g = self.for_user(user)
        return list(g.graph.nodes[g.require(entity)]["attributes"])

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
            "attributes": sum(len(values) for _, values in graph.nodes(data="attributes")),
            "documents": len({d for _, _, d in graph.edges(data="doc_id")}),
            "components": nx.number_weakly_connected_components(graph) if graph.number_of_nodes() else 0,
            "types": dict(types.most_common()),
            "epoch": self.epoch,
        }

    # -------------------------------------------------------------------- export
    def export(self, path: Path, user: User | None = None) -> None:
        """Write the graph ``user`` may see as GraphML (``.graphml``) or node-link JSON (``.json``).

        Attributes are flattened to strings and numbers so Gephi, Neo4j and yEd can read them:
        aliases and attributes ("label: value") are joined with " | ", document ids with ",".
        """
        graph = self.for_user(user).graph
        flat = nx.MultiDiGraph()
        for key, data in graph.nodes(data=True):
            flat.add_node(key, name=data["name"], type=data["type"], aliases=" | ".join(data["aliases"]),
                          mentions=data["mentions"], doc_ids=",".join(map(str, sorted(data["doc_ids"]))),
                          attributes=" | ".join(f"{a.relation}: {a.object}" for a in data["attributes"]))
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


def _attributes(sources: TripleColumns, resolved: _Resolved) -> dict[int, tuple[Triple, ...]]:
    """Entity index -> the attribute triples of which it is the subject, named by the entity."""
    s, names, types = sources.strings, resolved.names, resolved.types
    found: dict[int, list[Triple]] = {}
    rows = np.flatnonzero(resolved.attribute)
    owners = resolved.entity_of[sources.ints[rows, 0]].tolist()
    for e, (_, r, b, _, tb, c, d), f in zip(owners, sources.ints[rows].tolist(), sources.confidence[rows].tolist()):
        found.setdefault(e, []).append(Triple(names[e], s[r], s[b], None if c == _NONE else c, types[e], s[tb], f,
                                              None if d == _NONE else d))
    return {e: tuple(values) for e, values in found.items()}


def _adjacency(
    keys: list[str], position: np.ndarray, head: np.ndarray, tail: np.ndarray, data: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, dict[int, dict[str, Any]]]], dict[str, dict[str, dict[int, dict[str, Any]]]]]:
    """A NetworkX multigraph's successor and predecessor dicts, built one node at a time.

    Edge ``i`` goes from ``keys[head[i]]`` to ``keys[tail[i]]`` under key ``position[i]``
    (ascending) with attributes ``data[i]``. The result is exactly what ``add_edges_from`` in that
    order leaves (at a third of its cost, with no Python step per edge): one edge-key dict per
    node pair, shared by both sides; a node's neighbours in the order of their first edge.
    """
    pair = head * len(keys) + tail
    _, first, which = np.unique(pair, return_index=True, return_inverse=True)
    attributes = np.empty(len(data), dtype=object)
    attributes[:] = data
    by_pair = np.empty(len(first), dtype=object)
    by_pair[:] = list(map(dict, zip(zip(position[first].tolist(), attributes[first].tolist()))))
    later = np.ones(len(pair), dtype=bool)
    later[first] = False
    for p, key, edge in zip(which[later].tolist(), position[later].tolist(), attributes[later].tolist()):
        by_pair[p][key] = edge
    names = np.array(keys, dtype=object)

    def side(owner: np.ndarray, other: np.ndarray) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
        """Owner key -> {other key: edge-key dict}, for every node (most have no edges on a side)."""
        order = np.lexsort((first, owner))
        counts = np.bincount(owner, minlength=len(keys)).tolist()
        others, dicts = iter(names[other[order]].tolist()), iter(by_pair[order].tolist())
        # dict(zip(next c others, next c dicts)) for each node's count c, with no Python step per node.
        return dict(zip(keys, map(dict, map(zip, map(islice, repeat(others), counts),
                                            map(islice, repeat(dicts), counts)))))

    heads, tails = head[first], tail[first]
    return side(heads, tails), side(tails, heads)


#: What a packed array may hold: little-endian 32- or 64-bit integers, 64-bit floats.
_PACKED = {np.dtype(np.int64): ("<i4", "<i8"), np.dtype(np.float64): ("<f8",)}


def _pack(array: np.ndarray) -> dict[str, str]:
    """A number array as base64 of its little-endian bytes, integers in 32 bits when they fit."""
    small = array.dtype.kind == "i" and (len(array) == 0 or -2**31 <= array.min() and array.max() < 2**31)
    dtype = "<i4" if small else _PACKED[array.dtype][-1]
    return {"dtype": dtype, "data": base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")}


def _unpack(packed: dict[str, str], dtype: type[np.generic]) -> np.ndarray:
    """``_pack``'s output as a flat array of ``dtype``; ``ValueError`` (or ``TypeError``) otherwise."""
    if packed["dtype"] not in _PACKED[np.dtype(dtype)]:
        raise ValueError(f"an array of {packed['dtype']!r} where {np.dtype(dtype)} was expected")
    return np.frombuffer(base64.b64decode(packed["data"], validate=True), dtype=packed["dtype"]).astype(dtype)


def _texts(values: object) -> list[str]:
    """``values`` when it is a list of strings; ``TypeError`` otherwise."""
    if not isinstance(values, list) or not set(map(type, values)) <= {str}:
        raise TypeError("expected a list of strings")
    return values


def _shared(values: list[Any]) -> list[Any]:
    """``values`` with equal ones as one object: a million edges name a few thousand documents and
    a handful of confidences, and a number object per edge was 64 MB per million edges."""
    first: dict[Any, Any] = {}
    return [first.setdefault(value, value) for value in values]


def _scalar(value: int | None) -> int:
    return -1 if value is None else int(value)


def _dedupe(triples: list[Triple]) -> list[Triple]:
    seen: set[Triple] = set()
    return [t for t in triples if not (t in seen or seen.add(t))]


#: One statement, so the epoch and what the graph derives from come from one snapshot: every
#: document's id, content hash and groups, and every triple's strings (each column joined in the
#: order a scan of the rowid table reads them: by id), chunk, document and confidence (sums
#: weighted by id: they move with any changed or moved value). 60 ms at 100k triples.
_STATE_SQL = """SELECT
  (SELECT value FROM meta WHERE key = 'epoch'),
  (SELECT group_concat(id || ' ' || content_hash || ' ' || groups, '{sep}')
     FROM (SELECT id, content_hash, groups FROM documents ORDER BY id)),
  count(*), total(id), total(id * chunk_id), total(id * doc_id), total(confidence), total(id * confidence),
  group_concat(subject, '{sep}'), group_concat(relation, '{sep}'), group_concat(object, '{sep}'),
  group_concat(subject_type, '{sep}'), group_concat(object_type, '{sep}')
FROM triples""".format(sep="\x1f")  # a literal separator: char(31) would be a call per row (twice the time)


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
    """The saved graph when it is readable and reflects ``fingerprint``; None (rebuild) otherwise."""
    try:
        graph = KnowledgeGraph.read(path, epoch)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        log.warning("%s is damaged (%s: %s); rebuilding the graph from the knowledge base",
                    path, type(exc).__name__, exc)
        return None
    return graph if graph.fingerprint == fingerprint else None


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
