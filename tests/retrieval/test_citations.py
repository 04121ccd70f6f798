"""Citations are checked against the passages given: repaired, removed or flagged."""
from __future__ import annotations

from answer_hits import HITS

from retrieval.citations import validate_citations

def test_a_citation_of_a_passage_not_given_is_repaired_to_the_matching_one() -> None:
    text, citations, warnings = validate_citations("Acme Robotics was founded by Jane Smith [9].", HITS)
    assert text == "Acme Robotics was founded by Jane Smith [3]."
    assert [c.n for c in citations] == [3] and citations[0].hit is HITS[2]
    assert warnings == ["the answer cited [9] but only 3 passages were given; replaced by [3]"]


def test_an_unmatched_bad_citation_is_removed_and_lists_are_checked_number_by_number() -> None:
    text, citations, warnings = validate_citations("Quantum chromodynamics [7]. Vacation is 25 days [1, 4].", HITS)
    assert text == "Quantum chromodynamics. Vacation is 25 days [1]."
    assert [c.n for c in citations] == [1]
    assert warnings[0] == "the answer cited [7] but only 3 passages were given; removed"
    assert "[4]" in warnings[1]


def test_an_answer_no_passage_supports_is_flagged_but_a_refusal_is_not() -> None:
    assert validate_citations("Quantum chromodynamics explains it.", HITS)[2] == [
        "the answer cites no passage: check it against the sources before relying on it"]
    assert validate_citations("The answer is not in the documents.", HITS)[2] == []
    assert validate_citations("文档中没有相关信息。", HITS)[2] == []


def test_valid_citations_are_kept_in_order_of_first_use() -> None:
    text, citations, warnings = validate_citations("Opens at 8am [2]. Founded 2009 【3】[2].", HITS)
    assert [c.n for c in citations] == [2, 3] and warnings == [] and "【3】" in text


def test_a_leading_citation_moves_behind_its_line() -> None:
    text, citations, warnings = validate_citations("[1] 25 days of paid vacation.\n[2] Opens at 8am", HITS)
    assert text == "25 days of paid vacation [1].\nOpens at 8am [2]"
    assert [c.n for c in citations] == [1, 2] and warnings == []


def test_an_uncited_answer_is_attributed_to_the_passage_holding_its_words() -> None:
    text, citations, warnings = validate_citations("Founded by Jane Smith in 2009.", HITS)
    assert text == "Founded by Jane Smith in 2009. [3]"
    assert [c.n for c in citations] == [3]
    assert warnings == ["the model cited no passage; [3] was added: it holds most of the answer's words"]
