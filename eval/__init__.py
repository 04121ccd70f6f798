"""Retrieval- and answer-quality evaluation: datasets, metrics, the harness, reports and synthetic questions.

It sits on top of ``retrieval`` and the knowledge base and holds no retrieval logic of its own: every
mode is measured through the same ``Retriever`` protocol the product uses.
"""
