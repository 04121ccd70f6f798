"""The knowledge graph: triples extracted from chunks, resolved into entities, kept as a NetworkX graph.

``kg.extract`` turns chunks into triples (offline rules or an LLM), ``kg.resolve`` decides which
names are one entity, ``kg.graph`` builds, persists and queries the graph derived from the triples
stored in the knowledge base.
"""
