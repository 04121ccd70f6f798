"""Answer-quality checks on answers built by hand: gold agreement, citation support and refusals."""
import pytest

from eval.answers import (OverlapJudge, check_citations, evaluate_answers, exact_match, is_refusal, score_answer,
                          summary)
from eval.datasets import Query
from eval.text import sentences, token_f1
from zhiku.records import Answer, Chunk, Citation, Document, Hit


def _hit(text: str) -> Hit:
    return Hit(Chunk(text=text, position=0, n_tokens=10, id=1), Document(source="/c/leave.md", content_hash="h"), 1.0)


LEAVE = _hit("Full-time employees receive 25 days of paid annual leave per calendar year.")
EXPENSE = _hit("报销单须在出差结束后三十天内提交，并经部门经理批准。")


def test_exact_match_uses_squad_normalisation():
    assert exact_match("The 25 days.", "25 days") == 1.0  # article and punctuation dropped
    assert exact_match("25 days of leave", "25 days") == 0.0


def test_token_f1_is_word_level_for_english_and_character_level_for_chinese():
    # pred {25, days, leave}, gold {25, days}: P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 0.8
    assert token_f1("25 days leave", "25 days") == pytest.approx(0.8)
    # pred 三十天 (3 chars), gold 三十天内 (4 chars): 3 common, P = 1, R = 3/4, F1 = 6/7
    assert token_f1("三十天", "三十天内") == pytest.approx(6 / 7)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_sentences_keep_their_citation_markers():
    assert sentences("Leave is 25 days [1]. Claims within 30 days. [2]") == ["Leave is 25 days [1].",
                                                                            "Claims within 30 days. [2]"]


def test_citation_support_by_overlap_without_an_llm():
    answer = Answer(
        text="Employees receive 25 days of paid annual leave [1]. 报销须在三十天内提交[2]。The CEO is Bob [1].",
        citations=[Citation(1, LEAVE), Citation(2, EXPENSE)],
    )
    checks = check_citations(answer, OverlapJudge())
    assert [(c.n, c.supported) for c in checks] == [(1, True), (2, True), (1, False)]
    assert checks[0].sentence == "Employees receive 25 days of paid annual leave ."


def test_citing_a_passage_that_was_not_given_is_unsupported():
    checks = check_citations(Answer(text="Leave is 25 days [3].", citations=[Citation(1, LEAVE)]), OverlapJudge())
    assert [(c.n, c.supported) for c in checks] == [(3, False)]


def test_embedding_similarity_supports_a_paraphrase(embedder):
    judge = OverlapJudge(embedder)
    # Few shared words (days, year: 2 of 8 tokens), but the same meaning.
    supported, score = judge.support("Staff get twenty-five vacation days each year", LEAVE.chunk.text)
    assert supported and score >= 0.6
    assert not judge.support("The CEO is Bob", LEAVE.chunk.text)[0]


def test_refusals_in_english_and_chinese():
    assert is_refusal("The answer is not in the documents.")
    assert is_refusal("文档中没有相关内容。")
    assert not is_refusal("Employees receive 25 days [1].")


def test_summary_of_answerable_and_unanswerable_questions():
    judge = OverlapJudge()
    answers = {
        "leave": Answer(text="25 days [1].", citations=[Citation(1, LEAVE)]),
        "mars": Answer(text="Not in the documents."),
    }
    results, figures = evaluate_answers(
        [Query("q1", "leave", {"d": 1.0}, "25 days"), Query("q2", "mars", {})], lambda q: answers[q], judge,
        progress=False)
    assert figures["exact_match"] == 1.0 and figures["f1"] == 1.0 and figures["with_gold"] == 1
    assert figures["refusal_rate_unanswerable"] == 1.0 and figures["refusal_rate_answerable"] == 0.0
    assert figures["citation_support"] == 1.0 and figures["citation_method"] == judge.method
    assert results[1].f1 is None


def test_summary_without_anything_measured_says_none():
    figures = summary([score_answer("q", Answer(text="x"), None, True, OverlapJudge())], "m")
    assert figures["f1"] is None and figures["citation_support"] is None and figures["answers_with_citations"] == 0.0


def test_an_answer_in_parts_must_contain_every_part_in_one_of_its_forms():
    parts = [["131万", "1313851"], ["4次", "四次"]]
    assert score_answer("q", Answer(text="共1313851人，四次。"), "131万；4次", True, OverlapJudge(), parts).contains == 1.0
    assert score_answer("q", Answer(text="共131万人。"), "131万；4次", True, OverlapJudge(), parts).contains == 0.0
