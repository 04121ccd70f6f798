"""Follow-up questions made standalone without an LLM."""
from __future__ import annotations

from retrieval.followup import rewrite_followup
from zhiku.records import Answer

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
