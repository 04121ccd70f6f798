"""Keyword retrieval: BM25 (bm25s) over every chunk, for English and Chinese alike.

Text is split into runs of Chinese characters and runs of everything else. Chinese runs are
segmented with ``jieba.lcut_for_search`` (which also emits the sub-words of long words, so a query
word matches inside a longer document word); other runs are lower-cased words with English stop
words dropped and a Snowball stem (NLTK's, ``retrieval.stem``), so "policies" finds "policy". Mixed text gets both.

The index is derived from SQLite: built once per corpus signature (see ``retrieval.catalog``),
kept in the retriever instance and saved as ``bm25.npz`` in the knowledge-base folder, stamped
with the signature, so a new process loads it instead of re-tokenising the corpus. The file is
replaced atomically; one that is torn, damaged or inconsistent is rebuilt from SQLite.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
import threading
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import jieba
import numpy as np

from retrieval.catalog import Catalog
from retrieval.stem import stem as english_stem
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.records import Hit, User
from zhiku.text import CJK_RUN

if TYPE_CHECKING:
    import bm25s

log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at DEBUG to stderr

INDEX_FILE = "bm25.npz"
_CJK_SPLIT = re.compile(f"({CJK_RUN.pattern})")  # the runs are kept by split
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _bm25s() -> ModuleType:
    """bm25s, imported when an index is built or loaded: its ``__init__`` imports Numba (about
    half a second and 70 MiB), which tokenising text (citations, extractive answers) never needs."""
    import bm25s

    # bm25s sets its own logger to DEBUG on import, which prints index-building chatter in the CLI.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@cache
def _stopwords() -> tuple[frozenset[str], frozenset[str]]:
    """bm25s's English (``STOPWORDS_EN_PLUS``) and Chinese stop words, without importing bm25s:
    its ``stopwords`` module is plain data, loaded from its file when bm25s is not loaded yet."""
    module = sys.modules.get("bm25s.stopwords")
    if module is None:
        package = importlib.util.find_spec("bm25s")
        if package is None or not package.submodule_search_locations:
            raise ImportError("retrieval.keyword needs the package bm25s==0.3.16")
        path = Path(next(iter(package.submodule_search_locations))) / "stopwords.py"
        spec = importlib.util.spec_from_file_location("_zhiku_bm25s_stopwords", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return frozenset(module.STOPWORDS_EN_PLUS), frozenset(module.STOPWORDS_CHINESE)


class Tokenizer:
    """Text -> BM25 terms. Keeps a stem cache: corpora repeat words, stemming is the slow part."""

    def __init__(self) -> None:
        self._stems: dict[str, str] = {}
        self._en_stop, self._zh_stop = _stopwords()

    def __call__(self, text: str) -> list[str]:
        terms: list[str] = []
        for i, run in enumerate(_CJK_SPLIT.split(text)):
            if i % 2:  # a run of Chinese characters
                terms.extend(w for w in jieba.lcut_for_search(run) if w not in self._zh_stop)
            else:
                for word in _WORD.findall(run.lower()):
                    if word in self._en_stop:
                        continue
                    stem = self._stems.get(word)
                    if stem is None:
                        stem = self._stems[word] = english_stem(word)
                    terms.append(stem)
        return terms


@dataclass
class _Index:
    signature: str
    model: bm25s.BM25
    #: chunk_ids[i] is the chunk id of BM25 document i.
    chunk_ids: np.ndarray


class KeywordRetriever:
    """BM25 over chunk text and section headings, filtered by the user's groups."""

    name = "keyword"

    def __init__(self, kb: KnowledgeBase, catalog: Catalog | None = None, persist: bool = True) -> None:
        self.kb = kb
        self.catalog = catalog or Catalog(kb)
        self.persist = persist
        self.tokenize = Tokenizer()
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def retrieve(self, query: str, k: int, user: User) -> list[Hit]:
        terms = self.tokenize(query)
        if not terms or k <= 0:
            return []
        index = self.index()
        if index is None:
            return []
        scores = index.model.get_scores(terms)
        if not self.catalog.sees_everything(user):
            scores = np.where(self.catalog.visible_chunks(user, index.chunk_ids), scores, 0.0)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        best = matched[np.argsort(-scores[matched], kind="stable")]
        return self.catalog.hits(index.chunk_ids[best].tolist(), scores[best].tolist(), self.name)

    # ------------------------------------------------------------------ index
    def index(self) -> _Index | None:
        """The BM25 index of the current corpus (None for an empty one): kept, loaded or built."""
        signature = self.catalog.signature
        with self._lock:
            if self._index is None or self._index.signature != signature:
                with self.kb.snapshot():  # the signature and the chunks indexed come from one state
                    signature = self.catalog.signature
                    self._index = self._load(signature) if self.persist else None
                    if self._index is None:
                        self._index = self._build(signature)
                        if self.persist:
                            self._save(self._index)
            return self._index if len(self._index.chunk_ids) else None

    def _build(self, signature: str) -> _Index:
        ids, corpus = [], []
        for chunk in self.kb.iter_chunks(batch=5000):
            ids.append(chunk.id)
            corpus.append(self.tokenize(f"{chunk.section}\n{chunk.text}" if chunk.heading_path else chunk.text))
        model = _bm25s().BM25()
        if corpus:
            model.index(corpus, show_progress=False)
        log.info("built BM25 index over %d chunks", len(ids))
        return _Index(signature, model, np.array(ids, dtype=np.int64))

    @property
    def _path(self) -> Path:
        return self.kb.root / INDEX_FILE

    def _save(self, index: _Index) -> None:
        scores = index.model.scores if len(index.chunk_ids) else {}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(
                    out,
                    signature=np.array(index.signature),
                    chunk_ids=index.chunk_ids,
                    vocab=np.array(json.dumps(getattr(index.model, "vocab_dict", {}), ensure_ascii=False)),
                    **{f"scores_{key}": np.asarray(value) for key, value in scores.items()},
                )

        try:
            atomic_write(self._path, write)
        except OSError as exc:  # a read-only knowledge base still answers; it just rebuilds next time
            log.warning("could not save the BM25 index to %s: %s", self._path, exc)

    def _load(self, signature: str) -> _Index | None:
        try:
            with np.load(self._path, allow_pickle=False) as saved:
                if str(saved["signature"]) != signature:
                    return None
                model = _bm25s().BM25()
                chunk_ids = saved["chunk_ids"]
                if len(chunk_ids):
                    model.scores = {
                        key[len("scores_"):]: (saved[key].item() if saved[key].ndim == 0 else saved[key])
                        for key in saved.files if key.startswith("scores_")
                    }
                    model.vocab_dict = json.loads(str(saved["vocab"]))
                    model.unique_token_ids_set = set(model.vocab_dict.values())
                    model.nonoccurrence_array = None  # only BM25L/BM25+ have one; we use lucene
                    if int(model.scores.get("num_docs", len(chunk_ids))) != len(chunk_ids):
                        raise ValueError(f"{model.scores['num_docs']} scored documents for {len(chunk_ids)} chunk ids")
                return _Index(signature, model, chunk_ids)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # torn or damaged
            if self._path.exists():
                log.warning("ignoring unreadable BM25 index %s (%s); rebuilding", self._path, exc)
            return None
