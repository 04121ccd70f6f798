"""``zhiku ingest`` (bring the knowledge base up to date with files) and ``zhiku reindex``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from zhiku.cli.common import FAILED, OK, UsageError, add_common, emit, open_existing, settings_from
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.protocols import Extractor
from zhiku.settings import Settings

if TYPE_CHECKING:  # the ingest stage loads when the command runs, not on every `zhiku`
    from ingest.pipeline import IngestReport


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="add, update or (with --prune) remove documents from files and folders",
        description="Ingest files and folders (recursively). Unchanged files are skipped by content "
        "hash, changed files replaced, and with --prune files gone from a folder are removed. "
        "Access groups come from every zhiku-acl.toml above a file (inner ones refine outer ones), "
        "else --groups, else public. Symbolic links are skipped unless --follow-symlinks.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="only files matching GLOB (name glob, or path glob with '/'); repeatable")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching GLOB; repeatable")
    parser.add_argument("--prune", action="store_true", help="remove documents whose files left the given folders")
    parser.add_argument("--groups", metavar="G1,G2", help="access groups for files no zhiku-acl.toml rule matches")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="follow symbolic links whose target lies inside the given paths (others are skipped)")
    parser.add_argument("--workers", type=int, metavar="N", help="parser processes (default: cores - 1)")
    parser.add_argument("--no-graph", action="store_true", help="skip triple extraction for the knowledge graph")
    parser.add_argument("--no-wait", action="store_true",
                        help="fail at once if another ingest is running on the knowledge base (default: wait for it)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="parse, extract and embed on a Ray cluster: ADDRESS is its head's host:port "
                        "(`ray start --head`); without it, a local Ray (started if none runs). This process "
                        "reads the files and writes the knowledge base; --workers counts parsers per node")
    add_common(parser)
    parser.set_defaults(func=run_ingest)

    reindex = subparsers.add_parser(
        "reindex",
        help="rebuild the vector index from SQLite, or re-embed with another model",
        description="Rebuild vectors.faiss from the vectors stored in SQLite. With --embedding-model "
        "naming another model, re-embed every chunk with it and switch the knowledge base to it.",
    )
    add_common(reindex)
    reindex.set_defaults(func=run_reindex)


def _extractor(settings: Settings) -> Extractor | None:
    """The configured triple extractor; the ``llm`` one gets the configured LLM."""
    from kg.extract import load_extractor
    from retrieval.llm import load_llm

    return load_extractor(settings, llm=lambda: load_llm(settings))


def run_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import Filters, ingest

    overrides = {"workers": args.workers}
    if args.no_graph:
        overrides["extractor"] = "none"
    settings = settings_from(args, **overrides)
    if not any(p.exists() for p in args.paths):
        raise UsageError(f"none of the paths exist: {', '.join(map(str, args.paths))}")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    if args.groups is not None and not groups:
        raise UsageError("--groups needs at least one group name, e.g. --groups hr,finance")
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    exists = KnowledgeBase.exists(settings.kb, settings.store)
    with KnowledgeBase.open(settings.kb, embedder.name, None if exists else embedder.dimension,
                           ann_threshold=settings.ann_threshold, store=settings.store) as kb, \
            kb.writer(wait=not args.no_wait):
        with tqdm(desc="ingest", unit="file", disable=args.json, dynamic_ncols=True) as bar:
            def progress(done: int, total: int, path: str, outcome: str) -> None:
                bar.total = total
                bar.n = done
                bar.set_postfix_str(f"{outcome}: {Path(path).name}"[-60:])

            filters = Filters(tuple(args.include), tuple(args.exclude))
            if args.ray is None:
                report = ingest(
                    kb, embedder, args.paths, settings, extractor=_extractor(settings), groups=groups,
                    filters=filters, prune=args.prune, progress=progress, follow_symlinks=args.follow_symlinks,
                )
            else:  # Ray is imported only here
                from ingest.distributed import ingest_on_ray

                report = ingest_on_ray(
                    kb, args.paths, settings, address=args.ray or None, make_extractor=_extractor, groups=groups,
                    filters=filters, prune=args.prune, progress=progress, follow_symlinks=args.follow_symlinks,
                )
        if settings.extractor != "none" and (report.added or report.updated or report.removed):
            from retrieval.graph import embed_graph_texts

            embed_graph_texts(kb, embedder)  # graph mode's name and fact vectors, once, now
        from zhiku import audit
        audit.record_ingest(kb, audit.operator(), args.paths, groups, report)
    emit(report.to_json(), args.json, _summary(report, settings))
    nothing_worked = report.failed and not (report.added or report.updated or report.unchanged or report.removed)
    return FAILED if nothing_worked else OK


def _summary(report: IngestReport, settings: Settings) -> str:
    lines = [
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed, {len(report.failed)} failed, {len(report.skipped)} skipped",
        f"knowledge base {settings.kb}: {report.documents} documents, {report.chunks} chunks",
    ]
    if report.seconds:
        lines.append("seconds per stage (parser workers run side by side): "
                     + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in report.seconds.items()))
    lines += [f"  failed: {f.path}: {f.error}" for f in report.failed]
    lines += [f"  skipped: {s.path}: {s.reason}" for s in report.skipped]
    return "\n".join(lines)


def run_reindex(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    current = KnowledgeBase.resolve_model(settings.kb, "", store=settings.store)
    if settings.embedding_model == current:
        with open_existing(settings) as kb, kb.writer():
            n = kb.reindex()
        emit({"vectors": n, "embedding_model": current}, args.json, f"rebuilt the vector index: {n} vectors")
        return OK
    embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
    with KnowledgeBase.open(settings.kb, current,
                            ann_threshold=settings.ann_threshold, store=settings.store) as kb, kb.writer():
        with tqdm(total=kb.stats()["chunks"], desc="re-embed", unit="chunk", disable=args.json) as bar:
            kb.reembed(embedder.name, embedder.dimension, embedder.embed, progress=bar.update)
        n = kb.reindex()
    emit({"vectors": n, "embedding_model": embedder.name}, args.json,
         f"re-embedded {n} chunks with {embedder.name!r} and rebuilt the vector index")
    return OK
