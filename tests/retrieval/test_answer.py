"""Grounded answers: the numbered, budgeted prompt; citation checking; extractive answers; follow-up
rewriting; the Assistant's refusals; and the ``zhiku ask --json`` contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.answer import (
    SentenceScorer,
    build_prompt,
    extractive_answer,
    language_of,
    rewrite_followup,
    split_sentences,
    statements,
    validate_citations,
)
from retrieval.assistant import Assistant, AssistantError
from retrieval.factory import QueryError
from retrieval.llm import estimate_tokens
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import Answer, Chunk, Document, Hit, Triple, User
from zhiku.settings import Settings


def hit(text: str, chunk_id: int, page: int | None = 3, section: tuple[str, ...] = ("Leave", "Annual"),
        facts: tuple[Triple, ...] = ()) -> Hit:
    doc = Document(source="/docs/handbook.pdf", content_hash="h", title="handbook.pdf", id=1)
    chunk = Chunk(text=text, position=chunk_id, n_tokens=len(text.split()), page=page, heading_path=section,
                  doc_id=1, id=chunk_id)
    return Hit(chunk, doc, score=1.0, facts=list(facts))


HITS = [
    hit("Employees receive 25 days of paid vacation per year.", 11,
        facts=(Triple("Employees", "receive", "25 days of paid vacation", chunk_id=11),)),
    hit("The Berlin office opens at 8am. Visitors register at the reception desk.", 12, page=None, section=()),
    hit("Acme Robotics was founded by Jane Smith in 2009.", 13,
        facts=(Triple("Acme Robotics", "founded by", "Jane Smith", chunk_id=13),)),
]


@pytest.fixture(scope="module")
def scorer(embedder) -> SentenceScorer:
    return SentenceScorer(embedder)


# ------------------------------------------------------------------------------------ the prompt
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


# ------------------------------------------------------------------------------------ citations
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


def test_an_answer_without_citations_is_flagged_but_a_refusal_is_not() -> None:
    assert validate_citations("You get 25 days.", HITS)[2] == [
        "the answer cites no passage: check it against the sources before relying on it"]
    assert validate_citations("The answer is not in the documents.", HITS)[2] == []
    assert validate_citations("文档中没有相关信息。", HITS)[2] == []


def test_valid_citations_are_kept_in_order_of_first_use() -> None:
    text, citations, warnings = validate_citations("Opens at 8am [2]. Founded 2009 【3】[2].", HITS)
    assert [c.n for c in citations] == [2, 3] and warnings == [] and "【3】" in text


# ------------------------------------------------------------------------------------ extractive
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


def test_titles_and_initials_do_not_end_sentences_and_headings_are_not_statements() -> None:
    assert split_sentences("Founded by Dr. Anna Weber and J. Smith in 2017. It grew fast.") == [
        "Founded by Dr. Anna Weber and J. Smith in 2017.", "It grew fast."]
    text = "Annual leave\nEmployees get 30 days of leave per year.\nWho approves leave?\n红隼机器人上海办公室管理规定\n员工每年享有十五天年假。"
    assert statements(text) == ["Employees get 30 days of leave per year.", "员工每年享有十五天年假。"]


def test_chinese_helpers() -> None:
    assert language_of("年假有多少天？") == "zh" and language_of("How many days?") == "en"
    assert split_sentences("员工每年享有十五天年假。年假可以顺延到次年三月！ It is fine. Really fine!") == [
        "员工每年享有十五天年假。", "年假可以顺延到次年三月！", "It is fine.", "Really fine!"]


# ------------------------------------------------------------------------------------ follow-ups
def turn(question: str) -> Answer:
    return Answer(text="…", question=question)


def test_a_followup_with_a_pronoun_gets_the_previous_topic() -> None:
    assert rewrite_followup("When does it open?", [turn("Where is the Berlin office?")]) == \
        "When does it open? (Berlin office)"
    assert rewrite_followup("它在哪里？", [turn("研发中心在哪个城市？")]) == "它在哪里？（研发中心在城市）"


def test_a_standalone_question_or_a_first_question_is_left_alone() -> None:
    assert rewrite_followup("Who founded Acme Robotics?", [turn("Where is the Berlin office?")]) == \
        "Who founded Acme Robotics?"
    assert rewrite_followup("When does it open?", []) == "When does it open?"


# ------------------------------------------------------------------------------------ the Assistant
def open_assistant(root: Path, embedder) -> Assistant:
    """An Assistant sharing the session's embedder (``Assistant.open`` is exercised by the CLI tests)."""
    return Assistant(Settings(kb=root, embedding_model=embedder.name), KnowledgeBase.open(root, embedder.name), embedder)


@pytest.fixture(scope="module")
def assistant(small_kb_path: Path, embedder) -> Assistant:
    with open_assistant(small_kb_path, embedder) as opened:
        yield opened


def test_assistant_answers_with_real_citations(assistant: Assistant) -> None:
    answer = assistant.ask("How many days of paid vacation do employees get?", mode="hybrid", k=4)
    assert "25 days" in answer.text and answer.citations
    for citation in answer.citations:
        assert citation.hit in answer.hits
        assert citation.hit.chunk.text.split(".")[0] in answer.text or citation.hit.chunk.text in answer.text


def test_assistant_says_not_in_documents_for_an_off_topic_question(assistant: Assistant) -> None:
    answer = assistant.ask("What is the recipe for chocolate cake?", mode="vector")
    assert answer.text == "not in the documents" and answer.hits


def test_assistant_streams_text_then_the_answer(assistant: Assistant) -> None:
    items = list(assistant.ask_stream("When does the Berlin office open?", mode="keyword"))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "8am" in items[-1].text


def test_assistant_rewrites_followups_before_retrieving(assistant: Assistant) -> None:
    first = assistant.ask("Where is the Berlin office?", mode="keyword")
    second = assistant.ask("When does it open?", mode="keyword", history=[first])
    assert second.question == "When does it open? (Berlin office)" and "8am" in second.text


def test_assistant_refuses_bad_requests_in_one_line(assistant: Assistant) -> None:
    with pytest.raises(QueryError, match="empty"):
        assistant.ask("   ")
    with pytest.raises(QueryError, match="characters long"):
        assistant.ask("why " * 2000)


def test_user_without_documents_and_unknown_documents_are_refused(tmp_path: Path, embedder) -> None:
    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        kb.put_document(Document(source="/hr/pay.md", content_hash="p", title="pay", groups=("hr",)),
                        [Chunk(text="Salaries are paid monthly.", position=0, n_tokens=4)],
                        embedder.embed(["Salaries are paid monthly."]))
    with open_assistant(tmp_path / "kb", embedder) as assistant:
        with pytest.raises(AssistantError, match="user 'guest' \\(groups: none\\) may see none of the 1 documents"):
            assistant.ask("When are salaries paid?", user=User("guest"))
        assert "monthly" in assistant.ask("When are salaries paid?", user=User("hana", ("hr",))).text
        hidden = "unknown document '/hr/pay.md'"
        with pytest.raises(AssistantError, match=hidden):
            assistant.summarize("/hr/pay.md", user=User("guest", ("eng",)))
        with pytest.raises(AssistantError, match="unknown document 'nothing.md'"):
            assistant.summarize("nothing.md")


def test_empty_knowledge_base_is_refused(tmp_path: Path, embedder) -> None:
    KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension).close()
    with open_assistant(tmp_path / "kb", embedder) as assistant:
        with pytest.raises(AssistantError, match="has no documents: ingest some first"):
            assistant.ask("Anything?")


# ------------------------------------------------------------------------------------ the CLI
def test_zhiku_ask_json_keeps_its_keys(small_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", "Who founded Acme Robotics?", "--kb", str(small_kb_path), "--mode", "hybrid",
                 "--k", "3", "--llm", "extractive", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(payload) == {"answer", "citations", "hits"}
    assert "Jane Smith" in payload["answer"] and payload["citations"]
    assert set(payload["citations"][0]) == {"n", "doc", "source", "chunk_id", "text"}
    assert payload["citations"][0]["source"].endswith("handbook.md") and len(payload["hits"]) <= 3


def test_zhiku_ask_prints_the_answer_and_its_sources(small_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "When does the Berlin office open?", "--kb", str(small_kb_path), "--mode", "keyword"]) == 0
    out = capsys.readouterr().out
    assert "8am" in out and "\nSources:\n[1] handbook, p. 1, Intro — /corpus/handbook.md" in out


def test_zhiku_ask_rejects_an_empty_question_and_a_bad_mode(small_kb_path: Path, capsys) -> None:
    assert main(["ask", " ", "--kb", str(small_kb_path)]) == 2
    assert main(["ask", "x", "--mode", "psychic", "--kb", str(small_kb_path)]) == 2
    err = capsys.readouterr().err
    assert "zhiku ask: the question is empty" in err and "--mode must be one of" in err
