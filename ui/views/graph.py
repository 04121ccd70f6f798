"""Graph explorer: find an entity, see its neighbourhood drawn, open the passage behind any relation.

Everything shown comes from the user's own graph (``KnowledgeGraph.for_user``: resolved from the
triples of the documents they may read), so an entity, a name, an alias, a type or a relation that
only a restricted document mentions never appears for someone outside its groups.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from kg.graph import KnowledgeGraph
from retrieval import Tokenizer
from ui.cards import highlight
from ui.context import Context, current
from zhiku.records import Triple, User

#: Most relations drawn at once: beyond this a drawing is a hairball.
MAX_EDGES = 60


def find_entities(graph: KnowledgeGraph, text: str, user: User, limit: int = 50) -> list[str]:
    """Keys of ``user``'s entities whose name or an alias contains ``text``; the most connected first
    (all when empty). The keys are those of ``graph.for_user(user)``."""
    needle = text.strip().lower()
    view = graph.for_user(user).graph
    keys = [
        key for key, data in view.nodes(data=True)
        if not needle or needle in data["name"].lower() or any(needle in a.lower() for a in data["aliases"])
    ]
    return sorted(keys, key=lambda k: (-view.degree(k), view.nodes[k]["name"]))[:limit]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def neighbourhood_dot(center: str, facts: Sequence[Triple]) -> str:
    """Graphviz DOT of ``facts`` around the entity named ``center`` (drawn highlighted)."""
    lines = ["digraph {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9, color="#7a869a"];',
             f'  {_quote(center)} [fillcolor="#f6c667", penwidth=2];']
    for fact in facts:
        lines.append(f"  {_quote(fact.subject)} -> {_quote(fact.object)} [label={_quote(fact.relation)}];")
    lines.append("}")
    return "\n".join(lines)


def fact_label(fact: Triple) -> str:
    return f"{fact.subject} — {fact.relation} → {fact.object}"


def edge_evidence(ctx: Context, fact: Triple) -> None:
    """The passage a relation was extracted from, with both entity names highlighted."""
    chunk = ctx.kb.chunks_by_ids([fact.chunk_id]).get(fact.chunk_id) if fact.chunk_id is not None else None
    doc = ctx.kb.get_document(chunk.doc_id) if chunk is not None else None
    if chunk is None or doc is None or not ctx.user.can_see(doc.groups):
        st.info("The passage behind this relation is no longer in the knowledge base.")
        return
    parts = (Path(doc.source).name, f"p. {chunk.page}" if chunk.page else "", chunk.section)
    where = " · ".join(x for x in parts if x)
    with st.container(border=True):
        st.caption(f"{where} · confidence {fact.confidence:.2f}")
        st.markdown(highlight(chunk.text, f"{fact.subject} {fact.object}", Tokenizer()))


def render(ctx: Context) -> None:
    st.title("Graph explorer")
    graph = ctx.assistant.graph().for_user(ctx.user)
    stats = graph.stats()
    if not stats["entities"]:
        st.info("The knowledge graph is empty for you: ingest documents with the triple extractor on "
                "(`extractor = \"default\"`), or `zhiku graph build`.")
        return
    st.caption(f"{stats['entities']} entities · {stats['relations']} relations from {stats['documents']} documents")
    search, hops_column = st.columns([3, 1])
    text = search.text_input("Find an entity", key="graph_search", placeholder="a name or an alias")
    hops = hops_column.slider("Hops", 1, 3, 1, key="graph_hops")
    keys = find_entities(graph, text, ctx.user)
    if not keys:
        st.warning(f"No entity matches {text!r}. Try part of the name.")
        return
    nodes = graph.graph.nodes
    key = st.selectbox("Entity", keys, key="graph_entity",
                       format_func=lambda k: f"{nodes[k]['name']} ({nodes[k]['type'] or 'entity'})")
    facts = graph.neighbors(key, hops=hops, limit=MAX_EDGES)
    values = graph.attributes(key)
    name = nodes[key]["name"]
    if not facts and not values:
        st.info(f"{name} has no relations you may see.")
        return
    if facts:
        st.graphviz_chart(neighbourhood_dot(name, facts))
    if len(facts) == MAX_EDGES:
        st.caption(f"Showing the {MAX_EDGES} nearest relations.")
    if values:  # literal values stated about the entity: a table beside the graph, not number nodes
        st.table([{"attribute": v.relation, "value": v.object} for v in values])
    shown = [*facts, *values]
    chosen = st.selectbox("Show the passage behind a relation or attribute", range(len(shown)), key="graph_edge",
                          format_func=lambda i: fact_label(shown[i]))
    edge_evidence(ctx, shown[chosen])


if __name__ == "__main__":
    render(current())
