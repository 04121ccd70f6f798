"""The answer without an LLM: the passages' best supporting sentences, each cited.

Sentences are scored against the question (embedding cosine blended with word overlap, or word
overlap alone); those above a threshold and near the best are kept, at most a few per passage.
When none is good enough the answer is the exact not-found phrase.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.citations import not_found_text
from retrieval.keyword import Tokenizer
from retrieval.prompt import gather_facts
from zhiku.models import Embedder, comparable
from zhiku.records import Answer, Citation, Hit
from zhiku.text import count_cjk, detect_language, split_sentences


def statements(text: str) -> list[str]:
    """The sentences of ``text`` that can state an answer: no headings, labels or questions.

    Each line is read on its own (table rows, list items). A statement ends like a sentence or is
    long (table rows), and is not a question.
    """
    found = []
    for sentence in (s for line in text.splitlines() for s in split_sentences(line)):
        if sentence.endswith(("?", "？")):
            continue
        ends = sentence.endswith((".", "!", "。", "！", "；", ";", "\"", "”", ")", "）"))
        if detect_language(sentence) == "zh":
            cjk = count_cjk(sentence)
            keep = cjk >= 20 or (ends and cjk >= 6)
        else:
            words = len(re.findall(r"[^\W_]+", sentence))
            keep = words >= 8 or (ends and words >= 4)
        if keep:
            found.append(sentence)
    return found


@dataclass
class SentenceScorer:
    """Scores sentences against a question: embedding cosine when an embedder is given, else word overlap.

    The overlap is the share of the question's terms (stemmed English, segmented Chinese, stop words
    dropped) that the sentence contains; with an embedder the score is ``0.7 cos + 0.3 overlap``, the
    cosine on MiniLM's scale (``zhiku.models.comparable``) so one threshold serves every embedder.
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
        return 0.7 * comparable(vectors[1:] @ vectors[0], self.embedder.name) + 0.3 * overlap


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
    language = detect_language(question)
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
    text = ("" if language == "zh" else " ").join(f"{s}{' ' if language == 'en' else ''}[{n}]" for n, s in chosen)
    order = list(dict.fromkeys(n for n, _ in chosen))
    return Answer(text, [Citation(n, hits[n - 1]) for n in order], list(hits), facts, question)
