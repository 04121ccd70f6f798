"""Thumbs up/down on answers, kept in the knowledge base's ``feedback`` table for later evaluation.

A row holds the question, the answer text, the rating (``+1`` helpful, ``-1`` not), an optional
comment and the citations as JSON (``n``, ``doc_id``, ``chunk_id``, ``source``, ``page``), so an
evaluation can later turn rated answers into test cases with known sources.
"""
from __future__ import annotations

import json
import time

from zhiku.kb import KnowledgeBase
from zhiku.records import Answer, User

UP, DOWN = 1, -1


def citations_json(answer: Answer) -> str:
    return json.dumps(
        [
            {"n": c.n, "doc_id": c.hit.document.id, "chunk_id": c.hit.chunk.id,
             "source": c.hit.document.source, "page": c.hit.chunk.page}
            for c in answer.citations
        ],
        ensure_ascii=False,
    )


def record_feedback(kb: KnowledgeBase, user: User, answer: Answer, rating: int, comment: str = "") -> int:
    """Store one rating of ``answer`` by ``user``; returns the feedback row id."""
    if rating not in (UP, DOWN):
        raise ValueError(f"rating must be {UP} or {DOWN}, got {rating!r}")
    with kb.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO feedback (created_at, user, question, answer, rating, comment, citations)"
            " VALUES (?,?,?,?,?,?,?)",
            (time.time(), user.name, answer.question, answer.text, rating, comment.strip(), citations_json(answer)),
        )
        return int(cur.lastrowid)
