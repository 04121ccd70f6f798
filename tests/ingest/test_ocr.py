"""OCR of scanned pages and images: what becomes text, how it is marked, and what stays a failure.

Real files, the real RapidOCR model (it ships in its wheel); the text is drawn from known strings.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ingest.parse import ParseError, parse_file
from tests.ingest.scanned_files import drawn, scanned_pdf

INVOICE = ["Invoice INV-2024-0042 totals 4,820 EUR", "Payment is due on 15 March 2025"]


def texts(parsed) -> list[str]:
    return [e.text for e in parsed.elements]


def test_an_image_becomes_a_document_of_ocr_lines_with_words_apart(tmp_path: Path) -> None:
    path = tmp_path / "invoice.png"
    drawn(INVOICE).save(path)
    parsed = parse_file(path)
    assert parsed.kind == "image" and parsed.pages == 1
    assert texts(parsed) == INVOICE  # line breaks kept; "totals4,820EUR" would be the engine's own output
    assert {(e.kind, e.page) for e in parsed.elements} == {("ocr", 1)}
    assert 0.8 < parsed.metadata["ocr_pages"]["1"] <= 1.0


@pytest.mark.slow
def test_chinese_text_in_an_image_is_read_without_spaces(tmp_path: Path) -> None:
    path = tmp_path / "通知.jpg"
    drawn(["消防演练定于十二月十日下午三点举行。"]).convert("RGB").save(path, quality=90)
    parsed = parse_file(path)
    assert texts(parsed) == ["消防演练定于十二月十日下午三点举行。"]
    assert parsed.language == "zh"


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".bmp", ".webp"])
def test_other_image_formats_are_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"note{suffix}"
    drawn(["Room Falcon at 10:00"]).save(path)
    assert texts(parse_file(path)) == ["Room Falcon at 10:00"]


@pytest.mark.slow
def test_a_multi_page_tiff_keeps_its_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "fax.tif"
    first, second = drawn(["Delivery note DN-5520"]), drawn(["Received by Liu Yang"])
    first.save(path, save_all=True, append_images=[second])
    parsed = parse_file(path)
    assert [(e.text, e.page) for e in parsed.elements] == [("Delivery note DN-5520", 1), ("Received by Liu Yang", 2)]
    assert parsed.pages == 2 and set(parsed.metadata["ocr_pages"]) == {"1", "2"}


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_a_page_fed_in_sideways_or_upside_down_is_read_upright_from_one_detection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, angle: int) -> None:
    from ingest import ocr

    detections = []
    detect = ocr.reader().text_det
    monkeypatch.setattr(ocr.reader(), "text_det", lambda image: detections.append(image.shape) or detect(image))
    path = tmp_path / "turned.png"
    drawn(INVOICE).rotate(angle, expand=True, fillcolor=255).save(path)
    assert texts(parse_file(path)) == INVOICE
    assert len(detections) == 1  # the upright page is found by arithmetic, not by detecting it again


def test_the_detector_sees_a_large_page_shrunk_to_its_limit_and_a_small_one_as_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest import ocr

    seen = []
    detect = ocr.reader().text_det
    monkeypatch.setattr(ocr.reader(), "text_det", lambda image: seen.append(image.shape[:2]) or detect(image))
    a4 = Image.new("L", (1240, 1754), 255)
    a4.paste(drawn(INVOICE), (60, 200))
    assert ocr.read_page(a4).text.splitlines() == INVOICE  # boxes mapped back to the full page for recognition
    note = drawn(["Room Falcon at 10:00"], width=500)
    assert max(note.size) < ocr.DET_SIDE and ocr.read_page(note).text == "Room Falcon at 10:00"
    assert seen == [(ocr.DET_SIDE, round(1240 * ocr.DET_SIDE / 1754)), note.size[::-1]]


@pytest.mark.slow
def test_a_table_keeps_each_row_on_one_line_in_reading_order(tmp_path: Path) -> None:
    from PIL import ImageDraw

    from tests.ingest.scanned_files import scans

    image = Image.new("L", (1100, 200), 255)
    draw, face = ImageDraw.Draw(image), scans.font(26)
    for y, row in ((20, ("Item", "Quantity", "Amount")), (90, ("Battery pack", "6", "6,900 EUR"))):
        for x, cell in zip((30, 500, 800), row):
            draw.text((x, y), cell, font=face, fill=0)
    path = tmp_path / "table.png"
    image.save(path)
    assert texts(parse_file(path)) == ["Item | Quantity | Amount", "Battery pack | 6 | 6,900 EUR"]


@pytest.mark.slow
def test_a_scanned_pdf_is_read_by_ocr(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "signed.pdf", [drawn(INVOICE, size=30)])
    parsed = parse_file(pdf)
    assert texts(parsed) == INVOICE
    assert {e.kind for e in parsed.elements} == {"ocr"} and set(parsed.metadata["ocr_pages"]) == {"1"}


@pytest.mark.slow
def test_a_mixed_pdf_reads_only_its_scanned_page_by_ocr(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "po.pdf", ["Purchase order PO-7731 for twelve safety laser scanners.",
                                           drawn(["Annex A: delivery on 9 January 2027"], size=30)])
    parsed = parse_file(pdf)
    assert list(parsed.metadata["ocr_pages"]) == ["2"]
    assert [(e.kind, e.page) for e in parsed.elements][-1] == ("ocr", 2)
    assert parsed.elements[-1].text == "Annex A: delivery on 9 January 2027"
    assert all(e.kind != "ocr" for e in parsed.elements if e.page == 1)
    assert any("PO-7731" in e.text for e in parsed.elements if e.page == 1)


def test_with_ocr_off_a_scanned_pdf_fails_as_before_and_images_are_refused(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "signed.pdf", [drawn(INVOICE)])
    with pytest.raises(ParseError, match="scanned PDF without a text layer.*ocr = \"auto\""):
        parse_file(pdf, ocr="off")
    image = tmp_path / "invoice.png"
    drawn(INVOICE).save(image)
    with pytest.raises(ParseError, match='OCR, which is off'):
        parse_file(image, ocr="off")


def test_broken_and_empty_images_stay_failures_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (tmp_path / "text.webp").write_text("I am a text file with an image name")
    Image.new("L", (600, 400), 255).save(tmp_path / "blank.png")
    reasons = {}
    for name in ("empty.png", "corrupt.jpg", "text.webp", "blank.png"):
        with pytest.raises(ParseError) as caught:
            parse_file(tmp_path / name)
        reasons[name] = str(caught.value)
    assert reasons["empty.png"] == "the file is empty"
    assert reasons["corrupt.jpg"].startswith("not a readable jpg image")
    assert reasons["text.webp"].startswith("not a readable webp image") and "corrupt or misnamed" in reasons["text.webp"]
    assert reasons["blank.png"].startswith("no text found in this image file (OCR read no text")


@pytest.mark.slow
def test_a_blank_scanned_pdf_fails_with_the_ocr_reason(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "blank.pdf", [Image.new("L", (400, 300), 250)])
    with pytest.raises(ParseError, match="no text found in this pdf file \\(OCR read no text"):
        parse_file(pdf)
