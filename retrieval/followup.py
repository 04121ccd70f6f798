"""Follow-up questions made standalone, so retrieval finds the passages a conversation is about.

With an LLM the model rewrites the question (its reply is checked for sanity); without one, or when
that fails, a question that leans on the conversation (pronouns, "what about …", very short) gets
the previous question's topic appended.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrieval.llm import ReplyStream, describe_failure
from zhiku.prompts import REWRITE_FOLLOWUP
from zhiku.records import Answer
from zhiku.text import count_cjk, detect_language

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)


_FOLLOWUP_EN = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|him|his|she|her|hers|there|the same)\b"
    r"|^\s*(and|also|what about|how about|what else|why|why not|same for)\b",
    re.I,
)
_FOLLOWUP_ZH = re.compile(r"它|他|她|其|该|此|这个|那个|这些|那些|这样|那么|还有|呢[？?]?\s*$")
_QUESTION_WORDS_ZH = re.compile(r"什么|怎么样|怎么|如何|哪些|哪个|哪里|谁|吗|呢|是否|请问|[？?。，,！!]")
_STOP_EN = frozenset(
    "a an the is are was were be been do does did what which who whom whose when where why how of in on at to for "
    "from by with about and or not no can could should would will shall may might must has have had i you we me "
    "my our your please tell explain describe list give show".split()
)


def looks_like_followup(question: str) -> bool:
    """Pronouns, "what about …" openings or very short questions lean on the conversation."""
    if detect_language(question) == "zh":
        return bool(_FOLLOWUP_ZH.search(question)) or count_cjk(question) <= 4
    words = re.findall(r"[^\W_]+", question)
    return bool(_FOLLOWUP_EN.search(question)) or len(words) <= 3


def topic_of(question: str) -> str:
    """The content words of a question: what a follow-up to it is probably about."""
    if detect_language(question) == "zh":
        return _QUESTION_WORDS_ZH.sub("", question).strip()
    words = re.findall(r"[^\W_]+(?:[-'][^\W_]+)*", question)
    return " ".join(w for w in words if w.lower() not in _STOP_EN)


def rewrite_followup(
    question: str, history: Sequence[Answer], llm: LLM | None = None, timeout_s: float = 30.0
) -> str:
    """A standalone version of ``question`` given the earlier turns (oldest first).

    With an LLM, the model rewrites it (checked for sanity: one line, not much longer than the
    conversation warrants); without one, or if that fails, a follow-up gets the previous question's
    topic appended, which is what retrieval needs to find the right passages.
    """
    question = question.strip()
    if not history:
        return question
    if llm is not None:
        rewritten = _llm_rewrite(question, history, llm, timeout_s)
        if rewritten:
            return rewritten
    if not looks_like_followup(question):
        return question
    topic = topic_of(history[-1].question)
    if not topic or topic.lower() in question.lower():
        return question
    return f"{question}（{topic}）" if detect_language(question) == "zh" else f"{question} ({topic})"


def _llm_rewrite(question: str, history: Sequence[Answer], llm: LLM, timeout_s: float) -> str:
    turns = []
    for earlier in history[-3:]:
        turns.append(f"User: {earlier.question}")
        turns.append(f"Assistant: {earlier.text[:300]}")
    user = "Conversation:\n" + "\n".join(turns) + f"\n\nLast question: {question}\nStandalone question:"
    from llama_index.core.base.llms.types import ChatMessage

    messages = [ChatMessage(role="system", content=REWRITE_FOLLOWUP), ChatMessage(role="user", content=user)]
    reply = ReplyStream(
        llm, messages, timeout_s, enough=lambda text: "\n" in text.strip() or len(text) > 4 * len(question) + 200
    )
    try:
        for _ in reply:
            pass
    except Exception as exc:  # rewriting is an optimisation: fall back to the heuristic
        log.info("follow-up rewriting failed: %s", describe_failure(exc, llm))
        return ""
    text = reply.text
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(standalone question|rewritten question|question)\s*[:：]\s*", "", line, flags=re.I)
    line = line.strip("\"'“”「」 ")
    return line if 3 <= len(line) <= 4 * len(question) + 200 else ""
