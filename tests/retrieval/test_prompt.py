"""The grounded prompt: numbered passages with their sources, graph facts, the token budget, the language."""
from __future__ import annotations

from answer_hits import HITS, hit

from retrieval.llm import estimate_tokens
from retrieval.prompt import build_prompt

def test_prompt_numbers_passages_with_source_page_section_and_lists_facts() -> None:
    facts = [f for h in HITS for f in h.facts]
    prompt = build_prompt("How much vacation do I get?", HITS, 2000, estimate_tokens, facts)
    system, user = (m.content for m in prompt.messages)
    assert "[n]" not in system and "[1]" in system and "not in the documents" in system
    assert "[1] Employees receive 25 days of paid vacation per year.\n(Source: handbook.pdf, p. 3, Leave > Annual)" in user
    assert "[2] The Berlin office opens at 8am. Visitors register at the reception desk.\n(Source: handbook.pdf)" in user
    assert "- Acme Robotics — founded by — Jane Smith [3]" in user  # a fact cites its passage
    assert user.rstrip().endswith("Question: How much vacation do I get?\nAnswer:")
    assert prompt.hits == HITS and prompt.facts == facts and prompt.dropped == 0


def test_prompt_stays_within_the_token_budget_and_drops_what_does_not_fit() -> None:
    long = [hit("Travel expenses are reimbursed within thirty days of the claim. " * 20, 20 + i) for i in range(6)]
    prompt = build_prompt("How fast are travel expenses reimbursed?", long, 600, estimate_tokens)
    total = sum(estimate_tokens(m.content) for m in prompt.messages)
    assert prompt.n_tokens <= 600 and total <= 600
    assert 1 <= len(prompt.hits) < 6 and prompt.dropped == 6 - len(prompt.hits)


def test_prompt_cuts_a_single_oversized_passage_rather_than_giving_none() -> None:
    prompt = build_prompt("What?", [hit("word " * 2000, 30)], 300, estimate_tokens)
    assert len(prompt.hits) == 1 and prompt.n_tokens <= 300


def test_chinese_question_gets_chinese_instructions_and_refusal_phrase() -> None:
    prompt = build_prompt("年假有多少天？", HITS[:1], 2000, estimate_tokens)
    assert prompt.language == "zh"
    assert "文档中没有相关信息" in prompt.messages[0].content and "问题：年假有多少天？" in prompt.messages[1].content
