"""``zhiku graph build|stats|entities|neighbors|path|export``: build and inspect the knowledge graph.

The graph is derived from the triples in the knowledge base and rebuilt on demand when stale; every
command here reads it through ``kg.graph.load_graph``. ``build`` re-extracts the triples of every
chunk (after changing the extractor, or for a knowledge base ingested with ``--no-graph``).

The inspecting commands answer as ``--user NAME`` (an account) or ``--groups G1,G2`` would see the
graph: built from the documents that user may read only (``KnowledgeGraph.for_user``). Without
either, the local administrator sees everything.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from retrieval.payloads import entities_json, entity_json, fact_json, neighbors_json
from zhiku.cli.common import (
    FAILED, OK, UsageError, add_common, add_user_flags, emit, open_existing, settings_from, user_from_args,
)
from zhiku.kb import KnowledgeBase
from zhiku.errors import UnknownEntityError
from zhiku.records import Document, Triple, User
from zhiku.settings import EXTRACTORS

if TYPE_CHECKING:  # kg.graph (NetworkX) and kg.extract (spaCy, jieba) load when a command runs, not on every `zhiku`
    from kg.graph import KnowledgeGraph

#: Chunks extracted between two writes to the knowledge base during ``graph build``.
BUILD_BATCH = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    graph = subparsers.add_parser(
        "graph", help="build, inspect and export the knowledge graph",
        description="The knowledge graph: entities and relations extracted from every chunk, with the "
        "chunk and document each relation came from.",
    )
    actions = graph.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, func: Any, help_text: str, as_user: bool = True) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text)
        add_common(parser)
        if as_user:
            add_user_flags(parser, "look")
        parser.set_defaults(func=func)
        return parser

    build = action("build", run_build, "re-extract triples from every chunk and rebuild the graph", as_user=False)
    build.add_argument("--extractor", choices=[e for e in EXTRACTORS if e != "none"],
                       help="triple extractor (default: the 'extractor' setting)")
    build.add_argument("--no-wait", action="store_true",
                       help="fail at once if an ingest is running on the knowledge base (default: wait for it)")
    stats = action("stats", run_stats, "counts of entities, relations and types, and the most central entities")
    stats.add_argument("--limit", type=int, default=10, metavar="N", help="central entities to list (default 10)")
    entities = action("entities", run_entities, "list entities, most connected first")
    entities.add_argument("--limit", type=int, default=50, metavar="N", help="at most N entities (default 50)")
    entities.add_argument("--by", choices=("degree", "pagerank"), default="degree", help="ranking (default degree)")
    entities.add_argument("--type", metavar="TYPE", help="only entities of this type (PERSON, ORG, GPE, ...)")
    entities.add_argument("--doc", metavar="DOC", help="only entities of this document (id, path or title part)")
    neighbors = action("neighbors", run_neighbors, "relations around an entity, nearest first")
    neighbors.add_argument("entity", metavar="ENTITY", help="entity name, alias or key")
    neighbors.add_argument("--hops", type=int, default=1, metavar="K", help="how far to go (default 1)")
    neighbors.add_argument("--limit", type=int, default=50, metavar="N", help="at most N relations (default 50)")
    path = action("path", run_path, "a shortest chain of relations between two entities")
    path.add_argument("source", metavar="A")
    path.add_argument("target", metavar="B")
    export = action("export", run_export, "write the graph as GraphML (.graphml) or node-link JSON (.json)")
    export.add_argument("file", type=Path, metavar="FILE", help="output file; its extension picks the format")


def _fact_line(t: Triple) -> str:
    return f"{t.subject} --[{t.relation}]--> {t.object}   (doc {t.doc_id}, chunk {t.chunk_id})"


def _attribute_line(t: Triple) -> str:
    return f"  {t.relation}: {t.object}   (doc {t.doc_id}, chunk {t.chunk_id})"


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")


def _open(args: argparse.Namespace) -> tuple[KnowledgeBase, User, KnowledgeGraph]:
    """The knowledge base, the asking user and the graph as that user may see it."""
    from kg.graph import load_graph

    kb = open_existing(settings_from(args))
    try:
        user = user_from_args(args, kb)
        return kb, user, load_graph(kb).for_user(user)
    except BaseException:
        kb.close()
        raise


def _documents(kb: KnowledgeBase, text: str, user: User) -> list[Document]:
    """The documents ``--doc`` names (an id, or part of a path or title) that ``user`` may see."""
    if text.isdigit():
        doc = kb.get_document(int(text))
        if doc is not None and user.can_see(doc.groups):
            return [doc]
    return kb.find_documents(text, user)


def _unknown(args: argparse.Namespace, exc: UnknownEntityError) -> int:
    print(f"zhiku graph {args.action}: {exc}; try `zhiku graph entities` to see the names", file=sys.stderr)
    return FAILED


# ------------------------------------------------------------------- commands
def run_build(args: argparse.Namespace) -> int:
    settings = settings_from(args, extractor=args.extractor)
    from kg.extract import load_extractor
    from kg.graph import load_graph
    from retrieval.llm import load_llm

    extractor = load_extractor(settings, llm=lambda: load_llm(settings))
    if extractor is None:
        raise UsageError("the 'extractor' setting is 'none': choose one with --extractor default (or llm)")
    started = time.perf_counter()
    with open_existing(settings) as kb, kb.writer(wait=not args.no_wait):
        docs = kb.documents()
        triples = extract_all(kb, extractor, docs, progress=not args.json)
        graph = load_graph(kb)
        payload = {"documents": len(docs), "chunks": sum(d.n_chunks for d in docs), "triples": triples,
                   "extractor": extractor.name, "seconds": round(time.perf_counter() - started, 2), **graph.stats()}
    emit(payload, args.json, f"extracted {triples} triples from {payload['chunks']} chunks of {len(docs)} documents "
         f"with the {extractor.name} extractor: {payload['entities']} entities, {payload['relations']} relations")
    return OK


def extract_all(kb: KnowledgeBase, extractor: Any, docs: list, progress: bool = True) -> int:
    """Replace the triples of every document, a batch of documents per transaction; returns the count."""
    total = 0
    pending: dict[int, list[Triple]] = {}
    pending_chunks = 0
    with tqdm(total=sum(d.n_chunks for d in docs), desc="graph build", unit="chunk", disable=not progress,
              dynamic_ncols=True) as bar:
        for doc in docs:
            chunks = kb.chunks_of(doc.id)
            found = [t for ts in extractor.extract(chunks, doc.language) for t in ts]
            pending[doc.id] = found
            pending_chunks += len(chunks)
            total += len(found)
            bar.update(len(chunks))
            if pending_chunks >= BUILD_BATCH:
                kb.replace_triples(pending)
                pending, pending_chunks = {}, 0
        if pending:
            kb.replace_triples(pending)
    return total


def run_stats(args: argparse.Namespace) -> int:
    _positive(args, "limit")
    kb, _, graph = _open(args)
    with kb:
        stats = graph.stats()
        stats["top_degree"] = [entity_json(graph, k, s) for k, s in graph.top_entities(args.limit, "degree")]
        stats["top_pagerank"] = [entity_json(graph, k, s) for k, s in graph.top_entities(args.limit, "pagerank")]
    types = ", ".join(f"{t} {n}" for t, n in stats["types"].items()) or "none"
    text = "\n".join([
        f"{stats['entities']} entities, {stats['relations']} relations, {stats['attributes']} attributes from "
        f"{stats['documents']} documents, "
        f"{stats['components']} connected components",
        f"types: {types}",
        "most connected: " + (", ".join(f"{e['name']} ({e['degree']})" for e in stats["top_degree"]) or "none"),
        "most central (PageRank): " + (", ".join(e["name"] for e in stats["top_pagerank"]) or "none"),
    ])
    emit(stats, args.json, text)
    return OK


def run_entities(args: argparse.Namespace) -> int:
    _positive(args, "limit")
    kb, user, graph = _open(args)
    with kb:
        keys: set[str] | None = None
        if args.doc:
            found = _documents(kb, args.doc, user)
            if not found:
                raise UsageError(f"no document matches --doc {args.doc!r}")
            keys = {k for d in found for k in graph.entities_of(d.id)}
        rows = entities_json(graph, args.by, args.type, keys, args.limit)
    text = "\n".join(f"{r['name']:40} {r['type'] or '-':8} {r['degree']:5} relations  {r['mentions']:5} mentions"
                     for r in rows) or "no entities"
    emit({"entities": rows}, args.json, text)
    return OK


def run_neighbors(args: argparse.Namespace) -> int:
    _positive(args, "hops", "limit")
    kb, _, graph = _open(args)
    with kb:
        try:
            key = graph.require(args.entity)
            facts = graph.neighbors(key, hops=args.hops, limit=args.limit)
            distances = graph.distances(key, hops=args.hops)
        except UnknownEntityError as exc:
            return _unknown(args, exc)
    payload = neighbors_json(graph, key, args.hops, facts, distances)
    values = graph.attributes(key)
    text = "\n".join([f"{graph.graph.nodes[key]['name']}: {len(facts)} relations within {args.hops} hops",
                      *map(_fact_line, facts),
                      *([f"{len(values)} attributes:"] if values else []), *map(_attribute_line, values)])
    emit(payload, args.json, text)
    return OK


def run_path(args: argparse.Namespace) -> int:
    kb, _, graph = _open(args)
    with kb:
        try:
            a, b = graph.require(args.source), graph.require(args.target)
            steps = graph.path(a, b)
        except UnknownEntityError as exc:
            return _unknown(args, exc)
    payload = {"source": a, "target": b, "found": bool(steps) or a == b, "length": len(steps),
               "facts": [fact_json(t) for t in steps]}
    names = graph.graph.nodes
    text = "\n".join(map(_fact_line, steps)) if steps else \
        f"no path between {names[a]['name']} and {names[b]['name']}"
    emit(payload, args.json, text)
    return OK if payload["found"] else FAILED


def run_export(args: argparse.Namespace) -> int:
    if args.file.suffix.lower() not in (".graphml", ".json"):
        raise UsageError(f"{args.file}: the extension picks the format: use .graphml (Gephi, yEd, Neo4j) or .json")
    if not args.file.parent.exists():
        raise UsageError(f"{args.file.parent} does not exist")
    kb, _, graph = _open(args)
    with kb:
        graph.export(args.file)
        stats = graph.stats()
    emit({"file": str(args.file), "format": args.file.suffix.lower().lstrip("."), "entities": stats["entities"],
          "relations": stats["relations"]}, args.json,
         f"wrote {stats['entities']} entities and {stats['relations']} relations to {args.file}")
    return OK
