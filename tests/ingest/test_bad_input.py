"""Bad input never takes a process down: each bad file is a failure with a reason, the rest goes on."""
from __future__ import annotations

import io
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.parse import MAX_PACKING_RATIO, ParseError, parse_file
from ingest.pipeline import ingest
from zhiku.kb import KnowledgeBase
from zhiku.settings import Settings

#: A PDF whose page tree references itself (Pages -> Kids -> Pages ...).
LOOPING_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 /Parent 3 0 R >> endobj
3 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def zip_bomb_docx(mib: int = 300) -> bytes:
    """A real .docx with one extra part that unpacks to ``mib`` MiB of zeros (packed: about 0.3 MiB)."""
    import docx

    document = docx.Document()
    document.add_paragraph("An innocent looking contract.")
    plain = io.BytesIO()
    document.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            bomb.writestr(item, source.read(item))
        with bomb.open("word/media/padding.bin", "w") as member:
            block = bytes(2**20)
            for _ in range(mib):
                member.write(block)
    return out.getvalue()


def write_bad_files(folder: Path) -> dict[str, str]:
    """The bad-file set; returns file name -> a phrase its failure reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bomb.docx").write_bytes(zip_bomb_docx())
    (folder / "nested.html").write_text("<html><body>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "</body></html>")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "latin.txt").write_bytes(b"Caf\xe9 \xff\xfe\x80 menu: \xc3\x28 prices in \xa4.\n" * 20)
    (folder / "loop.pdf").write_bytes(LOOPING_PDF)
    with (folder / "one-line.txt").open("w") as handle:
        for _ in range(50):
            handle.write("word " * 209_716)  # 50 MiB, no line break
    return {
        "bomb.docx": f"over the {MAX_PACKING_RATIO}x limit",
        "nested.html": "html",
        "binary.txt": "binary data",
        "latin.txt": "not valid UTF-8",
        "loop.pdf": "pdf",
        "one-line.txt": "over the 20 MiB limit",
    }


@pytest.mark.slow
def test_a_set_of_bad_files_fails_one_by_one_and_the_good_files_are_stored(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    expected = write_bad_files(docs)
    (docs / "good.md").write_text("# Leave\n\nEmployees get 30 days of paid leave.")
    (docs / "notes.txt").write_text("The Berlin office opens at 8am.")
    settings = Settings(kb=tmp_path / "kb", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [docs], settings)
        assert sorted(Path(d.source).name for d in kb.documents()) == ["good.md", "notes.txt"]
    failed = {Path(f.path).name: f for f in report.failed}
    assert set(failed) == set(expected)
    for name, phrase in expected.items():
        assert phrase in failed[name].error and failed[name].stage == "parse", (name, failed[name].error)
        assert "\n" not in failed[name].error


def test_zip_bomb_office_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    path.write_bytes(zip_bomb_docx())
    started = time.monotonic()
    with pytest.raises(ParseError) as error:
        parse_file(path)
    assert "word/media/padding.bin" in str(error.value) and "zip bomb" in str(error.value)
    assert time.monotonic() - started < 5  # refused from the zip directory, never unpacked


def test_email_attachments_pass_the_same_checks_and_a_bad_one_is_left_out(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Contract attached"
    message["From"] = "legal@acme.example"
    message.set_content("Please find the contract attached.\n")
    message.add_attachment(zip_bomb_docx(), maintype="application", subtype="octet-stream", filename="contract.docx")
    message.add_attachment(bytes(range(256)) * 16, maintype="text", subtype="plain", filename="dump.txt")
    message.add_attachment("Line items: travel 50,000 EUR.", filename="items.txt")
    path = tmp_path / "contract.eml"
    path.write_bytes(message.as_bytes())
    parsed = parse_file(path)
    text = " ".join(e.text for e in parsed.elements)
    assert "contract attached" in text and "travel 50,000 EUR" in text
    skipped = parsed.metadata["skipped_attachments"]
    assert [s.split(":")[0] for s in skipped] == ["contract.docx", "dump.txt"]
    assert "zip bomb" in skipped[0] and "binary data" in skipped[1]


def test_utf16_and_gb18030_text_still_parse(tmp_path: Path) -> None:
    (tmp_path / "utf16.txt").write_bytes("Hotels are capped at 150 EUR.".encode("utf-16"))
    (tmp_path / "gbk.txt").write_bytes("上海办公室员工出差住宿每晚不超过800元。".encode("gb18030"))
    assert "150 EUR" in parse_file(tmp_path / "utf16.txt").elements[0].text
    assert parse_file(tmp_path / "gbk.txt").language == "zh"


@pytest.mark.slow
def test_a_file_that_outlasts_the_timeout_is_reported_and_never_retried_here(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Leave\n\nEmployees get 30 days of paid leave.")
    with (docs / "b-slow.txt").open("w") as handle:  # about 19 MiB of prose: half a minute to parse
        for i in range(4_000):
            handle.write(f"Paragraph {i} describes the travel policy in plain words. " * 80 + "\n\n")
    (docs / "c.md").write_text("# Hotels\n\nHotels are capped at 150 EUR per night.")
    settings = Settings(kb=tmp_path / "kb", workers=1, parse_timeout_s=8)
    started = time.monotonic()
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [docs], settings)
    assert time.monotonic() - started < 60  # a retry in this process would take far longer
    assert (report.added, [Path(f.path).name for f in report.failed]) == (2, ["b-slow.txt"])
    assert report.failed[0].error == "the parser worker timed out after 8 s parsing (parse_timeout_s)"


@pytest.mark.slow
def test_a_file_that_exhausts_the_memory_cap_is_reported_and_the_next_worker_goes_on(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-big.txt").write_text("Words and more words here. " * 400_000)  # 10 MiB: ~1 GB to parse
    (docs / "b.md").write_text("# Hotels\n\nHotels are capped at 150 EUR per night.")
    settings = Settings(kb=tmp_path / "kb", workers=1, parse_memory_mb=150)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension) as kb:
        report = ingest(kb, embedder, [docs], settings)
    assert report.added == 1
    assert [(Path(f.path).name, f.error) for f in report.failed] == [
        ("a-big.txt", "the parser worker ran out of memory (over the 150 MiB cap)")]
