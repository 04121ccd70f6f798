"""Leak probe for ``zhiku tune``: a tuned model is served to every user and remembers its training
data, so no restricted document may reach the examples it is trained or measured on."""
from __future__ import annotations

from leak_probe import PUBLIC_USER, assert_no_marker

from retrieval.llm import estimate_tokens
from tune.examples import build_examples
from zhiku.kb import KnowledgeBase
from zhiku.records import User


def test_training_examples_hold_no_restricted_text(leak_kb, embedder):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        examples = build_examples(kb, questions=20, count_tokens=estimate_tokens)
    assert examples  # the public handbook gives questions
    text = " ".join(f"{m.content} {e.reply} {e.gold}" for e in examples for m in e.prompt.messages)
    assert_no_marker(text, PUBLIC_USER)
    assert_no_marker(text, User("nobody"))
