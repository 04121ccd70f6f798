"""Evaluation datasets: our JSONL, BEIR folders and MultiHop-RAG files, loaded into one shape.

A ``Dataset`` is queries with gold labels plus a corpus: either a folder of files (our JSONL, whose
``relevant`` entries are document sources, absolute or relative to that folder, or chunk ids of an
existing knowledge base) or a list of records (BEIR, MultiHop-RAG) that ``prepare_kb`` writes once as
text files so the product's own ingest pipeline builds the knowledge base being measured. That
knowledge base is cached per dataset, size/mtime and embedding settings, so a second run reuses it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ingest.pipeline import IngestReport, ingest
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder, load_embedder
from zhiku.settings import Settings
from zhiku.errors import DatasetError

#: How a gold label names what is relevant: documents (sources or corpus ids) or chunk ids.
LEVELS = ("doc", "chunk")



@dataclass
class Query:
    id: str
    query: str
    #: Gold label -> grade (> 0 relevant). Labels are document references or chunk ids (see ``level``).
    relevant: dict[str, float]
    answer: str | None = None
    #: Parts a correct answer must all contain, each as its accepted alternatives (RGB's lists:
    #: ``[["131万", "1313851"], ["4次"]]``); empty when ``answer`` alone is the gold string.
    answer_parts: list[list[str]] = field(default_factory=list)
    #: Passages or facts a relevant chunk must contain (chunk-level judgement without chunk ids).
    evidence: list[str] = field(default_factory=list)
    kind: str = ""

    @property
    def answerable(self) -> bool:
        return any(g > 0 for g in self.relevant.values())


@dataclass
class CorpusRecord:
    """A corpus entry that is not a file yet (a BEIR passage, a MultiHop-RAG article)."""

    id: str
    title: str
    text: str


@dataclass
class Dataset:
    name: str
    path: Path
    format: str  # "jsonl" | "beir" | "multihop" | "hipporag"
    queries: list[Query]
    level: str = "doc"  # one of LEVELS
    corpus_dir: Path | None = None
    records: list[CorpusRecord] | None = None

    def limited(self, n: int | None, max_docs: int | None = None) -> Dataset:
        """The first ``n`` queries; with ``max_docs``, records cut to the ones those queries need plus
        the first others up to ``max_docs`` (a quick look at a big corpus; an easier task, reported so)."""
        queries = self.queries[:n] if n else self.queries
        records = self.records
        if records is not None and max_docs and len(records) > max_docs:
            needed = {ref for q in queries for ref in q.relevant}
            keep = [r for r in records if r.id in needed]
            keep += [r for r in records if r.id not in needed][: max(0, max_docs - len(keep))]
            records = keep
        return replace(self, queries=queries, records=records)


# ------------------------------------------------------------------------------------------ loading
def load_dataset(path: Path | str, corpus: Path | str | None = None) -> Dataset:
    """Load a dataset, detecting its format from what the path holds.

    - a ``.jsonl`` file, or a folder holding one ``*.jsonl`` (and optionally ``corpus/``): our format;
    - a folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/*.tsv`` or ``qrels.tsv``: BEIR;
    - a HippoRAG questions ``.json`` (``supporting_facts`` or ``paragraphs[is_supporting]``) with its
      ``*_corpus.json`` beside it, or a folder holding both: HippoRAG;
    - a questions ``.json`` file, or a folder with JSON lists of articles (``body``) and of questions
      (``evidence_list``): MultiHop-RAG.
    ``corpus`` names the folder our JSONL's relative sources live in.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file or folder")
    corpus_dir = Path(corpus) if corpus else None
    if path.is_file() and path.suffix == ".jsonl":
        return load_jsonl(path, corpus_dir)
    hipporag = _hipporag_questions(path)
    if hipporag is not None:
        return load_hipporag(hipporag)
    if path.is_file() and path.suffix == ".json":
        return load_multihop(path)
    if (path / "corpus.jsonl").exists() and (path / "queries.jsonl").exists():
        return load_beir(path)
    jsonls = sorted(p for p in path.glob("*.jsonl"))
    if len(jsonls) == 1:
        default_corpus = path / "corpus"
        return load_jsonl(jsonls[0], corpus_dir or (default_corpus if default_corpus.is_dir() else None))
    if any(path.glob("*.json")):
        return load_multihop(path)
    raise DatasetError(
        f"{path}: not a dataset: expected a .jsonl of questions, a BEIR folder (corpus.jsonl, queries.jsonl, "
        "qrels/*.tsv) or MultiHop-RAG JSON files (articles with 'body', questions with 'evidence_list')"
    )


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg}); fix or remove the line") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object per line")
            yield number, row


def load_jsonl(path: Path, corpus_dir: Path | None = None) -> Dataset:
    """Our format: ``{"id", "query", "relevant": [source or chunk id, ...], "answer"?, "evidence"?}``.

    ``relevant`` entries are document sources (relative ones are resolved against ``corpus_dir``, or
    matched as path suffixes of the knowledge base's sources), or integer chunk ids; one file uses one
    kind. A dict ``{label: grade}`` gives graded relevance. An empty list marks an unanswerable question.
    """
    queries, kinds = [], set()
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        for key in ("query", "relevant"):
            if key not in row:
                raise DatasetError(f"{where}: missing field {key!r}")
        relevant = row["relevant"]
        if isinstance(relevant, list):
            relevant = {str(r): 1.0 for r in relevant}
        elif isinstance(relevant, dict):
            relevant = {str(r): float(g) for r, g in relevant.items()}
        else:
            raise DatasetError(f"{where}: 'relevant' must be a list of sources/chunk ids or a {{id: grade}} object")
        kinds.update("chunk" if r.isdigit() else "doc" for r in relevant)
        evidence = row.get("evidence") or []
        queries.append(Query(
            id=str(row.get("id", number)), query=str(row["query"]), relevant=relevant,
            answer=None if row.get("answer") is None else str(row["answer"]),
            evidence=[evidence] if isinstance(evidence, str) else [str(e) for e in evidence],
            kind=str(row.get("type", "")),
        ))
    if len(kinds) > 1:
        raise DatasetError(f"{path}: 'relevant' mixes chunk ids and document sources; use one kind per file")
    if not queries:
        raise DatasetError(f"{path}: no questions in the file")
    level = kinds.pop() if kinds else "doc"
    return Dataset(path.stem, path, "jsonl", queries, level=level, corpus_dir=corpus_dir)


def load_beir(path: Path) -> Dataset:
    """A BEIR folder: ``corpus.jsonl`` (_id, title, text), ``queries.jsonl`` (_id, text) and qrels.

    The qrels split is ``qrels/test.tsv`` when present, else the only (or first) ``qrels/*.tsv``; its
    header is ``query-id, corpus-id, score``. Only queries with a positive judgement are kept.
    """
    records = [
        CorpusRecord(str(_field(row, "_id", path, n)), str(row.get("title") or ""), str(_field(row, "text", path, n)))
        for n, row in _read_jsonl(path / "corpus.jsonl")
    ]
    rows = {}
    for n, row in _read_jsonl(path / "queries.jsonl"):
        qid = row.get("_id", row.get("id"))
        text = row.get("text", row.get("query"))
        if qid is None or text is None:
            raise DatasetError(f"{path / 'queries.jsonl'}:{n}: a query needs '_id' (or 'id') and 'text' (or 'query')")
        rows[str(qid)] = (str(text), row.get("answer"))
    qrels = _read_qrels(path)
    queries = [
        Query(id=qid, query=rows[qid][0], relevant=gold, **_answer_fields(rows[qid][1]))
        for qid, gold in qrels.items()
        if qid in rows and any(g > 0 for g in gold.values())
    ]
    if not queries:
        raise DatasetError(f"{path}: no query of queries.jsonl has a positive judgement in the qrels")
    return Dataset(path.name, path, "beir", queries, level="doc", records=records)


def _answer_fields(raw: Any) -> dict[str, Any]:
    """``answer`` (and ``answer_parts`` for a list of required parts, each a string or alternatives)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        return {"answer": str(raw)}
    parts = [[str(a) for a in part] if isinstance(part, list) else [str(part)] for part in raw]
    parts = [p for p in parts if p]
    return {"answer": "；".join(p[0] for p in parts), "answer_parts": parts} if parts else {}


def _read_qrels(path: Path) -> dict[str, dict[str, float]]:
    folder = path / "qrels"
    tsvs = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    if (path / "qrels.tsv").is_file():
        tsvs.append(path / "qrels.tsv")
    if not tsvs:
        raise DatasetError(f"{path}: no qrels/*.tsv or qrels.tsv; a BEIR folder needs qrels/test.tsv "
                           "(query-id, corpus-id, score)")
    chosen = folder / "test.tsv" if (folder / "test.tsv").exists() else tsvs[0]
    qrels: dict[str, dict[str, float]] = {}
    with chosen.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise DatasetError(f"{chosen}: the first line must be the header 'query-id<TAB>corpus-id<TAB>score'")
        for number, row in enumerate(reader, start=2):
            if len(row) < 3:
                continue
            try:
                qrels.setdefault(row[0], {})[row[1]] = float(row[2])
            except ValueError as exc:
                raise DatasetError(f"{chosen}:{number}: score {row[2]!r} is not a number") from exc
    return qrels


def _field(row: dict[str, Any], key: str, path: Path, number: int) -> Any:
    if key not in row:
        raise DatasetError(f"{path}:{number}: missing field {key!r}")
    return row[key]


def load_multihop(path: Path) -> Dataset:
    """MultiHop-RAG: a JSON list of articles (title, body, ...) and a JSON list of questions (query,
    answer, question_type, evidence_list of {title, fact, ...}). Evidence is mapped to articles by
    title; ``null_query`` questions (no evidence) are the unanswerable ones."""
    folder = path.parent if path.is_file() else path
    lists = {p: _read_json_list(p) for p in sorted(folder.glob("*.json"))}
    questions_file = path if path.is_file() else next((p for p, rows in lists.items() if _has(rows, "evidence_list")), None)
    corpus_file = next((p for p, rows in lists.items() if _has(rows, "body")), None)
    if questions_file is None or corpus_file is None:
        raise DatasetError(
            f"{folder}: a MultiHop-RAG dataset needs a JSON list of articles (with 'body') and a JSON list of "
            "questions (with 'evidence_list') in the same folder"
        )
    records, seen = [], set()
    for n, article in enumerate(lists[corpus_file], start=1):
        title = str(_field(article, "title", corpus_file, n))
        if title not in seen:
            seen.add(title)
            records.append(CorpusRecord(title, title, str(_field(article, "body", corpus_file, n))))
    queries = []
    for n, row in enumerate(lists[questions_file], start=1):
        evidence = row.get("evidence_list") or []
        titles = [str(e.get("title", "")) for e in evidence if isinstance(e, dict)]
        missing = [t for t in titles if t not in seen]
        if missing:
            raise DatasetError(f"{questions_file}: question {n}: evidence title {missing[0]!r} is not an article of {corpus_file.name}")
        queries.append(Query(
            id=f"q{n}", query=str(_field(row, "query", questions_file, n)),
            relevant={t: 1.0 for t in titles}, answer=None if row.get("answer") is None else str(row["answer"]),
            evidence=[str(e["fact"]) for e in evidence if isinstance(e, dict) and e.get("fact")],
            kind=str(row.get("question_type", "")),
        ))
    return Dataset(folder.name, folder, "multihop", queries, level="doc", records=records)


def _hipporag_questions(path: Path) -> Path | None:
    """The HippoRAG questions file ``path`` is or holds, if it is one (questions with gold titles)."""
    candidates = [path] if path.is_file() else sorted(path.glob("*.json")) if path.is_dir() else []
    for candidate in candidates:
        if candidate.suffix != ".json" or candidate.stem.endswith("_corpus"):
            continue
        rows = _read_json_list(candidate)
        if rows and isinstance(rows[0], dict) and ("supporting_facts" in rows[0] or "paragraphs" in rows[0]):
            return candidate
    return None


def load_hipporag(path: Path) -> Dataset:
    """HippoRAG's question files and corpora (HotpotQA, 2WikiMultihopQA, MuSiQue samples).

    Gold passages are the titles of ``supporting_facts`` (HotpotQA, 2Wiki) or the ``paragraphs``
    marked ``is_supporting`` (MuSiQue); a question's ``context`` is never read. The corpus is
    ``<name>_corpus.json`` beside the questions: a list of ``{title, text}`` or ``{title: [sentences]}``
    (sentences joined as they are: they carry their own spaces).
    """
    corpus_path = path.with_name(f"{path.stem}_corpus.json")
    if not corpus_path.is_file():
        found = sorted(path.parent.glob("*_corpus.json"))
        if len(found) != 1:
            raise DatasetError(f"{path}: no corpus beside it: expected {corpus_path.name} (or one *_corpus.json)")
        corpus_path = found[0]
    try:
        raw = json.loads(corpus_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{corpus_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if isinstance(raw, dict):
        pairs = [(str(t), "".join(v) if isinstance(v, list) else str(v)) for t, v in raw.items()]
    elif isinstance(raw, list):
        pairs = [(str(_field(r, "title", corpus_path, n)), str(_field(r, "text", corpus_path, n)))
                 for n, r in enumerate(raw, start=1)]
    else:
        raise DatasetError(f"{corpus_path}: expected a list of {{title, text}} or an object {{title: [sentences]}}")
    records, seen = [], set()
    for title, text in pairs:
        if title not in seen:
            seen.add(title)
            records.append(CorpusRecord(title, title, text))
    queries = []
    for n, row in enumerate(_read_json_list(path), start=1):
        if "supporting_facts" in row:
            titles = list(dict.fromkeys(str(fact[0]) for fact in row["supporting_facts"]))
        else:
            titles = list(dict.fromkeys(str(p.get("title", "")) for p in row.get("paragraphs") or [] if p.get("is_supporting")))
        missing = [t for t in titles if t not in seen]
        if missing:
            raise DatasetError(f"{path}: question {n}: gold title {missing[0]!r} is not a passage of {corpus_path.name}")
        question = row.get("question", row.get("query"))
        if question is None:
            raise DatasetError(f"{path}: question {n} has no 'question' field")
        queries.append(Query(id=str(row.get("_id", row.get("id", f"q{n}"))), query=str(question),
                             relevant={t: 1.0 for t in titles}, **_answer_fields(row.get("answer")),
                             kind=str(row.get("type", ""))))
    if not queries:
        raise DatasetError(f"{path}: no questions in the file")
    return Dataset(path.stem, path, "hipporag", queries, level="doc", records=records)


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    return data if isinstance(data, list) and all(isinstance(r, dict) for r in data) else []


def _has(rows: list[dict[str, Any]], key: str) -> bool:
    return bool(rows) and key in rows[0]


# ------------------------------------------------------------------------ corpus and knowledge base
def _safe_name(record_id: str) -> str:
    """A file name for a corpus id: readable where possible, unique always."""
    stem = re.sub(r"[^\w.-]+", "_", record_id, flags=re.UNICODE).strip("._")[:60] or "doc"
    if stem == record_id:
        return stem
    return f"{stem}-{hashlib.sha1(record_id.encode('utf-8')).hexdigest()[:8]}"


def corpus_files(dataset: Dataset, folder: Path) -> dict[str, Path]:
    """Corpus id -> the file that holds it under ``folder`` (the mapping ``write_corpus`` uses)."""
    return {r.id: (folder / f"{_safe_name(r.id)}.txt").resolve() for r in dataset.records or []}


def write_corpus(dataset: Dataset, folder: Path) -> dict[str, Path]:
    """Write each record as ``<id>.txt`` (title on the first line) unless already there."""
    folder.mkdir(parents=True, exist_ok=True)
    files = corpus_files(dataset, folder)
    for record in dataset.records or []:
        target = files[record.id]
        if not target.exists():
            body = f"{record.title}\n\n{record.text}\n" if record.title else f"{record.text}\n"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(target)
    return files


def _fingerprint(dataset: Dataset, settings: Settings) -> str:
    """What the cached knowledge base depends on: the corpus files (for records, the dataset files
    holding them), the records kept and the ingest settings. Questions alone changing reuse it."""
    digest = hashlib.sha256()
    root = dataset.corpus_dir if dataset.records is None and dataset.corpus_dir is not None else dataset.path
    sources = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in sources:
        stat = p.stat()
        digest.update(f"{p.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    for record in dataset.records or []:
        digest.update(record.id.encode("utf-8") + b"\0")
    digest.update(f"{settings.embedding_model}|{settings.chunk_tokens}|{settings.chunk_overlap}|{settings.extractor}".encode())
    return digest.hexdigest()[:12]


def cache_slot(dataset: Dataset, cache_dir: Path, settings: Settings) -> Path:
    """The cache folder of ``dataset``'s knowledge base (``kb/``) and written corpus (``docs/``)."""
    return cache_dir / f"{dataset.name}-{_fingerprint(dataset, settings)}"


def corpus_folder(dataset: Dataset, cache_dir: Path, settings: Settings) -> Path:
    """Where the corpus files of ``dataset`` are (its own folder, or the cache's ``docs/``)."""
    if dataset.records is None:
        if dataset.corpus_dir is None:
            raise DatasetError(
                f"{dataset.path}: its corpus is not known: pass --corpus DIR (the folder its relative "
                "sources live in), or --kb DIR to evaluate on an existing knowledge base"
            )
        return dataset.corpus_dir.resolve()
    return (cache_slot(dataset, cache_dir, settings) / "docs").resolve()


def prepare_kb(dataset: Dataset, cache_dir: Path, settings: Settings, embedder: Embedder | None = None,
               progress: bool = True) -> Path:
    """Ingest the dataset's corpus into a knowledge base under ``cache_dir`` once, and reuse it.

    The folder is keyed by dataset, file sizes and mtimes, the records kept and the embedding
    settings; a finished build leaves ``ready.json``, so an interrupted one is resumed (ingest is
    incremental) and a finished one is returned at once. The corpus goes through the product's
    ingest pipeline with the configured triple extractor.
    """
    slot = cache_slot(dataset, cache_dir, settings)
    kb_dir, marker = slot / "kb", slot / "ready.json"
    if marker.exists() and (kb_dir / "manifest.json").exists():
        return kb_dir
    docs = corpus_folder(dataset, cache_dir, settings)
    if dataset.records is not None:
        write_corpus(dataset, docs)
    embedder = embedder or load_embedder(settings.embedding_model or "minilm", settings.embed_batch_size)
    report = ingest_corpus(settings.replace(kb=kb_dir), embedder, [docs], progress)
    if not report.documents:
        raise DatasetError(f"{docs}: nothing could be ingested ({len(report.failed)} files failed)")
    marker.write_text(json.dumps({"dataset": str(dataset.path), "corpus": str(docs), "documents": report.documents,
                                  "failed": len(report.failed), "embedding_model": embedder.name}, indent=2),
                      encoding="utf-8")
    return kb_dir


def ingest_corpus(settings: Settings, embedder: Embedder, paths: list[Path], progress: bool = True) -> IngestReport:
    """The product's ingest of ``paths`` into ``settings.kb``, with the configured triple extractor."""
    from kg.extract import load_extractor  # spaCy and llama-index load in seconds: only when ingesting
    from retrieval.llm import load_llm

    extractor = load_extractor(settings, llm=lambda: load_llm(settings))
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb, \
            tqdm(desc="ingest corpus", unit="file", disable=not progress, leave=False) as bar:
        def tell(done: int, total: int, path: str, outcome: str) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        return ingest(kb, embedder, paths, settings, extractor=extractor, progress=tell)
