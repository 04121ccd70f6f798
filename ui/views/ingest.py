"""Ingest page (admins only): upload files or name a folder on the server, watch each file go in.

Uploads are saved under ``<knowledge base>/uploads/<sha256 prefix>/<file name>`` first: a document's
identity is its path, and the "download original" button on source cards serves that file later.
Naming the folder by content means two uploads never overwrite each other, and an ACL file
(``zhiku-acl.toml``) is refused, so an upload can never change the groups of other uploads. Server
folders are read only inside the ``ui_ingest_roots`` allow-list (off when empty), checked after
symlinks and ``..`` are resolved. With ``pii = "mask-ingest"`` the pipeline deletes the saved
upload once it is ingested (only masked text is kept). Saving and the allow-list live in
``ingest.uploads``, shared with the service API. The run itself is the ingest pipeline (``ingest.pipeline.ingest``),
so the page and ``zhiku ingest`` behave the same; each run goes to the audit log.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from ingest.pipeline import IngestReport, ingest
from ingest.uploads import allowed_path, save_upload
from ui.cards import safe_markdown
from ui.context import Context, current
from zhiku import audit
from zhiku.accounts import is_admin, parse_groups
from zhiku.errors import AccountError, ZhikuError
from zhiku.protocols import Extractor

_OUTCOME_ICONS = {"added": ":material/add_circle:", "updated": ":material/sync:", "failed": ":material/error:"}


def server_paths(text: str, roots: Sequence[str | Path]) -> list[Path]:
    """Folder or file paths typed one per line (or separated by ';'), each resolved and inside ``roots``."""
    typed = [Path(p.strip()) for line in text.splitlines() for p in line.split(";") if p.strip()]
    return [allowed_path(p, roots) for p in typed]


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
        log.markdown(f"{_OUTCOME_ICONS.get(outcome, ':material/check:')} {outcome}: {safe_markdown(Path(path).name)}")

    with ctx.kb.writer(notify=lambda message: bar.progress(0.0, text=message)):
        report = ingest(ctx.kb, ctx.assistant.embedder, list(paths), ctx.settings, extractor=load_extractor(ctx),
                        groups=groups or None, progress=progress)
    audit.record_ingest(ctx.kb, ctx.user.name, paths, groups, report)
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
    roots = ctx.settings.ui_ingest_roots
    uploads = st.file_uploader("Upload files", accept_multiple_files=True, key="ingest_uploads",
                               help=f"PDF, Word, PowerPoint, Excel, Markdown, HTML, text… "
                                    f"(at most {ctx.settings.upload_max_mb} MiB each)")
    folder = ""
    if roots:
        folder = st.text_area("…or files and folders on the server (one per line)", key="ingest_paths",
                              placeholder=str(roots[0]), help=f"Inside: {', '.join(roots)}")
    else:
        st.caption("Ingest from server folders is off: an administrator lists the allowed folders in the "
                   "setting `ui_ingest_roots`.")
    groups_text = st.text_input("Access groups (comma-separated; empty: public, or the folder's zhiku-acl.toml)",
                                key="ingest_groups")
    if not st.button("Ingest", type="primary", key="ingest_start"):
        return
    try:
        groups = parse_groups(groups_text)
    except AccountError as exc:
        st.error(str(exc))
        return
    paths = server_paths(folder, roots) if folder.strip() else []
    for upload in uploads or []:
        try:
            paths.append(save_upload(ctx.kb.root, upload.name, upload.getvalue(), ctx.settings.upload_max_mb))
        except ZhikuError as exc:
            st.warning(safe_markdown(str(exc)), icon=":material/block:")
    if not paths:
        st.warning("Choose files to upload or type a server path first.")
        return
    show_report(run_ingest(ctx, paths, groups))


if __name__ == "__main__":
    render(current())
