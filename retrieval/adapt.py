"""Query adaptation: two rules that shift one question's fusion weights toward the retriever suited to it.

- **exact terms** — a quoted phrase ("…", “…”, 「…」) or an identifier-like token (letters and digits
  mixed, or joined by ``_``: ``INV-2024-0042``, ``ISO27001``, ``p53``, ``max_retries``): only
  keyword search matches such strings literally, so the keyword weight is multiplied by ``BOOST``;
- **cross-language** — the question's language (``zhiku.text.detect_language``) differs from that of
  most passages vector search found for it: BM25 cannot match across languages and the
  multilingual vectors can, so the vector weight is multiplied by ``BOOST``.

Rules multiply and never add, so a retriever weighted 0 for a knowledge base (by ``zhiku tune
fusion``) stays off. Two more rules were measured and left out (eval/reports/README.md, fusion):
leaning on the graph for questions naming two or more of its entities lowered nDCG@10 on the
multi-hop set (the graph retriever is the weakest of the three there), and no cheap signal for
paraphrases was found.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zhiku.records import Hit
from zhiku.text import detect_language

#: How much a rule multiplies its retriever's weight.
BOOST = 2.0
#: How many of vector search's first passages decide the passages' language.
LANGUAGE_SAMPLE = 5

_QUOTED = re.compile(r"\"[^\"]{2,}\"|“[^”]{2,}”|「[^」]{2,}」|『[^』]{2,}』|‘[^’]{2,}’")
_IDENTIFIER = re.compile(r"(?<![\w-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z\d]+(?:[-_][A-Za-z\d]+)*(?![\w-])"
                         r"|(?<!\w)[A-Za-z]+(?:_[A-Za-z\d]+)+(?!\w)")


@dataclass(frozen=True)
class QuerySignals:
    """What the rules saw in one question."""

    exact_terms: bool
    cross_language: bool


def has_exact_terms(query: str) -> bool:
    """A quoted phrase or an identifier-like token (letters with digits, or snake_case)."""
    return bool(_QUOTED.search(query) or _IDENTIFIER.search(query))


def passage_language(hits: Sequence[Hit]) -> str | None:
    """The most common language of the first ``LANGUAGE_SAMPLE`` hits' documents, None without hits."""
    languages = Counter(h.document.language for h in hits[:LANGUAGE_SAMPLE])
    return languages.most_common(1)[0][0] if languages else None


def signals(query: str, rankings: Mapping[str, Sequence[Hit]]) -> QuerySignals:
    """The rules' view of ``query`` and the retrievers' ``rankings`` for it (by retriever name)."""
    language = passage_language(rankings.get("vector", ()))
    return QuerySignals(
        exact_terms=has_exact_terms(query),
        cross_language=language is not None and detect_language(query) != language,
    )


def adapt_weights(
    query: str, weights: Mapping[str, float], rankings: Mapping[str, Sequence[Hit]], boost: float = BOOST
) -> dict[str, float]:
    """``weights`` with each rule that fires for ``query`` multiplying its retriever's weight by ``boost``."""
    seen = signals(query, rankings)
    adapted = dict(weights)
    for name, fires in (("keyword", seen.exact_terms), ("vector", seen.cross_language)):
        if fires and name in adapted:
            adapted[name] *= boost
    return adapted
