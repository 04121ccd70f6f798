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


def save_feedback(
    kb: KnowledgeBase, user: User, answer: Answer, rating: int, comment: str = "", feedback_id: int | None = None
) -> int:
    """Store ``user``'s rating of ``answer`` and return the row id.

    With ``feedback_id`` the earlier row is updated instead (a changed thumb, or a comment added
    later), so one answer rated twice in a session stays one row. An empty comment keeps the old one.
    """
    if rating not in (UP, DOWN):
        raise ValueError(f"rating must be {UP} or {DOWN}, got {rating!r}")
    with kb.transaction(content=False) as conn:
        if feedback_id is not None:
            conn.execute(
                "UPDATE feedback SET rating = ?, comment = CASE WHEN ? = '' THEN comment ELSE ? END WHERE id = ?",
                (rating, comment.strip(), comment.strip(), feedback_id),
            )
            return feedback_id
        cur = conn.execute(
            "INSERT INTO feedback (created_at, user, question, answer, rating, comment, citations)"
            " VALUES (?,?,?,?,?,?,?)",
            (time.time(), user.name, answer.question, answer.text, rating, comment.strip(), citations_json(answer)),
        )
        return int(cur.lastrowid)
