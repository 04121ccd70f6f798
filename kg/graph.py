"""The knowledge graph: a NetworkX multigraph derived from the knowledge base's triples table.

Nodes are resolved entities (key = canonical name, see ``kg.resolve``) with attributes ``name``,
``type``, ``aliases`` (every surface form), ``mentions`` and ``doc_ids``; edges are relations, one
per stored triple, carrying ``relation``, ``chunk_id``, ``doc_id`` and ``confidence`` so every fact
points back to the passage it came from. SQLite stays the truth: the graph is saved in the
knowledge base folder (``graph.pickle``, and ``graph.stamp`` with the ``kb.epoch`` and a fingerprint
of the triples and documents it reflects) and rebuilt when the stamp lags ``kb.epoch`` and the
fingerprint moved. Removing a document (whose triples SQLite deletes by cascade) therefore also
removes every entity no remaining triple mentions.

Access control: every query takes an optional ``user``; a user sees only the edges whose document
they may see and the entities mentioned in such documents. ``user=None`` means no filtering (for
administration commands).
"""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from kg.resolve import ALIAS_RELATIONS, Entity, canonical_key, normalize, resolve
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.records import Triple, User
from zhiku.errors import UnknownEntityError, UsageError

log = logging.getLogger(__name__)

GRAPH_FILE = "graph.pickle"
GRAPH_STAMP = "graph.stamp"
#: Bumped when the pickled layout changes, so an old file is rebuilt instead of misread.
FORMAT_VERSION = 1

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
#: Longest name, in words (Latin) or characters (Chinese), that ``link`` looks for.
_MAX_LINK_WORDS, _MAX_LINK_CHARS = 8, 16



class KnowledgeGraph:
    """The graph and its queries. Build it with ``load_graph(kb)``; it is read-only afterwards."""

    def __init__(self, graph: nx.MultiDiGraph, epoch: int) -> None:
        self.graph = graph
        self.epoch = epoch
        #: Normalised and canonical forms of every alias -> entity key (for lookups and linking).
        self.forms: dict[str, str] = graph.graph.setdefault("forms", {})
        #: Document id -> access groups, as the knowledge base had them when the graph was built.
        self.doc_groups: dict[int, tuple[str, ...]] = graph.graph.setdefault("doc_groups", {})

    # ------------------------------------------------------------------ building
    @classmethod
    def from_triples(
        cls, triples: Iterable[Triple], doc_groups: dict[int, tuple[str, ...]], epoch: int = -1
    ) -> KnowledgeGraph:
        """Resolve the triples' entities and add one edge per triple (alias triples become merges)."""
        triples = list(triples)
        resolution = resolve(triples)
        graph = nx.MultiDiGraph(forms={}, doc_groups=dict(doc_groups), format=FORMAT_VERSION)
        for entity in resolution.entities.values():
            graph.add_node(
                entity.key, name=entity.name, type=entity.type, aliases=tuple(sorted(entity.aliases)),
                mentions=entity.mentions, doc_ids=frozenset(entity.doc_ids),
            )
        key_of = resolution.key_of
        graph.add_edges_from(
            # Explicit edge keys (the triple's position) spare NetworkX searching for a free one.
            (key_of[t.subject], key_of[t.object], i,
             {"relation": t.relation, "chunk_id": t.chunk_id, "doc_id": t.doc_id, "confidence": t.confidence})
            for i, t in enumerate(triples)
            # An alias is a merge, not a fact; "Acme Corp. owns Acme" says nothing once both are one.
            if t.relation not in ALIAS_RELATIONS and key_of[t.subject] != key_of[t.object]
        )
        forms = graph.graph["forms"]
        for key, data in graph.nodes(data=True):
            for alias in data["aliases"]:
                forms.setdefault(normalize(alias), key)
                forms.setdefault(resolution.canonical[alias], key)
        return cls(graph, epoch)

    @classmethod
    def build(cls, kb: KnowledgeBase) -> KnowledgeGraph:
        """Build from the knowledge base's triples, stamped with the state read *before* reading them."""
        epoch, fingerprint = source_state(kb)
        groups = {d.id: d.groups for d in kb.documents() if d.id is not None}
        graph = cls.from_triples(kb.triples(), groups, epoch)
        graph.fingerprint = fingerprint
        return graph

    @property
    def fingerprint(self) -> str:
        """Summary of the triples and documents the graph was built from (see ``source_state``)."""
        return str(self.graph.graph.get("fingerprint", ""))

    @fingerprint.setter
    def fingerprint(self, value: str) -> None:
        self.graph.graph["fingerprint"] = value

    def save(self, root: Path) -> None:
        """Write the graph, then its stamp, each atomically: a crash between them only forces a rebuild."""
        atomic_write(root / GRAPH_FILE, lambda tmp: tmp.write_bytes(pickle.dumps(
            (FORMAT_VERSION, self.graph), protocol=pickle.HIGHEST_PROTOCOL)))
        _write_stamp(root, self.epoch, self.fingerprint)

    # ---------------------------------------------------------------- visibility
    def visible_docs(self, user: User | None) -> set[int] | None:
        """Ids of the documents ``user`` may see; None when nothing is hidden."""
        if user is None or user.sees_all:
            return None
        return {doc_id for doc_id, groups in self.doc_groups.items() if user.can_see(groups)}

    def view(self, user: User | None = None) -> nx.MultiDiGraph:
        """The graph as ``user`` may see it (a read-only view; the whole graph for None)."""
        docs = self.visible_docs(user)
        if docs is None:
            return self.graph
        g = self.graph
        return nx.subgraph_view(
            g,
            filter_node=lambda n: not docs.isdisjoint(g.nodes[n]["doc_ids"]),
            filter_edge=lambda u, v, k: g.edges[u, v, k]["doc_id"] in docs,
        )

    # ------------------------------------------------------------------- lookups
    def entity_key(self, text: str, user: User | None = None) -> str | None:
        """The key of the entity named ``text`` (a key, any alias, any spelling variant), or None."""
        view = self.view(user)
        for candidate in (text, self.forms.get(normalize(text)), self.forms.get(canonical_key(text))):
            if candidate is not None and candidate in view:
                return candidate
        return None

    def require(self, text: str, user: User | None = None) -> str:
        """Like ``entity_key`` but raises ``UnknownEntityError`` naming what was asked."""
        key = self.entity_key(text, user)
        if key is None:
            raise UnknownEntityError(f"no entity named {text!r} in the knowledge graph")
        return key

    def entity(self, key: str) -> Entity:
        data = self.graph.nodes[key]
        return Entity(key=key, name=data["name"], type=data["type"], aliases=set(data["aliases"]),
                      mentions=data["mentions"], doc_ids=set(data["doc_ids"]))

    def names(self, user: User | None = None) -> dict[str, list[str]]:
        """Entity key -> its name followed by its other surface forms (for embedding-based linking)."""
        return {
            key: [data["name"], *(a for a in data["aliases"] if a != data["name"])]
            for key, data in self.view(user).nodes(data=True)
        }

    def link(self, text: str, user: User | None = None) -> list[str]:
        """Keys of the entities named in ``text`` (a question), longest names first.

        Matches whole words for Latin names and substrings for Chinese ones, on normalised forms of
        every alias. A shorter name found inside a longer matched one ("Acme" inside "Acme Robotics
        Europe") is dropped in favour of the longer.
        """
        norm = normalize(text)
        matches: dict[str, str] = {}  # matched form -> key
        words = norm.split()
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + _MAX_LINK_WORDS) + 1):
                form = " ".join(words[i:j])
                if form in self.forms and len(form) >= 2:
                    matches[form] = self.forms[form]
        for run in _CJK_RUN.findall(norm):
            for i in range(len(run)):
                for j in range(i + 2, min(len(run), i + _MAX_LINK_CHARS) + 1):
                    if run[i:j] in self.forms:
                        matches[run[i:j]] = self.forms[run[i:j]]
        view = self.view(user)
        ordered = sorted(matches, key=lambda f: (-len(f), f))
        keys: list[str] = []
        kept: list[str] = []
        for form in ordered:
            key = matches[form]
            if key in keys or key not in view:
                continue
            if any(form in longer and matches[longer] != key for longer in kept):
                continue
            kept.append(form)
            keys.append(key)
        return keys

    # ------------------------------------------------------------------- queries
    def distances(self, entity: str, hops: int = 1, user: User | None = None) -> dict[str, int]:
        """Entity keys within ``hops`` of ``entity`` (either edge direction) -> their distance."""
        view = self.view(user)
        start = self.require(entity, user)
        return dict(nx.single_source_shortest_path_length(view.to_undirected(as_view=True), start, cutoff=hops))

    def neighbors(
        self, entity: str, hops: int = 1, user: User | None = None, limit: int | None = None
    ) -> list[Triple]:
        """The relations within ``hops`` of ``entity``, nearest first, each with its provenance.

        An edge belongs to the neighbourhood when one end is closer than ``hops`` and the other end
        is within it. Subjects and objects are entity names (``entity_key`` maps them back).
        """
        view = self.view(user)
        dist = self.distances(entity, hops, user)
        edges = [
            (min(dist[u], dist[v]), -data["confidence"], u, v, data)
            for u, v, data in view.subgraph(dist).edges(data=True)
            if min(dist[u], dist[v]) < hops
        ]
        edges.sort(key=lambda e: e[:2] + (e[2], e[3], e[4]["chunk_id"] or 0))
        triples = [self._triple(u, v, data) for *_, u, v, data in edges]
        return _dedupe(triples)[:limit]

    def path(self, source: str, target: str, user: User | None = None) -> list[Triple]:
        """The relations along a shortest path between two entities (either direction); [] if none."""
        view = self.view(user)
        a, b = self.require(source, user), self.require(target, user)
        try:
            nodes = nx.shortest_path(view.to_undirected(as_view=True), a, b)
        except nx.NetworkXNoPath:
            return []
        steps = []
        for u, v in zip(nodes, nodes[1:]):
            candidates = [(u, v, d) for d in view.get_edge_data(u, v, default={}).values()]
            candidates += [(v, u, d) for d in view.get_edge_data(v, u, default={}).values()]
            s, o, data = max(candidates, key=lambda c: c[2]["confidence"])
            steps.append(self._triple(s, o, data))
        return steps

    def subgraph(self, entities: Sequence[str], hops: int = 1, user: User | None = None) -> nx.MultiDiGraph:
        """A copy of the graph around ``entities`` (each within ``hops``), as ``user`` may see it."""
        keep: set[str] = set()
        for entity in entities:
            keep.update(self.distances(entity, hops, user))
        return self.view(user).subgraph(keep).copy()

    def top_entities(self, n: int = 10, by: str = "degree", user: User | None = None) -> list[tuple[str, float]]:
        """The ``n`` most central entities by ``degree`` (relation count) or ``pagerank``."""
        view = self.view(user)
        if by == "degree":
            scores: dict[str, float] = dict(view.degree())
        elif by == "pagerank":
            scores = nx.pagerank(nx.DiGraph(view)) if view.number_of_nodes() else {}
        else:
            raise ValueError(f"top_entities: by must be 'degree' or 'pagerank', not {by!r}")
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def entities_of(self, doc_id: int, user: User | None = None) -> list[str]:
        """Keys of the entities mentioned in one document (none when ``user`` may not see it)."""
        docs = self.visible_docs(user)
        if docs is not None and doc_id not in docs:
            return []
        return sorted(k for k, ids in self.graph.nodes(data="doc_ids") if doc_id in ids)

    def stats(self, user: User | None = None) -> dict[str, Any]:
        view = self.view(user)
        types = Counter(t or "unknown" for _, t in view.nodes(data="type"))
        return {
            "entities": view.number_of_nodes(),
            "relations": view.number_of_edges(),
            "documents": len({d for _, _, d in view.edges(data="doc_id")}),
            "components": nx.number_weakly_connected_components(view) if view.number_of_nodes() else 0,
            "types": dict(types.most_common()),
            "epoch": self.epoch,
        }

    # -------------------------------------------------------------------- export
    def export(self, path: Path, user: User | None = None) -> None:
        """Write the (visible) graph as GraphML (``.graphml``) or node-link JSON (``.json``).

        Attributes are flattened to strings and numbers so Gephi, Neo4j and yEd can read them:
        aliases are joined with " | ", document ids with ",".
        """
        flat = nx.MultiDiGraph()
        for key, data in self.view(user).nodes(data=True):
            flat.add_node(key, name=data["name"], type=data["type"], aliases=" | ".join(data["aliases"]),
                          mentions=data["mentions"], doc_ids=",".join(map(str, sorted(data["doc_ids"]))))
        for u, v, data in self.view(user).edges(data=True):
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


#: One statement, so the epoch and the summary of the graph's sources come from one snapshot.
_STATE_SQL = """SELECT
  (SELECT value FROM meta WHERE key = 'epoch'),
  (SELECT count(*) || ':' || total(id) || ':' || total(chunk_id) || ':' || total(doc_id) || ':'
          || total(length(subject) + 3 * length(relation) + 7 * length(object)) FROM triples),
  (SELECT count(*) || ':' || total(id) || ':' || total(ingested_at) || ':' || total(length(groups)) FROM documents)"""


def source_state(kb: KnowledgeBase) -> tuple[int, str]:
    """The knowledge base's epoch and a fingerprint of what the graph derives from.

    The epoch moves with every write (feedback, users, summaries too); the fingerprint moves only
    when triples or documents (ids, ingest times, access groups) change, so such writes do not
    force a rebuild.
    """
    epoch, triples, documents = kb.query(_STATE_SQL)[0]
    return int(epoch), hashlib.sha256(f"{triples}|{documents}".encode()).hexdigest()[:24]


def _read_stamp(root: Path) -> tuple[int, str] | None:
    try:
        data = json.loads((root / GRAPH_STAMP).read_text(encoding="utf-8"))
        return int(data["epoch"]), str(data["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_stamp(root: Path, epoch: int, fingerprint: str) -> None:
    stamp = json.dumps({"epoch": epoch, "fingerprint": fingerprint})
    atomic_write(root / GRAPH_STAMP, lambda tmp: tmp.write_text(stamp, encoding="utf-8"))


def _read_saved(path: Path, fingerprint: str) -> nx.MultiDiGraph | None:
    try:
        version, graph = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        log.warning("%s is damaged (%s); rebuilding the graph from the knowledge base", path, exc)
        return None
    if version != FORMAT_VERSION or graph.graph.get("fingerprint") != fingerprint:
        return None
    return graph


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
    stamp = _read_stamp(kb.root)
    if stamp is not None and stamp[0] == epoch:
        fingerprint = stamp[1]
    else:
        epoch, fingerprint = source_state(kb)
    if current is not None and current.fingerprint == fingerprint:
        current.epoch = epoch
        return current
    if stamp is not None and stamp[1] == fingerprint:
        graph = _read_saved(kb.root / GRAPH_FILE, fingerprint)
        if graph is not None:
            if stamp[0] != epoch:
                _write_stamp(kb.root, epoch, fingerprint)
            return KnowledgeGraph(graph, epoch)
    built = KnowledgeGraph.build(kb)
    built.save(kb.root)
    return built
