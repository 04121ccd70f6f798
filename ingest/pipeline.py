"""The incremental ingest: files and folders in, the knowledge base brought up to date.

Files are hashed first: unchanged ones cost nothing, changed ones replace their earlier version,
and with ``prune`` documents whose files left a synced folder are removed. Parsing (the part
that runs third-party code on untrusted bytes) runs in worker processes under a timeout and a
memory cap (``ingest.workers``), and each worker goes on to mask, chunk and extract triples from
what it parsed (``Preparation``), while this process embeds in batches across documents and stores
each document in its own transaction: the CPU-bound stages run side by side, the slowest setting
the pace (``IngestReport.seconds`` says which), and a kill at any moment loses at most the
documents in flight and the next run finishes the work. One bad file is reported in ``failed``
with a reason and never stops the rest.

The run is made of steps that ``ingest.distributed`` (the same ingest on a Ray cluster) shares:
``ingest_run`` plans it (walk, ACL groups, what changed) and finishes it, ``parser_pool`` starts
the workers, ``prepare`` turns a worker's result into a file to embed or a failure,
``embed_and_extract`` embeds a batch (extracting the triples of an extractor that cannot run in a
worker; no knowledge base needed: it runs wherever the models are), and ``IngestRun.fail`` /
``IngestRun.commit`` record failures and store documents in the one writing process.

With ``pii = "mask-ingest"`` each parsed file's text (elements, headings, title, metadata) is
masked (``zhiku.pii``) before it is chunked, so chunks, embeddings, BM25 and the triples are built
from masked text only, and triples about a placeholder are dropped; files under the knowledge
base's ``uploads/`` (what the UI or the service saved from an upload) are deleted once the run is
over, stored or not, so the original is not kept either.

A file's groups depend only on where it lies (``ingest.acl``), so ingesting a folder, a subfolder
or one file gives the same groups. The walk follows no symbolic link unless asked, and then only
to targets inside the ingested paths (listed in ``skipped`` otherwise); it never enters a
knowledge-base folder, version-control or cache folders, and skips temporary files.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ingest.acl import ACL_FILE, AclRefusal, AclResolver, glob_regex, narrowest
from ingest.chunk import ChunkPolicy, chunk_elements
from ingest.parse import ParsedFile
from ingest.workers import ParseLimits, ParserPool
from zhiku.hashing import file_hash
from zhiku.kb import MANIFEST, UPLOADS, KnowledgeBase
from zhiku.models import Embedder
from zhiku.pii import PLACEHOLDER, PiiMasker
from zhiku.protocols import Extractor, TokenCounter
from zhiku.records import PUBLIC, Chunk, Document, Triple
from zhiku.settings import Settings

log = logging.getLogger(__name__)

#: Called after each file: (files done, files in this run, path, outcome).
Progress = Callable[[int, int, str, str], None]
#: Folders the walk never enters, also when named inside an ingested path.
NEVER_ENTERED = frozenset({".git", ".hg", ".svn", "__pycache__"})
Stage = Literal["discover", "read", "parse", "chunk"]


@dataclass
class Failure:
    """A file (or ACL file) that could not be ingested; ``error`` says what to do about it."""

    path: str
    error: str
    stage: Stage = "parse"


@dataclass
class Skipped:
    """Something deliberately left out (a symbolic link, a knowledge-base folder), with why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Regrouped:
    """A stored document whose access groups this run changed (an ACL edit): for the audit log."""

    source: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    documents: int = 0  # in the knowledge base after the run
    chunks: int = 0
    regrouped: list[Regrouped] = field(default_factory=list)
    #: Seconds spent per stage, summed over files (``parse``, ``mask``, ``chunk``, ``extract`` in the
    #: parser workers, which run side by side; ``embed`` and ``store`` in this process).
    seconds: dict[str, float] = field(default_factory=dict)

    def spent(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def to_json(self) -> dict[str, object]:
        """The ``zhiku ingest --json`` contract (group changes go to the audit log, not into it)."""
        return {k: v for k, v in asdict(self).items() if k != "regrouped"}


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute, no symbolic link in it
    relative: str  # to the folder it was found in (its name when given directly)
    groups: tuple[str, ...]


@dataclass
class Discovery:
    """What the walk found: files with their groups, what failed or was left out, folders walked."""

    files: list[SourceFile] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    #: Files refused by a broken ACL file: still there, so never pruned.
    refused: list[Path] = field(default_factory=list)


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
    paths: Sequence[Path], filters: Filters = Filters(), fallback: tuple[str, ...] = (PUBLIC,),
    follow_symlinks: bool = False,
) -> Discovery:
    """Expand files and folders (recursively) into source files with their access groups.

    Hidden files and folders, Office lock files (``~$…``), temporary files (``*.tmp``) and ACL
    files are skipped silently, as are the folders in ``NEVER_ENTERED``; knowledge-base folders
    and symbolic links are listed in ``skipped`` with the reason.
    """
    return _Walk(paths, filters, AclResolver(fallback), follow_symlinks).run()


def is_knowledge_base(folder: Path) -> bool:
    """True when ``folder`` holds a Zhiku manifest (not just any ``manifest.json``)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "schema_version" in data and "embedding_model" in data


def _ignored_name(name: str) -> bool:
    return name.startswith((".", "~$")) or name.endswith(".tmp") or name == ACL_FILE


class _Walk:
    """One discovery: the given paths, the ACL files read so far, and what was found."""

    def __init__(self, paths: Sequence[Path], filters: Filters, acl: AclResolver, follow: bool) -> None:
        self.paths = [Path(p) for p in paths]
        self.given = [_absolute(p) for p in self.paths]
        self.filters, self.acl, self.follow = filters, acl, follow
        # where a followed link may lead: the given paths themselves, with their links resolved
        self.inside = [Path(os.path.realpath(p)) for p in self.given if os.path.lexists(p)]
        self.found = Discovery()
        self._files: dict[Path, SourceFile] = {}
        self._refusals: dict[Path, tuple[str, int]] = {}

    def run(self) -> Discovery:
        for original, path in zip(self.paths, self.given):
            if not os.path.lexists(path):
                self.found.failed.append(Failure(str(original), "no such file or folder", "discover"))
            elif (reason := _left_out(path, Path(path.anchor), walked=False)) is not None:
                self._skip(path, reason)
            elif path.is_symlink():
                self._link(path)
            elif path.is_dir():
                self.found.roots.append(path)
                self._walk(path)
            elif path.is_file() and path.name == ACL_FILE:
                self._skip(path, "an ACL file (it sets groups; it is never a document)")
            elif path.is_file() and path.name.endswith(".tmp"):
                self._skip(path, "a temporary file (*.tmp)")
            elif path.is_file():  # hidden ones too: named, they are wanted
                self._add(path, path.name)
            else:
                self.found.failed.append(Failure(str(path), "not a regular file or folder", "discover"))
        for acl_file, (reason, count) in self._refusals.items():
            self.found.failed.append(Failure(
                str(acl_file), f"{reason} ({count} file(s) below it not ingested until it is fixed)", "discover"))
        self.found.files = sorted(self._files.values(), key=lambda f: str(f.path))
        return self.found

    def _walk(self, root: Path) -> None:
        def unreadable(exc: OSError) -> None:
            self.found.failed.append(Failure(str(exc.filename), f"cannot read the folder: {exc.strerror or exc}", "discover"))

        for folder, dirs, names in os.walk(root, onerror=unreadable):
            here = Path(folder)
            kept = []
            for name in sorted(dirs):
                sub = here / name
                if sub.is_symlink():
                    self._link(sub)
                elif name.startswith(".") or name in NEVER_ENTERED:
                    continue
                elif is_knowledge_base(sub):
                    self._skip(sub, "a Zhiku knowledge base folder (never ingested)")
                else:
                    kept.append(name)
            dirs[:] = kept
            for name in sorted(names):
                file = here / name
                relative = file.relative_to(root).as_posix()
                if _ignored_name(name) or not self.filters.accepts(relative):
                    continue
                if file.is_symlink():
                    self._link(file)
                else:
                    self._add(file, relative)

    def _link(self, link: Path) -> None:
        """A symbolic link: skipped, unless followed to a target inside the ingested paths.

        A followed link stands for its target, found where it lies: the target's own location
        decides its groups and its identity, and a folder target is walked there (not here).
        """
        if not self.follow:
            self._skip(link, "a symbolic link (not followed; --follow-symlinks follows links that stay "
                             "inside the ingested folders)")
            return
        target = Path(os.path.realpath(link))
        root = next((r for r in self.inside if target == r or r in target.parents), None)
        if not target.exists():
            self._skip(link, f"a broken symbolic link (to {os.readlink(link)})")
        elif root is None:
            self._skip(link, f"a symbolic link to {target}, outside the ingested folders")
        elif (reason := _left_out(target, root, walked=True)) is not None:
            self._skip(link, f"a symbolic link to {target}, which is left out ({reason})")
        elif target.is_file() and not _ignored_name(target.name):
            self._add(target, target.relative_to(root).as_posix() if target != root else target.name)

    def _add(self, path: Path, relative: str) -> None:
        groups = self.acl.groups_for(path)
        if isinstance(groups, AclRefusal):
            reason, count = self._refusals.get(groups.acl_file, (groups.reason, 0))
            self._refusals[groups.acl_file] = (reason, count + 1)
            self.found.refused.append(path)
        else:
            self._files.setdefault(path, SourceFile(path, relative, groups))

    def _skip(self, path: Path, reason: str) -> None:
        self.found.skipped.append(Skipped(str(path), reason))


def _absolute(path: Path) -> Path:
    """``path`` made absolute with the links above it resolved, but not its own last part (a given
    symbolic link stays one, to be treated as a link)."""
    path = path.expanduser().absolute()
    return path.parent.resolve() / path.name if path.name not in ("", "..") else path.resolve()


def _left_out(path: Path, top: Path, walked: bool) -> str | None:
    """Why ``path`` is left out, looking at it and its folders below ``top`` (None: it is not).

    ``walked``: judge it as the walk would reach it (hidden parts and knowledge bases at any depth
    are left out). A path named by the caller may be hidden or lie deeper inside a knowledge base
    (the UI keeps uploads in ``<kb>/uploads``), but never be a knowledge base or one of its files.
    """
    chain = [path, *path.parents]
    chain = chain[:chain.index(top)] if top in chain else chain
    for folder in chain:
        if folder.name in NEVER_ENTERED:
            return f"inside the version-control or cache folder {folder}"
        if walked and folder.name.startswith("."):
            return f"hidden: {folder}"
    own = chain if walked else [path] if path.is_dir() else [path.parent]
    for folder in own:
        if is_knowledge_base(folder):
            return f"inside the Zhiku knowledge base {folder} (never ingested)"
    return None


def unreadable_file(path: Path, exc: OSError) -> Failure:
    """The failure of a file that could not be read (hashed, or its bytes shipped to a worker)."""
    return Failure(str(path), f"cannot read the file: {exc.strerror or exc}", "read")


def default_workers(setting: int, cpus: int | None = None) -> int:
    """Parser processes: the ``workers`` setting, else one fewer than the CPUs (of this machine,
    or ``cpus``: a cluster node's), leaving one to the process that embeds."""
    return setting if setting > 0 else max(1, (cpus or os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class Job:
    """A new or changed file to parse, chunk, embed and store (``replaces``: an earlier version is stored)."""

    source: SourceFile
    content_hash: str
    stat: os.stat_result
    replaces: bool


@dataclass
class Chunked:
    """A parsed file as a parser worker sends it back (``Preparation``): masked when asked, cut
    into chunks (none: nothing to index) and, with a portable extractor, each chunk's triples."""

    parsed: ParsedFile
    chunks: list[Chunk]
    triples: list[list[Triple]] | None = None  # None: extraction left to the embedding process
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, in the worker


@dataclass
class Prepared:
    """A parsed and chunked file waiting for its batch to be embedded (``triples`` as in ``Chunked``)."""

    job: Job
    parsed: ParsedFile
    chunks: list[Chunk]
    triples: list[list[Triple]] | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, in the worker


class Preparation:
    """What a parser worker does with a file it parsed: mask personal data (``pii = "mask-ingest"``),
    chunk under ``policy`` with the embedder's tokenizer and extract triples when the extractor is
    portable (``Extractor.portable``).

    It is sent to each worker once (picklable: the token counter, a flag and a factory) and loads
    the tokenizer, the masker and the extractor there on first use. Extraction is the slowest step
    after embedding; here it runs beside the parsing instead of in the process that embeds, and
    unmasked text never leaves the worker.
    """

    def __init__(self, count_tokens: TokenCounter, policy: ChunkPolicy, mask: bool,
                 extractor: Callable[[], Extractor] | None) -> None:
        self.count_tokens, self.policy, self.mask, self.make_extractor = count_tokens, policy, mask, extractor
        self._masker: PiiMasker | None = None
        self._extractor: Extractor | None = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_masker": None, "_extractor": None}  # loaded where it runs

    def __call__(self, parsed: ParsedFile, parse_seconds: float) -> Chunked:
        seconds = {"parse": parse_seconds}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            seconds[stage], clock = time.perf_counter() - clock, time.perf_counter()

        if self.mask:
            self._masker = self._masker or PiiMasker()
            parsed = masked_file(parsed, self._masker)
            lap("mask")
        chunks = chunk_elements(parsed.elements, self.count_tokens, self.policy)
        lap("chunk")
        if self.make_extractor is None or not chunks:
            return Chunked(parsed, chunks, seconds=seconds)
        self._extractor = self._extractor or self.make_extractor()
        triples = extract_triples(self._extractor, chunks, parsed.language, self.mask, parsed.path)
        lap("extract")
        return Chunked(parsed, chunks, triples, seconds)


@dataclass
class Embedded:
    """A file ready to commit: its chunks' vectors and each chunk's triples (aligned with ``chunks``)."""

    prepared: Prepared
    vectors: np.ndarray
    triples: list[list[Triple]]
    seconds: dict[str, float] = field(default_factory=dict)  # per stage: the worker's, and embedding


@dataclass
class IngestRun:
    """One ingest's plan and report, and the steps that touch the knowledge base (one writer).

    Local ingest (``ingest``) and the distributed one (``ingest.distributed``) differ only in where
    files are parsed, chunked and embedded; both record failures and commit through this object,
    so the report, the progress and the crash-safety (one transaction per document) are the same.
    """

    kb: KnowledgeBase
    report: IngestReport
    found: Discovery
    #: Sources the walk saw (also those an ACL refused): what ``prune`` must keep.
    seen: set[str]
    todo: list[Job]
    progress: Progress | None
    done: int = 0

    def tell(self, path: str, outcome: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(self.found.files), path, outcome)

    def fail(self, failure: Failure, job: Job) -> None:
        """Record a file that could not be ingested; a stored earlier version stays, its groups narrowed."""
        self.report.failed.append(failure)
        self.tell(failure.path, "failed")
        if job.replaces:
            _narrow_stored(self.kb, self.report, job.source)

    def commit(self, batch: Sequence[Embedded]) -> None:
        """Store each file of the batch in its own transaction (a kill loses at most the one in flight)."""
        started = time.perf_counter()
        for item in batch:
            job, parsed = item.prepared.job, item.prepared.parsed
            document = Document(
                source=str(job.source.path), content_hash=job.content_hash, title=parsed.title,
                kind=parsed.kind, size=job.stat.st_size, mtime=job.stat.st_mtime, pages=parsed.pages,
                language=parsed.language, groups=job.source.groups,
                metadata={"relative_path": job.source.relative, **parsed.metadata},
            )
            previous = self.kb.get_document(document.source) if job.replaces else None
            self.kb.put_document(document, item.prepared.chunks, np.asarray(item.vectors), item.triples)
            if previous is not None and previous.groups != document.groups:
                self.report.regrouped.append(Regrouped(document.source, previous.groups, document.groups))
            if job.replaces:
                self.report.updated += 1
            else:
                self.report.added += 1
            for stage, seconds in item.seconds.items():
                self.report.spent(stage, seconds)
            self.tell(document.source, "updated" if job.replaces else "added")
        if batch:
            self.report.spent("store", time.perf_counter() - started)


@contextmanager
def ingest_run(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    settings: Settings,
    groups: Sequence[str] | None = None,
    filters: Filters = Filters(),
    prune: bool = False,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
) -> Iterator[IngestRun]:
    """Plan an ingest, let the caller work through ``run.todo``, then finish it.

    The plan: walk ``paths`` (groups from the ACL files, else ``groups``, else public), hash every
    file, count unchanged ones (updating their groups when the ACL changed) and list the rest in
    ``todo``. Once the caller is done: remove what is now skipped, prune (with ``prune``) and count.
    However the block ends, the vector index is saved and, when masking personal data, this run's
    uploads are deleted.
    """
    report = IngestReport()
    if not kb.vectors_in_sql:
        kb.vector_index()  # load it now so each commit updates it in memory, not a rebuild at the end
    found = discover(paths, filters, tuple(groups) if groups else (PUBLIC,), follow_symlinks)
    report.failed.extend(found.failed)
    report.skipped.extend(found.skipped)
    try:
        stored = kb.content_hashes()
        todo: list[Job] = []
        for source in found.files:
            try:
                stat = source.path.stat()
                digest = file_hash(source.path)
            except OSError as exc:
                report.failed.append(unreadable_file(source.path, exc))
                continue
            if stored.get(str(source.path)) == digest:
                report.unchanged += 1
                if (before := kb.set_groups(str(source.path), source.groups)) is not None:
                    report.regrouped.append(Regrouped(str(source.path), before, source.groups))
            else:
                todo.append(Job(source, digest, stat, str(source.path) in stored))
        seen = {str(f.path) for f in found.files} | {str(p) for p in found.refused}
        run = IngestRun(kb, report, found, seen, todo, progress, done=report.unchanged)
        yield run
        _finish(kb, report, found, seen, filters, prune)
    finally:
        kb.save_vectors()
        if settings.pii == "mask-ingest":
            _discard_uploads(kb, found.files)


def chunk_policy(settings: Settings, embedder: Embedder) -> ChunkPolicy:
    """The chunk sizes for this embedder: the setting, capped by what the model reads."""
    return ChunkPolicy(
        budget=min(settings.chunk_tokens, embedder.max_tokens),
        overlap=max(0, min(settings.chunk_overlap, settings.chunk_tokens // 4)),
        max_tokens=embedder.max_tokens,
    )


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
    follow_symlinks: bool = False,
) -> IngestReport:
    """Bring ``kb`` up to date with ``paths``; see the module docstring for the guarantees.

    ``groups`` apply to files no ACL rule matches (default: public). Files are parsed, masked,
    chunked and (by a portable extractor) mined for triples in the parser workers
    (``Preparation``); this process embeds and stores.
    """
    with ingest_run(kb, paths, settings, groups, filters, prune, progress, follow_symlinks) as run:
        if run.todo:
            masked = settings.pii == "mask-ingest"
            batch: list[Prepared] = []
            batch_chunks = 0
            # One batch embeds in a thread (the runtime releases the GIL) while this thread takes the
            # workers' next files, so the workers never wait for the embedding to finish.
            with parser_pool(settings, embedder, extractor, min(default_workers(settings.workers), len(run.todo))) as pool, \
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhiku-embed") as embedding:
                pending: Future[list[Embedded]] | None = None
                for job, result in zip(run.todo, pool.parse([j.source.path for j in run.todo])):
                    prepared = prepare(job, result)
                    if isinstance(prepared, Failure):
                        run.fail(prepared, job)
                        continue
                    batch.append(prepared)
                    batch_chunks += len(prepared.chunks)
                    if batch_chunks >= settings.embed_batch_size * 16:  # across documents: less padding
                        if pending is not None:
                            run.commit(pending.result())
                        pending = embedding.submit(embed_and_extract, batch, embedder, extractor, masked)
                        batch, batch_chunks = [], 0
                if pending is not None:
                    run.commit(pending.result())
            run.commit(embed_and_extract(batch, embedder, extractor, masked))
    return run.report


def parser_pool(settings: Settings, embedder: Embedder, extractor: Extractor | None, size: int) -> ParserPool:
    """``size`` parser workers under the settings' limits, each preparing what it parsed (``Preparation``)."""
    preparation = Preparation(embedder.token_counter(), chunk_policy(settings, embedder),
                              settings.pii == "mask-ingest", extractor.portable() if extractor else None)
    return ParserPool(size, ParseLimits(settings.parse_timeout_s, settings.parse_memory_mb), settings.ocr, preparation)


def _narrow_stored(kb: KnowledgeBase, report: IngestReport, source: SourceFile) -> None:
    """A changed file that failed keeps its stored version, under the groups both its old and its
    new ACL allow (`ingest.acl.narrowest`), so an ACL tightened in the same edit holds at once."""
    stored = kb.get_document(str(source.path))
    if stored is None:
        return
    groups = narrowest(stored.groups, source.groups)
    if (before := kb.set_groups(str(source.path), groups)) is not None:
        report.regrouped.append(Regrouped(str(source.path), before, groups))


def _finish(
    kb: KnowledgeBase, report: IngestReport, found: Discovery, seen: set[str], filters: Filters, prune: bool,
) -> None:
    report.removed = _remove_skipped(kb, found.skipped)
    if prune:
        report.removed += _prune(kb, found.roots, seen, filters, [Path(s.path) for s in found.skipped])
    stats = kb.stats()
    report.documents, report.chunks = stats["documents"], stats["chunks"]


def prepare(job: Job, result: object) -> Prepared | Failure:
    """A parser worker's result for ``job`` (``Chunked``, or the reason the file failed) as the
    file to embed or its failure."""
    if not isinstance(result, Chunked):
        return Failure(str(job.source.path), str(result), "parse")
    if not result.chunks:
        return Failure(str(job.source.path), "no text to index besides headings", "chunk")
    return Prepared(job, result.parsed, result.chunks, result.triples, result.seconds)


def masked_file(parsed: ParsedFile, masker: PiiMasker) -> ParsedFile:
    """``parsed`` with personal data masked in its elements' text and headings, title and metadata.

    Elements are masked in one batch (spaCy runs them through its pipe); a heading path repeats
    the same few titles, so each distinct one is masked once.
    """
    texts = masker.mask_many([e.text for e in parsed.elements])
    headings = sorted({h for e in parsed.elements for h in e.heading_path})
    heading = dict(zip(headings, masker.mask_many(headings)))
    elements = [dataclasses.replace(e, text=text, heading_path=tuple(heading[h] for h in e.heading_path))
                for e, text in zip(parsed.elements, texts)]
    return dataclasses.replace(parsed, elements=elements, title=masker.mask(parsed.title),
                               metadata=masker.mask_metadata(parsed.metadata))


def _discard_uploads(kb: KnowledgeBase, files: Sequence[SourceFile]) -> None:
    """Delete this run's files that lie in the knowledge base's ``uploads/`` (and their emptied folders)."""
    uploads = kb.root.resolve() / UPLOADS
    for source in files:
        if uploads not in source.path.parents:
            continue
        try:
            source.path.unlink(missing_ok=True)
            if source.path.parent != uploads and not any(source.path.parent.iterdir()):
                source.path.parent.rmdir()
        except OSError as exc:
            log.warning("%s: could not delete the uploaded original (%s); delete it by hand", source.path, exc)


def embed_and_extract(
    batch: Sequence[Prepared], embedder: Embedder, extractor: Extractor | None, masked: bool = False,
) -> list[Embedded]:
    """Embed a batch of files together (across documents: less padding), with their triples.

    Triples a parser worker extracted come with the files; the rest (an extractor that must run
    here: an LLM client) are extracted in a second thread while the batch is embedded: the
    embedding runtime releases the GIL, so the two overlap. Nothing here touches the knowledge base.
    """
    if not batch:
        return []
    def triples(p: Prepared) -> list[list[Triple]]:
        if p.triples is not None:
            return p.triples
        return extract_triples(extractor, p.chunks, p.parsed.language, masked, p.job.source.path) if extractor else []

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as helper:
        extracted = helper.submit(lambda: [triples(p) for p in batch])
        vectors = embedder.embed([c.text for p in batch for c in p.chunks])
        embedding = time.perf_counter() - started
        triples_per_doc = extracted.result()
    extracting = time.perf_counter() - started  # only where extraction ran here, beside the embedding
    total = sum(len(p.chunks) for p in batch)
    out, offset = [], 0
    for prepared, triples in zip(batch, triples_per_doc):
        n = len(prepared.chunks)
        seconds = {**prepared.seconds, "embed": embedding * n / total}  # the batch's time, by chunks
        if prepared.triples is None and extractor is not None:
            seconds["extract"] = extracting * n / total
        out.append(Embedded(prepared, np.asarray(vectors[offset:offset + n]), triples, seconds))
        offset += n
    return out


def extract_triples(
    extractor: Extractor, chunks: Sequence[Chunk], language: str, masked: bool, source: object = "a file",
) -> list[list[Triple]]:
    """Triples per chunk; an extractor failure costs this document its triples, never the ingest.

    From ``masked`` text, a triple naming a placeholder is dropped: "[PERSON]" is nobody in
    particular, and as one graph node it would join every document that masks a name.
    """
    try:
        triples = extractor.extract(chunks, language)
    except Exception as exc:
        log.warning("%s: triple extraction failed (%s); stored without triples", source, exc)
        return []
    if not masked:
        return triples
    return [[t for t in chunk if not PLACEHOLDER.search(t.subject) and not PLACEHOLDER.search(t.object)]
            for chunk in triples]


def _remove_skipped(kb: KnowledgeBase, skipped: list[Skipped]) -> int:
    """Remove documents stored from what is now skipped: a link (or a file below a linked folder),
    or a knowledge base's own files (``manifest.json``; not its ``uploads/``).

    Earlier versions followed links and walked into knowledge bases; a link into a restricted
    folder was stored with the link's (public) groups, so such documents go even without prune.
    """
    if not skipped:
        return 0
    gone = {s.path for s in skipped}
    below = tuple(p + os.sep for p in gone if os.path.islink(p))
    return sum(kb.remove_document(source) for source in list(kb.content_hashes())
               if source in gone or source.startswith(below) or os.path.dirname(source) in gone)


def _prune(
    kb: KnowledgeBase, roots: Iterable[Path], seen: set[str], filters: Filters, not_walked: Iterable[Path],
) -> int:
    """Remove documents under a walked folder whose files are gone (within the same filters).

    What the walk skipped (a knowledge base holding UI uploads, say) it cannot judge: kept.
    """
    removed = 0
    skipped = tuple(str(p) + os.sep for p in not_walked)
    for source in list(kb.content_hashes()):
        if source.startswith(skipped):
            continue
        for root in roots:
            prefix = str(root) + os.sep
            if source.startswith(prefix) and source not in seen:
                if filters.accepts(Path(source).relative_to(root).as_posix()):
                    removed += kb.remove_document(source)
                break
    return removed
