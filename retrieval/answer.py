"""Grounded answers: retrieved passages in, a generated (or extracted) answer with checked citations out.

The pieces live beside this module: the numbered prompt (``retrieval.prompt``), the citation checks
(``retrieval.citations``), the extractive answer (``retrieval.extractive``) and the reply stream with
its timeout (``retrieval.llm.ReplyStream``). This module composes them and owns one promise: a
failing or slow LLM never loses the retrieval results. The answer then falls back to the extractive
one and says why.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from retrieval.citations import CITATION, validate_citations
from retrieval.extractive import SentenceScorer, extractive_answer
from retrieval.llm import ReplyStream, describe_failure, token_counter
from retrieval.prompt import build_prompt, gather_facts, prompt_budget
from zhiku.records import Answer, Hit, Timing

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)


def answer_stream(
    question: str,
    hits: Sequence[Hit],
    llm: LLM | None,
    scorer: SentenceScorer | None = None,
    timeout_s: float = 120.0,
) -> Iterator[str | Answer]:
    """Yield the answer's text as it is generated, then the validated ``Answer`` last.

    The streamed tokens are the model's raw words; the final ``Answer.text`` is the checked one
    (citations repaired). With no LLM, or no hits, the single text chunk is the final text. A
    generation running past ``timeout_s`` is cut short with a warning; one that fails or yields
    nothing falls back to the extractive answer with a warning, so the hits are always returned.
    """
    scorer = scorer or SentenceScorer()
    hits = list(hits)
    if llm is None or not hits:
        answer = extractive_answer(question, hits, scorer)
        if not hits:
            answer.warnings.append("no passage matched the question")
        yield answer.text
        yield answer
        return
    prompt = build_prompt(question, hits, prompt_budget(llm), token_counter(llm), gather_facts(hits))
    warnings = [f"{prompt.dropped} passages did not fit in the model's window"] if prompt.dropped else []
    reply = ReplyStream(llm, prompt.messages, timeout_s)
    failure = ""
    started = time.perf_counter()
    first = last = None
    try:
        for delta in reply:
            last = time.perf_counter()
            first = first or last
            yield delta
    except Exception as exc:  # a backend failure of any kind: report it, keep the retrieval results
        log.debug("generation failed", exc_info=True)
        failure = describe_failure(exc, llm)
    text = "" if failure else reply.text
    timing = _timing(text, token_counter(llm), started, first, last)
    if reply.timed_out:
        warnings.append(f"the LLM did not finish within {timeout_s:g} s (llm_timeout_s); the answer is cut short")
    if not re.search(r"\w", CITATION.sub("", text)):
        answer = extractive_answer(question, prompt.hits, scorer)
        answer.hits = hits
        why = failure or ("the LLM replied with citations only" if text.strip() else "the LLM returned nothing")
        warnings.append(f"{why}; showing the best supporting sentences instead")
        answer.warnings = warnings + answer.warnings
        answer.timing = timing
        yield answer
        return
    checked, citations, problems = validate_citations(text.strip(), prompt.hits, scorer.tokenize)
    yield Answer(checked, citations, hits, prompt.facts, question, warnings + problems, timing)


def _timing(text: str, count: Callable[[str], int], started: float, first: float | None, last: float | None) -> Timing:
    """The generation's figures: time to the first token, tokens, decoding rate after the first."""
    if first is None or last is None:
        return Timing()
    tokens = count(text) if text else 0
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else None
    return Timing(first_token_ms=round(1000 * (first - started), 1), tokens=tokens,
                  tokens_per_s=round(rate, 2) if rate else None)


def answer_question(
    question: str,
    hits: Sequence[Hit],
    llm: LLM | None,
    scorer: SentenceScorer | None = None,
    timeout_s: float = 120.0,
) -> Answer:
    """``answer_stream`` consumed: the validated ``Answer``."""
    return final_answer(answer_stream(question, hits, llm, scorer, timeout_s))


def final_answer(stream: Iterator[str | Answer]) -> Answer:
    """Drain a token stream and return the ``Answer`` it ends with."""
    final = None
    for final in stream:
        pass
    assert isinstance(final, Answer)
    return final
