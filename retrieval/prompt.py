"""The grounded prompt: the retrieved passages numbered ``[1]..[n]`` and the graph facts, cut to fit.

The passages are numbered best first, each followed by its source (title, page, section); the graph
facts follow with the number of the passage they came from. Everything is counted with the model's
own tokenizer (when known) so the prompt fits the window with room for the answer. The words of
the prompt live in ``zhiku.prompts``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zhiku.prompts import ANSWER_HEADINGS, ANSWER_INSTRUCTIONS, SOURCE_LABEL
from zhiku.records import Hit, Triple
from zhiku.text import detect_language

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import LLM

#: Tokens kept free besides the answer: chat-template markup and tokenizer disagreements.
PROMPT_RESERVE = 64
#: Graph facts listed in a prompt at most (they are cheap context but noisy in bulk).
MAX_FACTS = 20


def describe_source(hit: Hit) -> str:
    """``title, p. 3, Section > Sub`` — how a passage is named in prompts and in printed sources."""
    title = hit.document.title or hit.document.source.rsplit("/", 1)[-1]
    parts = [title]
    if hit.chunk.page is not None:
        parts.append(f"p. {hit.chunk.page}")
    section = " > ".join(h for h in hit.chunk.heading_path if h.strip() != title.strip())
    if section:
        parts.append(section)
    return ", ".join(parts)


@dataclass
class Prompt:
    """The chat messages sent to the model and the passages they number (``hits[n-1]`` is ``[n]``)."""

    messages: list[ChatMessage]
    hits: list[Hit]
    facts: list[Triple]
    n_tokens: int
    language: str
    dropped: int = 0  # passages left out because the window was full


def _passage(n: int, hit: Hit, language: str) -> str:
    """``[n] text`` then its source. Small models copy a header line placed before the text into the
    answer; placed after, they quote the passage instead (checked with Qwen2.5-0.5B)."""
    return f"[{n}] {hit.chunk.text.strip()}\n({SOURCE_LABEL[language]}: {describe_source(hit)})"


def _fact(fact: Triple, number_of: dict[int, int]) -> str:
    n = number_of.get(fact.chunk_id) if fact.chunk_id is not None else None
    return f"- {fact.subject} — {fact.relation} — {fact.object}" + (f" [{n}]" if n else "")


def gather_facts(hits: Sequence[Hit]) -> list[Triple]:
    """The graph facts the hits carry, first seen first, without repeats."""
    seen: set[Triple] = set()
    return [f for hit in hits for f in hit.facts if not (f in seen or seen.add(f))]


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    budget: int,
    count_tokens: Callable[[str], int],
    facts: Sequence[Triple] = (),
    language: str | None = None,
) -> Prompt:
    """Number as many passages (best first) and facts as fit in ``budget`` tokens.

    A passage that does not fit is skipped (a shorter later one may still fit); when not even the
    first fits, it is cut to the room left, so a question is never asked without context.
    """
    language = language or detect_language(question)
    system = ANSWER_INSTRUCTIONS[language]
    h_passages, h_facts, h_question, h_answer = ANSWER_HEADINGS[language]
    tail = f"\n\n{h_question}{question}\n{h_answer}"
    used = count_tokens(system) + count_tokens(f"{h_passages}\n") + count_tokens(tail)
    kept: list[Hit] = []
    blocks: list[str] = []
    for hit in hits:
        block = _passage(len(kept) + 1, hit, language)
        cost = count_tokens(block + "\n\n")
        if used + cost > budget:
            if kept:
                continue
            block = _truncate(block, budget - used - count_tokens("\n\n"), count_tokens)
            cost = count_tokens(block + "\n\n")
            if not block:
                break
        kept.append(hit)
        blocks.append(block)
        used += cost
    number_of = {hit.chunk.id: n for n, hit in enumerate(kept, 1) if hit.chunk.id is not None}
    fact_lines: list[str] = []
    listed: list[Triple] = []
    for fact in list(facts)[:MAX_FACTS]:
        line = _fact(fact, number_of)
        cost = count_tokens(line + "\n") + (count_tokens(h_facts + "\n") if not fact_lines else 0)
        if used + cost > budget:
            break
        fact_lines.append(line)
        listed.append(fact)
        used += cost
    body = h_passages + "\n" + "\n\n".join(blocks)
    if fact_lines:
        body += f"\n\n{h_facts}\n" + "\n".join(fact_lines)
    from llama_index.core.base.llms.types import ChatMessage

    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=body + tail)]
    return Prompt(messages, kept, listed, used, language, dropped=len(hits) - len(kept))


def _truncate(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` within ``budget`` tokens (binary search on characters)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def prompt_budget(llm: LLM) -> int:
    """Prompt tokens available: the window less the answer's tokens and a reserve."""
    meta = llm.metadata
    answer_tokens = meta.num_output if meta.num_output and meta.num_output > 0 else 256
    return max(256, meta.context_window - answer_tokens - PROMPT_RESERVE)
