"""Training examples for the local LLM: the product's own prompt, a cited answer from the gold
passage or the not-found phrase over passages without it, public documents only."""
from __future__ import annotations

from pathlib import Path

import pytest
from tune_corpus import SECRET

from eval.text import contains
from retrieval.citations import CITATION
from retrieval.llm import estimate_tokens
from retrieval.prompt import build_prompt
from tune.examples import Example, build_examples, split_held_out
from zhiku.kb import KnowledgeBase
from zhiku.prompts import NOT_FOUND


@pytest.fixture(scope="module")
def examples(tune_kb_path: Path, embedder) -> list[Example]:
    with KnowledgeBase.open(tune_kb_path, embedder.name) as kb:
        return build_examples(kb, questions=6, count_tokens=estimate_tokens, passages=3, budget=1024)


def test_each_question_gives_an_answerable_and_an_unanswerable_example(examples):
    answerable = [e for e in examples if e.answerable]
    unanswerable = [e for e in examples if not e.answerable]
    assert len(answerable) >= 4 and len(unanswerable) >= 4
    assert {e.question_id for e in unanswerable} <= {e.question_id for e in answerable}


def test_an_answerable_reply_cites_the_gold_passage_and_holds_the_answer(examples):
    for e in (e for e in examples if e.answerable):
        gold = e.prompt.hits[e.cite - 1].chunk.text
        assert contains(gold, e.gold), (e.question, gold)
        cited = {int(n) for group in CITATION.findall(e.reply) for n in group.replace(" ", "").split(",")}
        assert cited == {e.cite} and contains(CITATION.sub("", e.reply), e.gold), e.reply


def test_the_gold_passage_is_not_always_the_first(examples):
    assert len({e.cite for e in examples if e.answerable}) > 1


def test_an_unanswerable_example_has_no_passage_holding_the_answer_and_teaches_the_not_found_phrase(examples):
    for e in (e for e in examples if not e.answerable):
        assert e.prompt.hits and e.reply == NOT_FOUND[e.prompt.language]
        assert not any(contains(h.chunk.text, e.gold) for h in e.prompt.hits), e.question


def test_the_prompt_is_the_one_answering_builds(examples):
    e = examples[0]
    again = build_prompt(e.question, e.prompt.hits, 1024, estimate_tokens)
    assert [m.content for m in again.messages] == [m.content for m in e.prompt.messages]


def test_restricted_documents_never_reach_the_training_data(examples):
    text = " ".join(f"{m.content} {e.reply}" for e in examples for m in e.prompt.messages)
    assert SECRET not in text and "Olga Brandt" not in text


def test_the_held_out_split_keeps_both_examples_of_a_question_on_one_side(examples):
    train, held = split_held_out(examples, 0.25, seed=1)
    assert train and held and len(train) + len(held) == len(examples)
    assert not {e.question_id for e in train} & {e.question_id for e in held}
    assert split_held_out(examples, 0.25, seed=1) == (train, held)
