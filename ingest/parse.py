"""Parsing: one file in, structural elements out (titles, paragraphs, list items, table rows).

unstructured does the partitioning (``strategy="fast"``: PDFs by their text layer, so nothing is
fetched); this module keeps what retrieval needs from its elements (heading path, page, kind),
turns tables into self-contained rows ("Header: value | Header: value"), and reports every
problem as a ``ParseError`` with a one-line reason. JSON is flattened here because unstructured's
JSON partitioner only reads its own serialisation format.

Input is checked before any partitioner sees it, because partitioners trust their input: text
kinds must be text (no NUL bytes, a known encoding, a bounded size), Office files (zip containers)
are refused when they would unpack to too much or unpack suspiciously far (zip bombs), and e-mail
attachments go through the same checks as files. What still goes wrong at run time (memory, time)
is bounded by the worker process that calls ``parse_file`` (``ingest.workers``).
"""
from __future__ import annotations

import csv
import email
import email.message
import email.policy
import importlib
import json
import logging
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku.records import Element
from zhiku.text import detect_language
from zhiku.errors import ParseError
from zhiku.spacy_model import load_spacy_model

#: Extension -> file kind; the kind picks the partitioner below.
KINDS = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "tsv",
    ".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt",
    ".eml": "eml", ".msg": "msg", ".json": "json",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"), "image"),
}
#: Largest file parsed; bigger ones are reported, not loaded into memory.
MAX_BYTES = 200 * 1024 * 1024
#: Largest plain-text file (text kinds parse at about 1 MB/s and every byte becomes chunks to embed).
MAX_TEXT_BYTES = 20 * 1024 * 1024
TEXT_KINDS = frozenset({"txt", "md", "csv", "tsv", "json", "html"})
#: Zip containers (docx, pptx, xlsx): most they may unpack to, and the highest packing ratio of a
#: part bigger than ``_RATIO_FLOOR`` (real Office XML packs 5-30x; a zip bomb thousands of times).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_PACKING_RATIO = 100
MAX_ZIP_MEMBERS = 10_000
_RATIO_FLOOR = 1024 * 1024
ZIP_KINDS = frozenset({"docx", "pptx", "xlsx"})
#: Kinds whose pages may need OCR (``ocr`` setting): PDF pages without a usable text layer, images.
OCR_KINDS = frozenset({"pdf", "image"})
#: A PDF page with fewer non-space characters in its text layer than this is read by OCR.
MIN_PAGE_CHARS = 20
#: Pages rendered per inch for OCR (A4 at 150 dpi: 1240 x 1754 pixels).
OCR_DPI = 150
#: Most pages (frames) of one multi-page image read.
MAX_IMAGE_PAGES = 500
#: Text kinds are decoded strictly in these encodings (UTF-16 only with its byte-order mark).
_ENCODINGS = ("utf-8-sig", "gb18030")



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


def parse_file(path: Path, attachments: bool = True, ocr: str = "auto") -> ParsedFile:
    """Parse one supported file; raises ``ParseError`` for anything unreadable, empty or unknown.

    ``attachments``: also parse an e-mail's attachments (off for attachments themselves, so an
    attached e-mail does not unpack a chain of nested ones). ``ocr``: the ``ocr`` setting (``auto``
    reads scanned PDF pages and images). ``MemoryError`` is let through: the worker reports it as
    running out of memory.
    """
    kind = kind_of(path)
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(sorted(KINDS))}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}") from exc
    check_size(size)
    _check_signature(path, kind)
    if kind in TEXT_KINDS:
        _check_text(path, kind, size)
    if kind in ZIP_KINDS:
        _check_archive(path, kind)
    try:
        if kind in _EMAIL_KINDS:
            elements, meta = _email(path, kind, attachments, ocr)
        elif kind in OCR_KINDS:
            elements, meta = _SCANNED[kind](path, ocr)
        else:
            elements, meta = _PARTITIONERS[kind](path)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # one bad file must never stop an ingest: name the cause in one line
        raise ParseError(_reason(kind, exc)) from exc
    elements = [e for e in elements if e.text.strip()]
    if elements and all(e.kind == "title" for e in elements):
        # a short text file whose lines all look like titles: its lines are its content
        elements = [Element(e.text, "text", e.page, e.heading_path) for e in elements]
    if not elements:
        hint = ""
        if kind == "pdf" and ocr == "off":
            hint = ' (a scanned PDF without a text layer? OCR is off: set ocr = "auto" to read it)'
        elif kind in OCR_KINDS:
            hint = " (OCR read no text: a blank page, or text too small, faint or blurred to read?)"
        raise ParseError(f"no text found in this {kind} file{hint}")
    text = " ".join(e.text for e in elements[:200])
    title = meta.pop("title", "") or next((e.text for e in elements if e.kind == "title"), "") or path.stem
    pages = max((e.page for e in elements if e.page), default=None)
    return ParsedFile(str(path), kind, elements, title[:300], pages, detect_language(text), meta)


def check_size(size: int) -> None:
    """Refuse an empty file or one over ``MAX_BYTES`` before anything reads it whole (also before a
    distributed ingest ships its bytes to a worker)."""
    if size == 0:
        raise ParseError("the file is empty")
    if size > MAX_BYTES:
        raise ParseError(f"the file is {size // 2**20} MiB, over the {MAX_BYTES // 2**20} MiB limit; split it")


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


def _check_text(path: Path, kind: str, size: int) -> None:
    """Text kinds: bounded in size and no binary data (decoding is checked by ``read_text``)."""
    if size > MAX_TEXT_BYTES:
        raise ParseError(
            f"the {kind} file is {size // 2**20} MiB of text, over the {MAX_TEXT_BYTES // 2**20} MiB limit "
            "for text files; split it"
        )
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    if b"\0" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError(f"binary data, not a {kind} file (it holds NUL bytes); is it misnamed?")


def read_text(path: Path) -> str:
    """A text file in UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030 (Chinese exports).

    Anything else is refused rather than guessed: a guessed legacy code page ingests mojibake.
    """
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not valid UTF-16 text (byte {exc.start}); save it as UTF-8") from exc
    first_error: UnicodeDecodeError | None = None
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    bad = data[first_error.start:first_error.start + 1].hex()
    raise ParseError(
        f"not valid UTF-8 (nor GB18030) text: byte 0x{bad} at offset {first_error.start}; save it as UTF-8"
    )


def _check_archive(path: Path, kind: str) -> None:
    """Refuse a zip container that would unpack to too much, or pack one part suspiciously well.

    The sizes come from the zip's directory; Python's ``zipfile`` (which the Office parsers use)
    never unpacks a part beyond its declared size, so a lying directory cannot get past this.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(_reason(kind, exc)) from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise ParseError(f"the {kind} file holds {len(members)} parts, over the {MAX_ZIP_MEMBERS} limit; is it a zip bomb?")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ParseError(
            f"the {kind} file unpacks to {unpacked // 2**20} MiB, over the {MAX_UNPACKED_BYTES // 2**20} MiB "
            "limit; is it a zip bomb? Split it or remove embedded media"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FLOOR and ratio > MAX_PACKING_RATIO:
            raise ParseError(
                f"the {kind} file's part {member.filename} unpacks {ratio:.0f} times its packed size, over the "
                f"{MAX_PACKING_RATIO}x limit; is it a zip bomb? Re-save it from the program that made it"
            )


def _reason(kind: str, exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    if "password" in lowered or "encrypt" in lowered:
        return f"the {kind} file is encrypted or password-protected; decrypt it and ingest again"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid text in a known encoding ({message}); save it as UTF-8"
    if isinstance(exc, RecursionError):
        return f"the {kind} file is nested too deeply to parse; is it generated or corrupt?"
    return f"cannot parse this {kind} file ({type(exc).__name__}: {message[:200]}); is it corrupt?"


# ------------------------------------------------------------------ partitioners
def _use_shipped_spacy() -> None:
    """Point unstructured's spaCy loader at the shipped model so it never downloads one.

    unstructured tags parts of speech and splits sentences to tell titles from narrative text.
    Its own pipeline finds sentences with the dependency parser; the model's sentence recogniser
    (``senter``, shipped disabled) finds the same boundaries in about 9 of 10 paragraphs of
    SciFact (the rest differ at abbreviations) for a fraction of the cost: with it and without
    unstructured's language detection (``_unstructured``), a text file parses in about half the time.

    Private API of unstructured 0.27.35 (pinned; tests cover it).
    """
    import unstructured.nlp.tokenize as tokenize

    if getattr(tokenize._load_spacy_model, "zhiku", False):
        return

    def load() -> Any:
        nlp = load_spacy_model(exclude=[*tokenize._SPACY_EXCLUDE, "parser"])
        nlp.enable_pipe("senter")
        return nlp

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
    "eml": ("email", "partition_email", {"process_attachments": False}),
    "msg": ("msg", "partition_msg", {"process_attachments": False}),
}
_EMAIL_KINDS = frozenset({"eml", "msg"})
#: Partitioner modules cheap enough to import up front in every worker's parent (the forkserver),
#: so workers, restarted ones too, start warm. PDF's stack takes seconds more: a worker imports it
#: at its first PDF (``load_partitioner``).
PRELOAD_MODULES = tuple(f"unstructured.partition.{module}" for module, _, _ in _UNSTRUCTURED.values() if module != "pdf")


def load_partitioner(path: Path, ocr: str = "auto") -> None:
    """Import what parsing ``path`` needs (unstructured's modules take seconds and hundreds of MB
    to import; the OCR model a second and about 200 MB), so a worker can cap the memory of the
    parse itself, not of the imports."""
    kind = kind_of(path)
    if kind in OCR_KINDS and ocr != "off":
        from ingest.ocr import reader

        reader()
    if kind in _UNSTRUCTURED:
        _load_shipped_spacy()
        importlib.import_module(f"unstructured.partition.{_UNSTRUCTURED[kind][0]}")


def warm_partitioners() -> None:
    """Import every partitioner a worker may need and load the spaCy model, once: the parser
    workers' fork server runs this (``ingest.warm``), so each worker, also one started after a
    killed one, forks with them loaded instead of loading them itself."""
    _load_shipped_spacy()
    for module in PRELOAD_MODULES:
        importlib.import_module(module)
    # the OCR engine's modules only: onnxruntime sessions hold threads, which a fork does not copy,
    # so each worker loads the model itself (``load_partitioner``)
    importlib.import_module("rapidocr_onnxruntime")


def _load_shipped_spacy() -> None:
    """``_use_shipped_spacy`` and load the model now. unstructured loads it lazily, inside the
    first partition; loading it also imports every installed spaCy plugin (Presidio's pulls in
    transformers: seconds and hundreds of MB), which must not count against a parse's memory cap."""
    import unstructured.nlp.tokenize as tokenize

    _use_shipped_spacy()
    tokenize._get_nlp()


def _unstructured(kind: str) -> Callable[[Path], tuple[list[Element], dict[str, Any]]]:
    module_name, function_name, kwargs = _UNSTRUCTURED[kind]

    def partition(path: Path) -> tuple[list[Element], dict[str, Any]]:
        _use_shipped_spacy()
        logging.getLogger("unstructured").setLevel(logging.ERROR)  # "no languages specified" on every file
        module = importlib.import_module(f"unstructured.partition.{module_name}")
        # text we decode ourselves (strictly, see ``read_text``) instead of letting unstructured guess
        source = {"text": read_text(path)} if kind in ("md", "txt") else {"filename": str(path)}
        # languages=[""]: no language detection (langdetect over the whole text, a fifth of a text
        # file's parse); Zhiku detects the language itself (``zhiku.text.detect_language``)
        raw = getattr(module, function_name)(**source, languages=[""], **kwargs)
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


def _email(path: Path, kind: str, attachments: bool, ocr: str) -> tuple[list[Element], dict[str, Any]]:
    """An e-mail's body by unstructured, and its attachments by ``parse_file`` itself.

    unstructured would partition attachments by content sniffing, past every check above; here
    each attachment is a file like any other (kind by name, size, signature, zip limits). One that
    fails is left out and named in ``skipped_attachments``; the message is still ingested.
    """
    elements, meta = _PARTITIONERS[kind](path)
    if not attachments:
        return elements, meta
    skipped = []
    with tempfile.TemporaryDirectory(prefix="zhiku-attachments-") as folder:
        for i, (name, data) in enumerate(_attachments(path, kind)):
            safe = Path(name).name or f"attachment-{i}"
            target = Path(folder) / f"{i}-{safe}"
            target.write_bytes(data)
            try:
                parsed = parse_file(target, attachments=False, ocr=ocr)
            except ParseError as exc:
                skipped.append(f"{safe}: {exc}")
                continue
            label = (f"attachment: {safe}",)
            elements.extend(Element(e.text, e.kind, e.page, label + e.heading_path) for e in parsed.elements)
    if skipped:
        meta["skipped_attachments"] = skipped
    return elements, meta


def _attachments(path: Path, kind: str) -> Iterable[tuple[str, bytes]]:
    """(file name, bytes) of each attachment of an .eml or .msg file."""
    if kind == "msg":
        from oxmsg import Message

        for attachment in Message.load(str(path)).attachments:
            if attachment.file_bytes:
                yield attachment.file_name or "", attachment.file_bytes
        return
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    for part in message.iter_attachments():  # type: ignore[attr-defined]
        content = part.get_content()
        if isinstance(content, email.message.Message):
            yield part.get_filename() or "message.eml", content.as_bytes()
        elif isinstance(content, str):
            yield part.get_filename() or "attachment.txt", content.encode("utf-8")
        elif isinstance(content, bytes):
            yield part.get_filename() or "", content


def _delimited(path: Path) -> tuple[list[Element], dict[str, Any]]:
    """CSV/TSV rows with their headers. Read with the csv module rather than unstructured's pandas
    reader, which rejects common real-world files (a ``# source`` comment line, ragged rows)."""
    lines = [line for line in read_text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")]
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
        data = json.loads(read_text(path))
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


# ------------------------------------------------------------------ scanned pages (OCR)
def _pdf(path: Path, ocr: str) -> tuple[list[Element], dict[str, Any]]:
    """A PDF by its text layer; with OCR on, each page without a usable one is rendered and read."""
    elements, meta = _PARTITIONERS["pdf"](path)
    if ocr == "off":
        return elements, meta
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    try:
        scanned = [n for n, page in enumerate(document, start=1) if _needs_ocr(page)]
        pages = {}
        for number in scanned:
            image = document[number - 1].render(scale=OCR_DPI / 72, grayscale=True).to_pil()
            pages[number] = _read(image)
    finally:
        document.close()
    if not pages:
        return elements, meta
    kept = [e for e in elements if e.page not in pages]
    read = [Element(line, "ocr", number) for number, page in pages.items() for line in page.text.splitlines()]
    ordered = sorted(kept + read, key=lambda e: e.page or 0)  # stable: each page keeps its order
    return ordered, {**meta, **_ocr_meta(pages)}


def _needs_ocr(page: Any) -> bool:
    textpage = page.get_textpage()
    try:
        return len("".join(textpage.get_text_range().split())) < MIN_PAGE_CHARS
    finally:
        textpage.close()


def _image(path: Path, ocr: str) -> tuple[list[Element], dict[str, Any]]:
    """An image file (a multi-page TIFF page by page) read by OCR."""
    if ocr == "off":
        raise ParseError('images are read by OCR, which is off (ocr = "off"); set ocr = "auto" to ingest them')
    from PIL import Image, ImageSequence, UnidentifiedImageError

    suffix = path.suffix.lower().lstrip(".")
    try:
        with Image.open(path) as image:
            pages = {}
            for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                if number > MAX_IMAGE_PAGES:
                    raise ParseError(f"the image has more than {MAX_IMAGE_PAGES} pages; split it")
                frame.load()
                pages[number] = _read(frame)
    except Image.DecompressionBombError as exc:
        raise ParseError(f"the {suffix} image has too many pixels to read safely ({exc}); scale it down") from exc
    except UnidentifiedImageError as exc:
        raise ParseError(f"not a readable {suffix} image (its bytes are not a {suffix} image); "
                         "is it corrupt or misnamed?") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ParseError(f"not a readable {suffix} image ({type(exc).__name__}: {str(exc)[:160]}); "
                         "is it corrupt or misnamed?") from exc
    elements = [Element(line, "ocr", number) for number, page in pages.items() for line in page.text.splitlines()]
    return elements, _ocr_meta(pages)


def _read(image: Any) -> Any:
    from ingest.ocr import read_page

    return read_page(image)


def _ocr_meta(pages: dict[int, Any]) -> dict[str, Any]:
    """Which pages were read by OCR and its confidence on each (cards and reports show it)."""
    return {"ocr_pages": {str(n): round(p.confidence, 3) for n, p in pages.items()},
            "ocr_engine": "rapidocr-onnxruntime (PP-OCRv4)"}


_SCANNED: dict[str, Callable[[Path, str], tuple[list[Element], dict[str, Any]]]] = {"pdf": _pdf, "image": _image}

_PARTITIONERS: dict[str, Callable[[Path], tuple[list[Element], dict[str, Any]]]] = {
    **{kind: _unstructured(kind) for kind in _UNSTRUCTURED},
    "json": _json,
    "csv": _delimited,
    "tsv": _delimited,
}
