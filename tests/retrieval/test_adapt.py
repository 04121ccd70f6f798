"""Query adaptation: which questions each rule recognises, and how it moves the fusion weights."""
from __future__ import annotations

import pytest

from retrieval.adapt import BOOST, adapt_weights, has_exact_terms, passage_language, signals
from zhiku.records import Chunk, Document, Hit

WEIGHTS = {"vector": 0.4, "keyword": 0.5, "graph": 0.1}


def hit(language: str = "en") -> Hit:
    return Hit(Chunk(text="", position=0, n_tokens=1, id=1), Document(source="/d", content_hash="h", language=language), 1.0)


@pytest.mark.parametrize("query", [
    "What does error code INV-2024-0042 mean?", "Which audits cover ISO27001?", "What does p53 regulate?",
    "How is max_retries set?", 'Who wrote "the atlas migration plan"?', "谁负责「阿特拉斯迁移」？",
])
def test_identifiers_and_quoted_phrases_are_exact_terms(query):
    assert has_exact_terms(query)


@pytest.mark.parametrize("query", [
    "Who is the CEO of Kestrel Robotics?", "How many days of leave did staff get in 2025?", "深圳办公室有多少人？",
    "Which team moved to Berlin in March?",
])
def test_plain_questions_years_and_names_are_not_exact_terms(query):
    assert not has_exact_terms(query)


def test_exact_terms_lean_on_keyword_search():
    assert adapt_weights("Where is INV-2024-0042?", WEIGHTS, {}) == {**WEIGHTS, "keyword": 0.5 * BOOST}
    assert adapt_weights("Where is the invoice?", WEIGHTS, {}) == WEIGHTS


def test_a_question_in_another_language_than_the_passages_leans_on_vectors():
    english = {"vector": [hit("en")] * 3 + [hit("zh")] * 2}
    assert passage_language(english["vector"]) == "en"
    assert signals("深圳办公室有多少人？", english).cross_language
    assert adapt_weights("深圳办公室有多少人？", WEIGHTS, english) == {**WEIGHTS, "vector": 0.4 * BOOST}
    assert adapt_weights("How many people work in Shenzhen?", WEIGHTS, english) == WEIGHTS
    assert not signals("深圳办公室有多少人？", {}).cross_language  # nothing found: no language to differ from


def test_rules_multiply_so_a_retriever_switched_off_stays_off():
    off = {"vector": 0.5, "keyword": 0.0, "graph": 0.5}
    assert adapt_weights('Where is "INV-7"?', off, {})["keyword"] == 0.0
