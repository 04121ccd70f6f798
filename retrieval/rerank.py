"""Reranking the fused top-N with a stronger (slower) relevance judge.

Two judges plug in behind ``Reranker``: a sentence-transformers ``CrossEncoder`` loaded from a
folder the user configures (no cross-encoder ships on PyPI, see MODELS.md; ``zhiku tune reranker``
trains one into ``<kb>/models/reranker-N``), and an LLM asked "does this passage help answer the
question? yes/no" for the first few passages. The setting ``reranker`` picks one: ``none``, ``llm``
or a CrossEncoder folder path.

A folder holding ``zhiku-reranker.json`` (what ``tune.reranker`` writes) names an ONNX export of
the network in it: that file is run in ONNX Runtime with the folder's fast tokenizer, so loading
imports neither torch nor sentence-transformers (under a second); bench/rerank.py times scoring the
top 20. Any other folder is loaded as a ``CrossEncoder``.
"""
from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


#: The file in a reranker folder that names its ONNX export (written by ``tune.reranker``).
ONNX_MANIFEST = "zhiku-reranker.json"


class OnnxCrossEncoder:
    """A cross-encoder exported to ONNX: (query, passage) pairs in, one relevance score each out.

    The pairs are tokenised by the folder's ``tokenizer.json`` exactly as the training tokeniser
    pairs them (``[CLS] query [SEP] passage [SEP]``, the longer side cut first), and the logit goes
    through a sigmoid like ``CrossEncoder.predict`` does, so both engines give the same scores.
    """

    def __init__(self, folder: Path, onnx_file: Path, max_length: int, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length, strategy="longest_first")
        pad = _pad_token(folder)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad), pad_token=pad)
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 16, show_progress_bar: bool = False) -> np.ndarray:
        """Scores in [0, 1], as ``CrossEncoder.predict`` takes and returns them (no progress bar here)."""
        scores = np.empty(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), batch_size):
            encoded = self.tokenizer.encode_batch(list(pairs[start:start + batch_size]))
            features = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            logits = self.session.run(None, {n: features[n] for n in self.inputs})[0]
            scores[start:start + len(encoded)] = logits.reshape(len(encoded), -1)[:, 0]
        return 1.0 / (1.0 + np.exp(-scores))


def _pad_token(folder: Path) -> str:
    config = folder / "tokenizer_config.json"
    pad = json.loads(config.read_text(encoding="utf-8")).get("pad_token") if config.is_file() else None
    return pad if isinstance(pad, str) else "[PAD]"


class CrossEncoderReranker:
    """Scores (query, passage) pairs jointly with a cross-encoder from a local folder.

    A folder with ``zhiku-reranker.json`` runs its ONNX export (``OnnxCrossEncoder``); any other
    sentence-transformers or transformers sequence-classification folder runs in PyTorch.
    """

    name = "cross-encoder"

    def __init__(self, path: Path | str, batch_size: int = 16, max_length: int = 512) -> None:
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelError(
                f"reranker {str(path)!r} is not a cross-encoder folder (no config.json); set reranker "
                "(or ZHIKU_RERANKER) to a sentence-transformers CrossEncoder folder, 'llm' or 'none'"
            )
        self.batch_size = batch_size
        self._model: Any = _onnx_model(path) or _torch_model(path, max_length)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits or k <= 0:
            return []
        pairs = [(query, hit.chunk.text) for hit in hits]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return _rescored(hits, [float(s) for s in scores], k)


def _onnx_model(path: Path) -> OnnxCrossEncoder | None:
    """The ONNX engine ``zhiku-reranker.json`` names, or None when the folder has no such file."""
    manifest = path / ONNX_MANIFEST
    if not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        onnx_file = path / str(meta["onnx"])
        max_length = int(meta.get("max_length", 512))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{manifest}: not a reranker manifest ({exc}); train the reranker again "
                         "(`zhiku tune reranker`) or remove the file to load the folder with PyTorch") from exc
    if not onnx_file.is_file():
        raise ModelError(f"{manifest} names {onnx_file.name}, which is missing; train the reranker again "
                         "(`zhiku tune reranker`)")
    return OnnxCrossEncoder(path, onnx_file, max_length)


def _torch_model(path: Path, max_length: int) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), device="cpu", max_length=max_length)


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
