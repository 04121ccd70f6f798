"""Answer quality: agreement with gold answers, citation support, and refusals on unanswerable questions.

- **Gold answers** (where the dataset has them): SQuAD exact match and token F1 (character-level for
  Chinese), plus "contains": the normalised gold answer appears in the answer, the fair test for a
  sentence-long generated answer against a short gold answer.
- **Citation support** (every answer): each sentence that cites ``[n]`` is checked against passage n.
  With an LLM configured, the LLM judges "does the passage support the statement?"; otherwise a
  lexical-semantic check: the share of the sentence's tokens found in the passage (overlap) and the
  cosine similarity of their embeddings, supported when either passes its threshold. The report
  names the method used, since the two are not the same measurement.
- **Refusals**: on questions with no relevant document, the share of answers that say the
  documents do not contain the answer (the behaviour the grounded prompt asks for).
"""
from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm import tqdm

from eval.datasets import Query
from eval.text import contains, normalize, sentences, token_f1, token_recall
from zhiku.models import Embedder
from zhiku.records import Answer
from zhiku.prompts import JUDGE_SUPPORT, NOT_FOUND

#: Phrases by which an answer declines: the grounded prompt's own, then common English and Chinese ones.
REFUSALS = (
    *NOT_FOUND.values(), "not in the provided documents", "documents do not contain", "no information",
    "cannot find", "could not find", "not mentioned", "insufficient information",
    "文档中没有", "文件中没有", "未在文档中", "文档未提及", "没有相关信息", "无法从文档",
)
#: Thresholds of the lexical-semantic support check: heuristics (all-MiniLM-L6-v2 puts a faithful
#: paraphrase of a passage sentence near 0.65-0.85 and an unrelated one of the same topic under 0.3).
OVERLAP_SUPPORTED = 0.6
SIMILARITY_SUPPORTED = 0.6
_MARKER = re.compile(r"[\[［](\d+(?:\s*[,，]\s*\d+)*)[\]］]")


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def is_refusal(text: str) -> bool:
    norm = normalize(text).replace(" ", "")
    return any(normalize(p).replace(" ", "") in norm for p in REFUSALS)


class SupportJudge(Protocol):
    """Says whether a passage supports a statement, with a score in [0, 1]."""

    method: str

    def support(self, statement: str, passage: str) -> tuple[bool, float]: ...


class OverlapJudge:
    """No-LLM support check: token overlap of the statement with the passage, or embedding similarity."""

    method = "token overlap + embedding similarity"

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder

    def support(self, statement: str, passage: str) -> tuple[bool, float]:
        overlap = token_recall(statement, passage)
        similarity = 0.0
        if self.embedder is not None:
            vectors = self.embedder.embed([statement, passage])
            similarity = float(vectors[0] @ vectors[1])
        return overlap >= OVERLAP_SUPPORTED or similarity >= SIMILARITY_SUPPORTED, max(overlap, similarity)


_YES = re.compile(r"^\W*(yes|是|对|支持)", re.IGNORECASE)


class LLMJudge:
    """The configured llama-index LLM reads the passage and the statement and answers yes or no."""

    method = "LLM judge"

    def __init__(self, llm: Any, max_passage_chars: int = 1500) -> None:
        self.llm = llm
        self.max_passage_chars = max_passage_chars

    def support(self, statement: str, passage: str) -> tuple[bool, float]:
        reply = self.llm.complete(JUDGE_SUPPORT.format(passage=passage[: self.max_passage_chars],
                                                        statement=statement)).text
        yes = bool(_YES.match(reply.strip()))
        return yes, float(yes)


@dataclass
class CitationCheck:
    sentence: str
    n: int
    supported: bool
    score: float


def check_citations(answer: Answer, judge: SupportJudge) -> list[CitationCheck]:
    """Every (sentence, cited passage) pair of ``answer``, judged; citations to unknown numbers fail."""
    passages = {c.n: c.hit.chunk.text for c in answer.citations}
    checks = []
    for sentence in sentences(answer.text):
        numbers = [int(n) for group in _MARKER.findall(sentence) for n in re.split(r"[,，]", group)]
        statement = _MARKER.sub("", sentence).strip()
        for n in dict.fromkeys(numbers):
            if n not in passages:
                checks.append(CitationCheck(statement, n, False, 0.0))
                continue
            supported, score = judge.support(statement, passages[n])
            checks.append(CitationCheck(statement, n, supported, score))
    return checks


@dataclass
class AnswerResult:
    query_id: str
    answer: str
    gold: str | None
    answerable: bool
    exact_match: float | None = None
    f1: float | None = None
    contains: float | None = None
    refused: bool = False
    citations: list[CitationCheck] = field(default_factory=list)


def score_answer(
    query_id: str, answer: Answer, gold: str | None, answerable: bool, judge: SupportJudge,
    parts: Sequence[Sequence[str]] = (),
) -> AnswerResult:
    """Score one answer. With ``parts`` (every part required, any of its alternatives will do, as
    RGB scores), "contains" asks for all of them; exact match and F1 compare with ``gold``."""
    result = AnswerResult(query_id, answer.text, gold, answerable, refused=is_refusal(answer.text),
                          citations=check_citations(answer, judge))
    if gold is not None and answerable:
        text = _MARKER.sub("", answer.text)
        result.exact_match = exact_match(text, gold)
        result.f1 = token_f1(text, gold)
        result.contains = float(all(any(contains(text, alt) for alt in part) for part in parts)
                                if parts else contains(text, gold))
    return result


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summary(results: Sequence[AnswerResult], method: str) -> dict[str, Any]:
    """Aggregate figures of an answer run (None where nothing was measured)."""
    graded = [r for r in results if r.f1 is not None]
    checks = [c for r in results for c in r.citations]
    unanswerable = [r for r in results if not r.answerable]
    answerable = [r for r in results if r.answerable]
    return {
        "answers": len(results),
        "with_gold": len(graded),
        "exact_match": _mean([r.exact_match for r in graded]),
        "f1": _mean([r.f1 for r in graded]),
        "contains_gold": _mean([r.contains for r in graded]),
        "citation_method": method,
        "citations_checked": len(checks),
        "citation_support": _mean([float(c.supported) for c in checks]),
        "answers_with_citations": _mean([float(bool(r.citations)) for r in answerable]),
        "unanswerable": len(unanswerable),
        "refusal_rate_unanswerable": _mean([float(r.refused) for r in unanswerable]),
        "refusal_rate_answerable": _mean([float(r.refused) for r in answerable]),
    }


def markdown(figures: dict[str, Any], mode: str, backend: str) -> str:
    """The report section of an answer run."""
    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    rows = [
        ("answers generated", "answers"), ("with a gold answer", "with_gold"), ("exact match", "exact_match"),
        ("token F1", "f1"), ("gold answer contained", "contains_gold"),
        (f"citations supported ({figures['citation_method']})", "citation_support"),
        ("citations checked", "citations_checked"), ("answerable questions answered with citations", "answers_with_citations"),
        ("unanswerable questions", "unanswerable"), ("'not in the documents' on unanswerable", "refusal_rate_unanswerable"),
        ("'not in the documents' on answerable", "refusal_rate_answerable"),
    ]
    lines = [f"## Answer quality (mode {mode}, answer backend {backend})", "", "| measure | value |", "|---|---|"]
    lines += [f"| {title} | {fmt(figures[key])} |" for title, key in rows]
    return "\n".join(lines)


def evaluate_answers(
    queries: Sequence[Query],
    ask: Callable[[str], Answer],
    judge: SupportJudge,
    progress: bool = True,
) -> tuple[list[AnswerResult], dict[str, Any]]:
    """Ask every query and score its answer against the query's gold answer (and answer parts)."""
    results = [
        score_answer(q.id, ask(q.query), q.answer, q.answerable, judge, q.answer_parts)
        for q in tqdm(queries, desc="answers", unit="q", disable=not progress, leave=False)
    ]
    return results, summary(results, judge.method)
