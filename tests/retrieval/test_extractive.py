"""The answer without an LLM: the best supporting sentences, cited; sentences and statements."""
from __future__ import annotations

import pytest
from answer_hits import HITS

from retrieval.extractive import SentenceScorer, extractive_answer, statements

@pytest.fixture(scope="module")
def scorer(embedder) -> SentenceScorer:
    return SentenceScorer(embedder)


def test_extractive_answer_cites_the_supporting_sentence(scorer: SentenceScorer) -> None:
    answer = extractive_answer("When does the Berlin office open?", HITS, scorer)
    assert answer.text.startswith("The Berlin office opens at 8am. [2]")
    assert [c.n for c in answer.citations][0] == 2 and answer.citations[0].hit is HITS[1]
    for citation in answer.citations:
        assert citation.hit is HITS[citation.n - 1]


def test_extractive_answer_says_not_in_documents_for_an_off_topic_question(scorer: SentenceScorer) -> None:
    answer = extractive_answer("What is the boiling point of mercury?", HITS, scorer)
    assert answer.text == "not in the documents" and answer.citations == [] and answer.hits == HITS


def test_extractive_answer_without_an_embedder_uses_word_overlap() -> None:
    answer = extractive_answer("Who founded Acme Robotics?", HITS)
    assert answer.text == "Acme Robotics was founded by Jane Smith in 2009. [3]"
    assert extractive_answer("chocolate cake recipe", HITS).text == "not in the documents"


def test_headings_labels_and_questions_are_not_statements() -> None:
    text = "Annual leave\nEmployees get 30 days of leave per year.\nWho approves leave?\n红隼机器人上海办公室管理规定\n员工每年享有十五天年假。"
    assert statements(text) == ["Employees get 30 days of leave per year.", "员工每年享有十五天年假。"]
