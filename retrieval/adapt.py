"""Query adaptation: a question holding exact terms leans on keyword search.

An exact term is a quoted phrase ("…", “…”, 「…」) or an identifier-like token (letters and digits
mixed, or joined by ``_``: ``INV-2024-0042``, ``ISO27001``, ``p53``, ``max_retries``). Only keyword
search matches such strings literally, so for such a question the keyword weight is multiplied by
``BOOST``. Averaged over the weight grid it raised nDCG@10 on each development set (sample +0.006,
multi-hop +0.003, Chinese news +0.0003; eval/reports/README.md, fusion).

Two more rules were measured and left out: leaning on vectors when the question's language differs
from that of the passages vector search found (it never helped and lowered the sample set in 11 of
45 weightings: with the English embedder the vectors do not cross languages well either), and
leaning on the graph for questions naming two or more of its entities (it lowered nDCG@10 on the
multi-hop set, where the graph retriever is the weakest of the three). No cheap signal for
paraphrases was found. The rule multiplies, so a retriever weighted 0 for a knowledge base stays off.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

#: How much the rule multiplies the keyword weight.
BOOST = 2.0

_QUOTED = re.compile(r"\"[^\"]{2,}\"|“[^”]{2,}”|「[^」]{2,}」|『[^』]{2,}』|‘[^’]{2,}’")
_IDENTIFIER = re.compile(r"(?<![\w-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z\d]+(?:[-_][A-Za-z\d]+)*(?![\w-])"
                         r"|(?<!\w)[A-Za-z]+(?:_[A-Za-z\d]+)+(?!\w)")


def has_exact_terms(query: str) -> bool:
    """A quoted phrase or an identifier-like token (letters with digits, or snake_case)."""
    return bool(_QUOTED.search(query) or _IDENTIFIER.search(query))


def adapt_weights(query: str, weights: Mapping[str, float], boost: float = BOOST) -> dict[str, float]:
    """``weights`` for ``query``: the keyword weight times ``boost`` when the question holds exact terms."""
    adapted = dict(weights)
    if "keyword" in adapted and has_exact_terms(query):
        adapted["keyword"] *= boost
    return adapted
