"""The incremental ingest: files and folders in, the knowledge base brought up to date.

Files are hashed first: unchanged ones cost nothing, changed ones replace their earlier version,
and with ``prune`` documents whose files left a synced folder are removed. Parsing (the slow,
CPU-bound part) runs in worker processes while this process chunks, embeds in batches across
documents and stores each document in its own transaction, so a kill at any moment loses at most
the documents in flight and the next run finishes the work. One bad file is reported in
``failed`` with a reason and never stops the rest.
"""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ingest.acl import ACL_FILE, Acl, AclError, glob_regex
from ingest.chunk import ChunkPolicy, chunk_elements
from ingest.parse import ParsedFile, ParseError, parse_file
from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.protocols import Extractor
from zhiku.records import PUBLIC, Chunk, Document, Triple
from zhiku.settings import Settings

log = logging.getLogger(__name__)

#: Called after each file: (files done, files in this run, path, outcome).
Progress = Callable[[int, int, str, str], None]
#: Parse in worker processes only when there is enough work to pay for starting them.
_MIN_FILES_FOR_WORKERS = 4


@dataclass
class Failure:
    path: str
    error: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[Failure] = field(default_factory=list)
    documents: int = 0  # in the knowledge base after the run
    chunks: int = 0

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["failed"] = [asdict(f) for f in self.failed]
        return data


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    relative: str  # to the folder it was found in (its name when given directly)
    groups: tuple[str, ...]


@dataclass
class _Pending:
    """A parsed file waiting for its batch to be embedded."""

    source: SourceFile
    content_hash: str
    parsed: ParsedFile
    chunks: list[Chunk]
    replaces: bool


@dataclass(frozen=True)
class Filters:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def accepts(self, relative: str) -> bool:
        """Globs without a slash match the file name; others match the path below the folder."""
        def hit(globs: tuple[str, ...]) -> bool:
            name = relative.rsplit("/", 1)[-1]
            return any(glob_regex(g).match(relative if "/" in g else name) for g in globs)

        return (not self.include or hit(self.include)) and not hit(self.exclude)


def discover(
    paths: Sequence[Path], filters: Filters, fallback: tuple[str, ...]
) -> tuple[list[SourceFile], list[Failure], list[Path]]:
    """Expand files and folders (recursively) into source files with their access groups.

    Returns the files, the paths that could not be used, and the folders walked (for pruning).
    Hidden files and folders, Office lock files (``~$…``) and the ACL file itself are skipped.
    """
    files: dict[Path, SourceFile] = {}
    failures: list[Failure] = []
    roots: list[Path] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if path.is_file():
            acl = _acl_above(path, fallback)
            if isinstance(acl, Failure):
                failures.append(acl)
            elif path.name != ACL_FILE:
                files[path] = SourceFile(path, path.name, acl.groups_for(path.name))
        elif path.is_dir():
            try:
                acl = Acl.load(path, fallback)
            except AclError as exc:
                failures.append(Failure(str(path / ACL_FILE), f"{exc} (nothing in this folder was ingested)"))
                continue
            roots.append(path)
            for file in _walk(path):
                relative = file.relative_to(path).as_posix()
                if filters.accepts(relative):
                    files[file] = SourceFile(file, relative, acl.groups_for(relative))
        else:
            failures.append(Failure(str(given), "no such file or folder"))
    return sorted(files.values(), key=lambda f: str(f.path)), failures, roots


def _acl_above(path: Path, fallback: tuple[str, ...]) -> Acl | Failure:
    """A single file takes its groups from the ACL file of its own folder, if there is one."""
    try:
        return Acl.load(path.parent, fallback)
    except AclError as exc:
        return Failure(str(path), str(exc))


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith((".", "~$")) and name != ACL_FILE:
                yield Path(folder) / name


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_job(path: Path) -> ParsedFile | str:
    """Runs in a worker: the parsed file, or the one-line reason it failed."""
    try:
        return parse_file(path)
    except ParseError as exc:
        return str(exc)
    except Exception as exc:  # a worker must report, not die: the rest of the run goes on
        return f"cannot parse ({type(exc).__name__}: {exc})"


def _parse_all(paths: list[Path], workers: int) -> Iterator[ParsedFile | str]:
    """Parse in worker processes (when worth it), yielding results in input order.

    If the pool breaks (a worker killed by the OS, or a host that cannot start workers), the
    rest is parsed in this process: slower, but the ingest completes.
    """
    if workers < 1 or len(paths) < _MIN_FILES_FOR_WORKERS:
        yield from map(_parse_job, paths)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ingest.parse"])
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            for result in pool.map(_parse_job, paths, chunksize=1):
                yield result
                done += 1
        except BrokenProcessPool as exc:
            log.warning("parser workers failed (%s); parsing the remaining files in this process", exc)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    yield from map(_parse_job, paths[done:])


def default_workers(setting: int) -> int:
    return setting if setting > 0 else max(1, (os.cpu_count() or 2) - 1)


def ingest(
    kb: KnowledgeBase,
    embedder: Embedder,
    paths: Sequence[Path],
    settings: Settings,
    extractor: Extractor | None = None,
    groups: Sequence[str] | None = None,
    filters: Filters = Filters(),
    prune: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring ``kb`` up to date with ``paths``; see the module docstring for the guarantees."""
    report = IngestReport()
    kb.vector_index()  # load it now so each commit updates it in memory, not a rebuild at the end
    fallback = tuple(groups) if groups else (PUBLIC,)
    files, failures, roots = discover(paths, filters, fallback)
    report.failed.extend(failures)
    stored = kb.content_hashes()
    seen = {str(f.path) for f in files}

    todo: list[tuple[SourceFile, str]] = []
    for source in files:
        try:
            digest = file_hash(source.path)
        except OSError as exc:
            report.failed.append(Failure(str(source.path), f"cannot read the file: {exc.strerror or exc}"))
            continue
        if stored.get(str(source.path)) == digest:
            report.unchanged += 1
            kb.set_groups(str(source.path), source.groups)
        else:
            todo.append((source, digest))

    done = report.unchanged
    total = len(files)
    batch: list[_Pending] = []
    batch_chunks = 0
    try:
        results = _parse_all([s.path for s, _ in todo], default_workers(settings.workers))
        for (source, digest), result in zip(todo, results):
            pending = _prepare(source, digest, result, embedder, settings, str(source.path) in stored)
            if isinstance(pending, Failure):
                report.failed.append(pending)
                done += 1
                _tell(progress, done, total, pending.path, "failed")
                continue
            batch.append(pending)
            batch_chunks += len(pending.chunks)
            if batch_chunks >= settings.embed_batch_size * 16:  # across documents: less padding per batch
                done = _store(kb, embedder, extractor, batch, report, progress, done, total)
                batch, batch_chunks = [], 0
        _store(kb, embedder, extractor, batch, report, progress, done, total)
        return _finish(kb, report, roots, seen, filters, prune)
    finally:
        kb.save_vectors()


def _finish(
    kb: KnowledgeBase, report: IngestReport, roots: list[Path], seen: set[str],
    filters: Filters, prune: bool,
) -> IngestReport:
    if prune:
        report.removed = _prune(kb, roots, seen, filters)
    stats = kb.stats()
    report.documents, report.chunks = stats["documents"], stats["chunks"]
    return report


def _prepare(
    source: SourceFile, digest: str, result: ParsedFile | str, embedder: Embedder, settings: Settings, replaces: bool
) -> _Pending | Failure:
    """Chunk a parsed file. The embedder's tokenizer is touched only here, so runs where nothing
    parses (an unchanged corpus, bad files only) never load the model."""
    if isinstance(result, str):
        return Failure(str(source.path), result)
    policy = ChunkPolicy(
        budget=min(settings.chunk_tokens, embedder.max_tokens),
        overlap=max(0, min(settings.chunk_overlap, settings.chunk_tokens // 4)),
        max_tokens=embedder.max_tokens,
    )
    chunks = chunk_elements(result.elements, embedder.count_tokens, policy)
    if not chunks:
        return Failure(str(source.path), "no text to index besides headings")
    return _Pending(source, digest, result, chunks, replaces)


def _store(
    kb: KnowledgeBase,
    embedder: Embedder,
    extractor: Extractor | None,
    batch: list[_Pending],
    report: IngestReport,
    progress: Progress | None,
    done: int,
    total: int,
) -> int:
    """Embed a batch of documents together, then store each in its own transaction.

    Triple extraction runs in a second thread while the batch is embedded: the embedding runtime
    releases the GIL, so the two overlap instead of adding up.
    """
    if not batch:
        return done
    with ThreadPoolExecutor(max_workers=1) as helper:
        extracted = helper.submit(lambda: [_extract(extractor, p) for p in batch])
        vectors = embedder.embed([c.text for p in batch for c in p.chunks])
        triples_per_doc = extracted.result()
    offset = 0
    for pending, triples in zip(batch, triples_per_doc):
        n = len(pending.chunks)
        doc_vectors, offset = vectors[offset:offset + n], offset + n
        stat = pending.source.path.stat()
        parsed = pending.parsed
        document = Document(
            source=str(pending.source.path), content_hash=pending.content_hash, title=parsed.title,
            kind=parsed.kind, size=stat.st_size, mtime=stat.st_mtime, pages=parsed.pages,
            language=parsed.language, groups=pending.source.groups,
            metadata={"relative_path": pending.source.relative, **parsed.metadata},
        )
        kb.put_document(document, pending.chunks, np.asarray(doc_vectors), triples)
        if pending.replaces:
            report.updated += 1
        else:
            report.added += 1
        done += 1
        _tell(progress, done, total, document.source, "updated" if pending.replaces else "added")
    return done


def _extract(extractor: Extractor | None, pending: _Pending) -> list[list[Triple]]:
    """Triples per chunk; an extractor failure costs this document its triples, never the ingest."""
    if extractor is None:
        return []
    try:
        return extractor.extract(pending.chunks, pending.parsed.language)
    except Exception as exc:
        log.warning("%s: triple extraction failed (%s); stored without triples", pending.source.path, exc)
        return []


def _prune(kb: KnowledgeBase, roots: Iterable[Path], seen: set[str], filters: Filters) -> int:
    """Remove documents under a walked folder whose files are gone (within the same filters)."""
    removed = 0
    for source in list(kb.content_hashes()):
        for root in roots:
            prefix = str(root) + os.sep
            if source.startswith(prefix) and source not in seen:
                if filters.accepts(Path(source).relative_to(root).as_posix()):
                    removed += kb.remove_document(source)
                break
    return removed


def _tell(progress: Progress | None, done: int, total: int, path: str, outcome: str) -> None:
    if progress is not None:
        progress(done, total, path, outcome)
