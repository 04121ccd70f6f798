"""Reranking the fused top-N with a stronger (slower) relevance judge.

Two judges plug in behind ``Reranker``: a sentence-transformers ``CrossEncoder`` loaded from a
folder the user configures (no cross-encoder ships on PyPI, see MODELS.md), and an LLM asked
"does this passage help answer the question? yes/no" for the first few passages. The setting
``reranker`` picks one: ``none``, ``llm`` or a CrossEncoder folder path.
"""
from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zhiku.models import ModelError
from zhiku.protocols import Reranker, Retriever
from zhiku.records import Hit, User
from zhiku.settings import Settings, SettingsError
from zhiku.prompts import JUDGE_RELEVANCE

log = logging.getLogger(__name__)


def _rescored(hits: Sequence[Hit], scores: Sequence[float], k: int) -> list[Hit]:
    """Copies of ``hits`` carrying the new scores, best first (ties keep the incoming order)."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])[:k]
    out = []
    for i in order:
        hit = copy.copy(hits[i])
        hit.score = float(scores[i])
        out.append(hit)
    return out


class CrossEncoderReranker:
    """Scores (query, passage) pairs jointly with a cross-encoder from a local folder."""

    name = "cross-encoder"

    def __init__(self, path: Path | str, batch_size: int = 16, max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder

        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelError(
                f"reranker {str(path)!r} is not a cross-encoder folder (no config.json); set reranker "
                "(or ZHIKU_RERANKER) to a sentence-transformers CrossEncoder folder, 'llm' or 'none'"
            )
        self.batch_size = batch_size
        self._model = CrossEncoder(str(path), device="cpu", max_length=max_length)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits or k <= 0:
            return []
        pairs = [(query, hit.chunk.text) for hit in hits]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return _rescored(hits, [float(s) for s in scores], k)


_YES = re.compile(r"^\W*(yes|是|对|有)", re.IGNORECASE)


class LLMJudgeReranker:
    """A llama-index LLM judges the first ``top`` passages relevant or not.

    Passages judged relevant move ahead (in their incoming order), those judged irrelevant go
    last, and passages beyond ``top`` keep their place in between: the judge only reorders what
    it read. A failing call leaves that passage unjudged rather than failing the search.
    """

    name = "llm-judge"

    def __init__(self, llm: Any, top: int = 8, max_passage_chars: int = 1500) -> None:
        self.llm = llm
        self.top = top
        self.max_passage_chars = max_passage_chars

    def judge(self, query: str, passage: str) -> bool | None:
        prompt = JUDGE_RELEVANCE.format(query=query, passage=passage[: self.max_passage_chars])
        try:
            reply = self.llm.complete(prompt).text
        except Exception as exc:  # a backend error must not lose the search results
            log.warning("relevance judge failed (%s); keeping the passage's rank", exc)
            return None
        return bool(_YES.match(reply.strip()))

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits or k <= 0:
            return []
        n = len(hits)
        # yes: 2, unjudged: 1, no: 0; within a class the incoming order decides.
        classes = [{True: 2, None: 1, False: 0}[self.judge(query, h.chunk.text)] for h in hits[: self.top]]
        classes += [1] * (n - len(classes))
        return _rescored(hits, [c + (n - i) / (n + 1) for i, c in enumerate(classes)], k)


class RerankedRetriever:
    """A retriever whose top ``pool`` candidates are reordered by a reranker."""

    def __init__(self, base: Retriever, reranker: Reranker, pool: int = 20) -> None:
        self.base = base
        self.reranker = reranker
        self.pool = pool
        self.name = f"{base.name}+rerank"

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        if k <= 0:
            return []
        return self.reranker.rerank(query, self.base.retrieve(query, max(k, self.pool), user), k)


def load_reranker(settings: Settings, llm: Any = None) -> Reranker | None:
    """The reranker the ``reranker`` setting names (None for ``none``)."""
    choice = settings.reranker.strip()
    if choice in ("", "none"):
        return None
    if choice == "llm":
        if llm is None:
            raise SettingsError("reranker 'llm' needs an LLM backend: set llm to 'local' or 'openai'")
        return LLMJudgeReranker(llm)
    if not Path(choice).expanduser().is_dir():
        raise SettingsError(
            f"setting 'reranker' (or ZHIKU_RERANKER) is {choice!r}: use 'none', 'llm' or the folder of a "
            "sentence-transformers CrossEncoder"
        )
    return CrossEncoderReranker(choice)
