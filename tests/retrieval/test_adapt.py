"""Query adaptation: which questions hold exact terms, and how that moves the fusion weights."""
from __future__ import annotations

import pytest

from retrieval.adapt import BOOST, adapt_weights, has_exact_terms

WEIGHTS = {"vector": 0.4, "keyword": 0.5, "graph": 0.1}


@pytest.mark.parametrize("query", [
    "What does error code INV-2024-0042 mean?", "Which audits cover ISO27001?", "What does p53 regulate?",
    "How is max_retries set?", 'Who wrote "the atlas migration plan"?', "谁负责「阿特拉斯迁移」？",
])
def test_identifiers_and_quoted_phrases_are_exact_terms(query):
    assert has_exact_terms(query)


@pytest.mark.parametrize("query", [
    "Who is the CEO of Kestrel Robotics?", "How many days of leave did staff get in 2025?", "深圳办公室有多少人？",
    "Which team moved to Berlin in March?", "Is the hotel cap 180 EUR?",
])
def test_plain_questions_years_amounts_and_names_are_not_exact_terms(query):
    assert not has_exact_terms(query)


def test_exact_terms_lean_on_keyword_search():
    assert adapt_weights("Where is INV-2024-0042?", WEIGHTS) == {**WEIGHTS, "keyword": 0.5 * BOOST}
    assert adapt_weights("Where is the invoice?", WEIGHTS) == WEIGHTS


def test_the_rule_multiplies_so_a_retriever_switched_off_stays_off():
    off = {"vector": 0.5, "keyword": 0.0, "graph": 0.5}
    assert adapt_weights('Where is "INV-7"?', off)["keyword"] == 0.0


def test_the_fused_retriever_adapts_only_when_asked():
    from retrieval import FusedRetriever

    class Empty:
        def __init__(self, name):
            self.name = name

        def retrieve(self, query, k, user):
            return []

    retrievers = [Empty("vector"), Empty("keyword")]
    assert FusedRetriever(retrievers, {"keyword": 1.0}, adapt=True).weights_for("INV-7 status")["keyword"] == BOOST
    assert FusedRetriever(retrievers, {"keyword": 1.0}).weights_for("INV-7 status")["keyword"] == 1.0
