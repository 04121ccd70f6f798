"""Citations are checked, not trusted: every ``[n]`` of a model's answer must name a given passage.

A citation of a passage that was not given is repaired (to the given passage closest to the cited
sentence) or removed, each with a warning on the ``Answer``. Small local models often put the
citation first ("[1] 30 days") or leave it out ("30 days"): a leading citation is moved behind its
line, and an answer citing nothing is attributed to the one passage that holds most of its words
(post-hoc attribution, with a warning saying so) or, when none does, flagged. The exact not-found
phrase (``zhiku.prompts.NOT_FOUND``) counts as an answer.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from retrieval.keyword import Tokenizer
from zhiku.prompts import NOT_FOUND
from zhiku.records import Citation, Hit

#: ``[1]``, ``[1, 2]``, ``【来源 3】``: the forms models write citations in.
CITATION = re.compile(r"[\[【]\s*(?:passage|source|来源|段落)?\s*(\d+(?:\s*[,，、;]\s*\d+)*)\s*[\]】]", re.I)
#: A line that opens with its citation: "[1] 30 days".
_LEADING = re.compile(
    r"^(?P<indent>[ \t]*)(?P<cites>(?:" + CITATION.pattern + r"\s*)+)(?P<rest>\S.*?)(?P<end>[.。!?！？]?)[ \t]*$",
    re.I | re.M)
#: The share of an uncited answer's words one passage must hold for the answer to be attributed to it.
ATTRIBUTION_RECALL = 0.6


def not_found_text(language: str) -> str:
    return NOT_FOUND["zh" if language == "zh" else "en"]


def says_not_found(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in NOT_FOUND.values())


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

    text = CITATION.sub(repair, text)
    text = _LEADING.sub(lambda m: f"{m['indent']}{m['rest']} {m['cites'].strip()}{m['end']}", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()
    order = _cited(text)
    if not order and text and hits and not says_not_found(text):
        source = _attribution(text, hits, tokenize)
        if source is None:
            warnings.append("the answer cites no passage: check it against the sources before relying on it")
        else:
            text = f"{text} [{source}]"
            order = [source]
            warnings.append(f"the model cited no passage; [{source}] was added: it holds most of the answer's words")
    return text, [Citation(n, hits[n - 1]) for n in order], warnings


def _cited(text: str) -> list[int]:
    """Passage numbers in order of first citation."""
    order: list[int] = []
    for match in CITATION.finditer(text):
        order.extend(int(x) for x in re.findall(r"\d+", match.group(1)) if int(x) not in order)
    return order


def _attribution(text: str, hits: Sequence[Hit], tokenize: Callable[[str], list[str]]) -> int | None:
    """The 1-based passage holding at least ``ATTRIBUTION_RECALL`` of the answer's words, the most
    of them (first on ties); ``None`` when no passage does."""
    words = set(tokenize(text))
    if not words:
        return None
    shares = [len(words & set(tokenize(h.chunk.text))) / len(words) for h in hits]
    best = int(np.argmax(shares))
    return best + 1 if shares[best] >= ATTRIBUTION_RECALL else None
