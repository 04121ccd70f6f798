"""Grounded answers: numbered context, citations that are checked, follow-ups made standalone.

The contract with the model is a prompt that numbers the retrieved passages ``[1]..[n]`` (with their
source, page and section) and lists the graph facts, asks for ``[n]`` citations and for the exact
phrase "not in the documents" (文档中没有相关信息 for Chinese questions) when the passages lack the
answer. The context is cut to the model's window, counted with its own tokenizer when known.

What comes back is not trusted: a citation of a passage that was not given is repaired (to the given
passage closest to the cited sentence) or removed, and an answer citing nothing is flagged, each
with a warning on the ``Answer``. Without an LLM (the ``extractive`` backend) the answer is the
best supporting sentences of the passages, each cited. A failing or slow LLM never loses the
retrieval results: the answer falls back to the extractive one and says why.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import LLM

from retrieval.keyword import Tokenizer
from retrieval.llm import describe_failure, token_counter
from zhiku.models import Embedder
from zhiku.records import Answer, Citation, Hit, Triple

log = logging.getLogger(__name__)

NOT_FOUND = {"en": "not in the documents", "zh": "文档中没有相关信息"}
#: Tokens kept free besides the answer: chat-template markup and tokenizer disagreements.
PROMPT_RESERVE = 64
#: Graph facts listed in a prompt at most (they are cheap context but noisy in bulk).
MAX_FACTS = 20

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9\u3400-\u9fff])|(?<=[。！？；])|\n+")
_CITATION = re.compile(r"[\[【]\s*(?:passage|source|来源|段落)?\s*(\d+(?:\s*[,，、;]\s*\d+)*)\s*[\]】]", re.I)


# ------------------------------------------------------------------------------------ text helpers
def language_of(text: str) -> str:
    """``zh`` when at least a fifth of the letters are Chinese characters, else ``en``."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    return "zh" if sum(1 for ch in letters if _CJK.match(ch)) / len(letters) >= 0.2 else "en"


_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|St|No|Nr|vs|etc|e\.g|i\.e|Inc|Ltd|Co|Corp|Jr|Sr|Fig|approx|Dept)|\b[A-Z])\.$", re.I
)


def split_sentences(text: str, min_chars: int = 8) -> list[str]:
    """Sentences of English or Chinese text (newlines end sentences too), fragments dropped.

    A full stop after a title or an initial ("Dr. Anna Weber", "J. Smith") does not end a sentence.
    """
    merged: list[str] = []
    for part in (p.strip() for p in _SENTENCE_END.split(text)):
        if not part:
            continue
        if merged and _ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return [p for p in merged if len(p) >= (4 if _CJK.search(p) else min_chars)]


def statements(text: str) -> list[str]:
    """The sentences of ``text`` that can state an answer: no headings, labels or questions.

    A statement ends like a sentence or is long (table rows), and is not a question.
    """
    found = []
    for sentence in split_sentences(text):
        if sentence.endswith(("?", "？")):
            continue
        ends = sentence.endswith((".", "!", "。", "！", "；", ";", "\"", "”", ")", "）"))
        if language_of(sentence) == "zh":
            cjk = len(_CJK.findall(sentence))
            keep = cjk >= 20 or (ends and cjk >= 6)
        else:
            words = len(re.findall(r"[^\W_]+", sentence))
            keep = words >= 8 or (ends and words >= 4)
        if keep:
            found.append(sentence)
    return found


def not_found_text(language: str) -> str:
    return NOT_FOUND["zh" if language == "zh" else "en"]


def says_not_found(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in NOT_FOUND.values())


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


def _joiner(language: str) -> str:
    return "" if language == "zh" else " "


# ------------------------------------------------------------------------------------ the prompt
_INSTRUCTIONS = {
    "en": (
        "You answer questions about a company's documents using only the numbered passages and facts "
        "given. Cite the passage of every statement with its number in square brackets, like [1] or "
        "[2][3]. If the passages do not contain the answer, reply exactly: not in the documents. "
        "Be concise and answer in English."
    ),
    "zh": (
        "你根据公司文档回答问题，只能使用下面编号的段落和事实。每一句都要用方括号注明出处段落编号，"
        "例如 [1] 或 [2][3]。如果段落中没有答案，请只回答：文档中没有相关信息。请用中文简洁回答。"
    ),
}
_HEADINGS = {
    "en": ("Passages:", "Facts from the knowledge graph:", "Question: ", "Answer:"),
    "zh": ("段落：", "知识图谱中的事实：", "问题：", "回答："),
}


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
    label = "来源" if language == "zh" else "Source"
    return f"[{n}] {hit.chunk.text.strip()}\n({label}: {describe_source(hit)})"


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
    language = language or language_of(question)
    system = _INSTRUCTIONS[language]
    h_passages, h_facts, h_question, h_answer = _HEADINGS[language]
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


# ------------------------------------------------------------------------------------ citations
def validate_citations(
    text: str, hits: Sequence[Hit], tokenize: Callable[[str], list[str]] | None = None
) -> tuple[str, list[Citation], list[str]]:
    """Check every ``[n]`` of ``text`` against the ``len(hits)`` passages that were given.

    A citation of a passage that was not given is replaced by the given passage sharing the most
    words with the cited sentence, or removed when none shares any; each repair is a warning. An
    answer that cites nothing (and does not say the answer is missing) is flagged.
    Returns the repaired text, the citations in order of first use, and the warnings.
    """
    tokenize = tokenize or Tokenizer()
    warnings: list[str] = []
    passage_terms: list[set[str]] | None = None

    def closest(position: int) -> int | None:
        nonlocal passage_terms
        if passage_terms is None:
            passage_terms = [set(tokenize(h.chunk.text)) for h in hits]
        start = max(text.rfind(p, 0, position) for p in (". ", "。", "\n", "！", "？"))
        sentence = set(tokenize(text[start + 1:position]))
        overlaps = [len(sentence & terms) for terms in passage_terms]
        best = int(np.argmax(overlaps)) if overlaps else -1
        return best + 1 if best >= 0 and overlaps[best] > 0 else None

    def repair(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        fixed: list[int] = []
        for n in numbers:
            if 1 <= n <= len(hits):
                good = n
            else:
                good = closest(match.start())
                what = f"replaced by [{good}]" if good else "removed"
                warnings.append(f"the answer cited [{n}] but only {len(hits)} passages were given; {what}")
            if good and good not in fixed:
                fixed.append(good)
        if fixed == numbers:
            return match.group(0)
        return "".join(f"[{n}]" for n in fixed)

    text = _CITATION.sub(repair, text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()
    order: list[int] = []
    for match in _CITATION.finditer(text):
        order.extend(int(x) for x in re.findall(r"\d+", match.group(1)) if int(x) not in order)
    citations = [Citation(n, hits[n - 1]) for n in order]
    if not citations and not says_not_found(text) and text:
        warnings.append("the answer cites no passage: check it against the sources before relying on it")
    return text, citations, warnings


# ------------------------------------------------------------------------------------ extractive
@dataclass
class SentenceScorer:
    """Scores sentences against a question: embedding cosine when an embedder is given, else word overlap.

    The overlap is the share of the question's terms (stemmed English, segmented Chinese, stop words
    dropped) that the sentence contains; with an embedder the score is ``0.7 cos + 0.3 overlap``.
    """

    embedder: Embedder | None = None
    tokenize: Callable[[str], list[str]] = field(default_factory=Tokenizer)

    def __call__(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        wanted = set(self.tokenize(question))
        overlap = np.array(
            [len(wanted & set(self.tokenize(s))) / len(wanted) if wanted else 0.0 for s in sentences],
            dtype=np.float32,
        )
        if self.embedder is None:
            return overlap
        vectors = self.embedder.embed([question, *sentences])
        return 0.7 * (vectors[1:] @ vectors[0]) + 0.3 * overlap


#: Below these scores a sentence does not support an answer (with / without an embedder).
EXTRACTIVE_THRESHOLD = {True: 0.38, False: 0.5}
#: ... and so do those more than this below the best sentence.
EXTRACTIVE_MARGIN = 0.15


def extractive_answer(
    question: str,
    hits: Sequence[Hit],
    scorer: SentenceScorer | None = None,
    max_sentences: int = 3,
    per_passage: int = 2,
) -> Answer:
    """The best supporting sentences of the passages, each cited, or "not in the documents"."""
    scorer = scorer or SentenceScorer()
    language = language_of(question)
    candidates = [(n, s) for n, hit in enumerate(hits, 1) for s in statements(hit.chunk.text)]
    scores = scorer(question, [s for _, s in candidates])
    threshold = EXTRACTIVE_THRESHOLD[scorer.embedder is not None]
    if len(scores):  # sentences far below the best one are beside the point
        threshold = max(threshold, float(scores.max()) - EXTRACTIVE_MARGIN)
    chosen: list[tuple[int, str]] = []
    taken: dict[int, int] = {}
    for i in np.argsort(-scores, kind="stable"):
        n, sentence = candidates[i]
        if scores[i] < threshold or len(chosen) == max_sentences:
            break
        if taken.get(n, 0) < per_passage and sentence not in (s for _, s in chosen):
            chosen.append((n, sentence))
            taken[n] = taken.get(n, 0) + 1
    facts = gather_facts(hits)
    if not chosen:
        return Answer(not_found_text(language), hits=list(hits), facts=facts, question=question)
    text = _joiner(language).join(f"{s}{' ' if language == 'en' else ''}[{n}]" for n, s in chosen)
    order = list(dict.fromkeys(n for n, _ in chosen))
    return Answer(text, [Citation(n, hits[n - 1]) for n in order], list(hits), facts, question)


# ------------------------------------------------------------------------------------ generation
def prompt_budget(llm: LLM) -> int:
    """Prompt tokens available: the window less the answer's tokens and a reserve."""
    meta = llm.metadata
    answer_tokens = meta.num_output if meta.num_output and meta.num_output > 0 else 256
    return max(256, meta.context_window - answer_tokens - PROMPT_RESERVE)


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
    text, failure = "", ""
    started = time.perf_counter()
    stream = None
    try:
        stream = llm.stream_chat(prompt.messages)
        for response in stream:
            delta = response.delta or ""
            text += delta
            if delta:
                yield delta
            local_timeout = isinstance(response.raw, dict) and response.raw.get("timed_out")
            if local_timeout or time.perf_counter() - started > timeout_s:
                warnings.append(f"the LLM did not finish within {timeout_s:g} s (llm_timeout_s); the answer is cut short")
                break
    except Exception as exc:  # a backend failure of any kind: report it, keep the retrieval results
        log.debug("generation failed", exc_info=True)
        failure = describe_failure(exc, llm)
        text = ""
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if not re.search(r"\w", _CITATION.sub("", text)):
        answer = extractive_answer(question, prompt.hits, scorer)
        answer.hits = hits
        why = failure or ("the LLM replied with citations only" if text.strip() else "the LLM returned nothing")
        warnings.append(f"{why}; showing the best supporting sentences instead")
        answer.warnings = warnings + answer.warnings
        yield answer
        return
    checked, citations, problems = validate_citations(text.strip(), prompt.hits, scorer.tokenize)
    yield Answer(checked, citations, hits, prompt.facts, question, warnings + problems)


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


# ------------------------------------------------------------------------------------ follow-ups
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
_REWRITE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace "
    "pronouns and vague references with what they refer to. Keep the question's language. Reply with "
    "the rewritten question only, on one line."
)


def looks_like_followup(question: str) -> bool:
    """Pronouns, "what about …" openings or very short questions lean on the conversation."""
    if language_of(question) == "zh":
        return bool(_FOLLOWUP_ZH.search(question)) or len(_CJK.findall(question)) <= 4
    words = re.findall(r"[^\W_]+", question)
    return bool(_FOLLOWUP_EN.search(question)) or len(words) <= 3


def topic_of(question: str) -> str:
    """The content words of a question: what a follow-up to it is probably about."""
    if language_of(question) == "zh":
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
    return f"{question}（{topic}）" if language_of(question) == "zh" else f"{question} ({topic})"


def _llm_rewrite(question: str, history: Sequence[Answer], llm: LLM, timeout_s: float) -> str:
    turns = []
    for earlier in history[-3:]:
        turns.append(f"User: {earlier.question}")
        turns.append(f"Assistant: {earlier.text[:300]}")
    user = "Conversation:\n" + "\n".join(turns) + f"\n\nLast question: {question}\nStandalone question:"
    messages = [ChatMessage(role="system", content=_REWRITE_SYSTEM), ChatMessage(role="user", content=user)]
    text = ""
    started = time.perf_counter()
    stream = None
    try:
        stream = llm.stream_chat(messages)
        for response in stream:
            text += response.delta or ""
            if "\n" in text.strip() or len(text) > 4 * len(question) + 200 or time.perf_counter() - started > timeout_s:
                break
    except Exception as exc:  # rewriting is an optimisation: fall back to the heuristic
        log.info("follow-up rewriting failed: %s", describe_failure(exc, llm))
        return ""
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(standalone question|rewritten question|question)\s*[:：]\s*", "", line, flags=re.I)
    line = line.strip("\"'“”「」 ")
    return line if 3 <= len(line) <= 4 * len(question) + 200 else ""
