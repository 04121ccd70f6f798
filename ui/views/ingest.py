"""Ingest page (admins only): upload files or name a folder on the server, watch each file go in.

Uploads are saved under ``<knowledge base>/uploads/`` first: a document's identity is its path, and
the "download original" button on source cards serves that file later. The run itself is the
ingest pipeline (``ingest.pipeline.ingest``), so the page and ``zhiku ingest`` behave the same.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from ingest.pipeline import IngestReport, ingest
from ui.auth import AccountError, is_admin, parse_groups
from ui.context import Context, current
from zhiku.errors import UsageError
from zhiku.protocols import Extractor

UPLOADS = "uploads"
_OUTCOME_ICONS = {"added": ":material/add_circle:", "updated": ":material/sync:", "failed": ":material/error:"}


def save_uploads(root: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write uploaded (name, content) pairs under ``root/uploads``; names are reduced to their base name."""
    folder = root / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, content in files:
        base = Path(name).name
        if not base or base.startswith("."):
            raise UsageError(f"upload {name!r} has no usable file name; rename it and upload again")
        path = folder / base
        path.write_bytes(content)
        saved.append(path)
    return saved


def server_paths(text: str) -> list[Path]:
    """Folder or file paths typed one per line (or separated by ';'); each must exist on the server."""
    paths = [Path(p.strip()).expanduser() for line in text.splitlines() for p in line.split(";") if p.strip()]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder on the server: {missing[0]}; check the path")
    return paths


def load_extractor(ctx: Context) -> Extractor | None:
    """The triple extractor ingest runs (none when ``extractor = "none"`` or the kg package lacks one)."""
    from kg.extract import load_extractor as load

    return load(ctx.settings, llm=lambda: ctx.assistant.llm)


def run_ingest(ctx: Context, paths: Sequence[Path], groups: tuple[str, ...]) -> IngestReport:
    """Ingest with a progress bar and one line per finished file."""
    bar = st.progress(0.0, text="Reading files…")
    log = st.container()

    def progress(done: int, total: int, path: str, outcome: str) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} files")
        log.markdown(f"{_OUTCOME_ICONS.get(outcome, ':material/check:')} {outcome}: `{Path(path).name}`")

    report = ingest(ctx.kb, ctx.assistant.embedder, list(paths), ctx.settings, extractor=load_extractor(ctx),
                    groups=groups or None, progress=progress)
    bar.progress(1.0, text="Done")
    return report


def show_report(report: IngestReport) -> None:
    counts = st.columns(5)
    for column, (label, value) in zip(counts, (("Added", report.added), ("Updated", report.updated),
                                               ("Unchanged", report.unchanged), ("Failed", len(report.failed)),
                                               ("Documents now", report.documents))):
        column.metric(label, value)
    if report.failed:
        st.warning(f"{len(report.failed)} file(s) could not be ingested:")
        st.dataframe([{"file": f.path, "reason": f.error} for f in report.failed], hide_index=True)
    else:
        st.success(f"Ingest finished: the knowledge base holds {report.documents} documents, {report.chunks} chunks.")


def render(ctx: Context) -> None:
    st.title("Ingest documents")
    if not is_admin(ctx.user, ctx.settings.admin_group):
        st.warning(f"Only members of the group '{ctx.settings.admin_group}' may ingest documents.")
        return
    uploads = st.file_uploader("Upload files", accept_multiple_files=True, key="ingest_uploads",
                               help="PDF, Word, PowerPoint, Excel, Markdown, HTML, text…")
    folder = st.text_area("…or files and folders on the server (one per line)", key="ingest_paths",
                          placeholder="/data/handbook")
    groups_text = st.text_input("Access groups (comma-separated; empty: public, or the folder's zhiku-acl.toml)",
                                key="ingest_groups")
    if not st.button("Ingest", type="primary", key="ingest_start"):
        return
    try:
        groups = parse_groups(groups_text)
    except AccountError as exc:
        st.error(str(exc))
        return
    paths = server_paths(folder)
    if uploads:
        paths += save_uploads(ctx.kb.root, [(f.name, f.getvalue()) for f in uploads])
    if not paths:
        st.warning("Choose files to upload or type a server path first.")
        return
    show_report(run_ingest(ctx, paths, groups))


if __name__ == "__main__":
    render(current())
