"""Parsing keeps what retrieval needs from every supported format, and names what is wrong with bad files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.parse import ParseError, parse_file


def kinds(parsed):
    return [(e.kind, e.text) for e in parsed.elements]


def test_markdown_keeps_heading_path_lists_and_table_rows_with_headers(tmp_path: Path) -> None:
    path = tmp_path / "travel.md"
    path.write_text(
        "# Travel Policy\n\nBook early.\n\n## Hotels\n\n- Cap is 180 EUR per night.\n\n"
        "| City | Cap |\n|---|---|\n| Paris | 200 EUR |\n",
        encoding="utf-8",
    )
    parsed = parse_file(path)
    assert parsed.title == "Travel Policy"
    assert ("list", "Cap is 180 EUR per night.") in kinds(parsed)
    row = next(e for e in parsed.elements if e.kind == "table")
    assert row.text == "City: Paris | Cap: 200 EUR"
    assert row.heading_path == ("Travel Policy", "Hotels")


def test_docx_headings_paragraphs_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Service Agreement", 1)
    document.add_heading("Fees", 2)
    document.add_paragraph("The monthly fee is 4,000 EUR.")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table.rows[0].cells + table.rows[1].cells, ["Item", "Price", "Support", "500 EUR"]):
        cell.text = text
    path = tmp_path / "contract.docx"
    document.save(path)
    parsed = parse_file(path)
    assert parsed.kind == "docx"
    text = next(e for e in parsed.elements if "monthly fee" in e.text)
    assert text.heading_path == ("Service Agreement", "Fees")
    assert any(e.kind == "table" and e.text == "Item: Support | Price: 500 EUR" for e in parsed.elements)


def test_pptx_slides_become_pages(tmp_path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    for title, body in [("Q3 Review", "Revenue grew 12%."), ("Hiring", "We hired 14 engineers.")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    path = tmp_path / "review.pptx"
    deck.save(path)
    parsed = parse_file(path)
    assert parsed.pages == 2
    hiring = next(e for e in parsed.elements if "14 engineers" in e.text)
    assert hiring.page == 2 and hiring.heading_path[-1] == "Hiring"


def test_xlsx_rows_carry_headers_and_sheet_names(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget 2026"
    sheet.append(["Department", "Budget (EUR)"])
    sheet.append(["Engineering", 1200000])
    path = tmp_path / "budget.xlsx"
    book.save(path)
    row = next(e for e in parse_file(path).elements if "Engineering" in e.text)
    assert row.kind == "table"
    assert "Department: Engineering" in row.text and "Budget (EUR): 1200000" in row.text
    assert row.heading_path[-1] == "sheet: Budget 2026"


def test_csv_html_text_and_json(tmp_path: Path) -> None:
    (tmp_path / "offices.csv").write_text("office,city\nHQ,Berlin\n", encoding="utf-8")
    (tmp_path / "faq.html").write_text("<h1>IT FAQ</h1><h2>VPN</h2><p>Use GlobalProtect.</p>", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("Meeting notes.\n\nWe agreed to ship in May.", encoding="utf-8")
    (tmp_path / "catalog.json").write_text(json.dumps([{"sku": "AR-7", "specs": {"payload": "7 kg"}}]))
    assert kinds(parse_file(tmp_path / "offices.csv")) == [("table", "office: HQ | city: Berlin")]
    vpn = next(e for e in parse_file(tmp_path / "faq.html").elements if "GlobalProtect" in e.text)
    assert vpn.heading_path == ("IT FAQ", "VPN")
    assert any("ship in May" in e.text for e in parse_file(tmp_path / "notes.txt").elements)
    assert kinds(parse_file(tmp_path / "catalog.json")) == [("table", "sku: AR-7\nspecs.payload: 7 kg")]


def test_email_headers_body_and_text_attachment(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Budget approved"
    message["From"] = "cfo@acme.example"
    message["To"] = "team@acme.example"
    message.set_content("Hi team,\n\nThe 2026 budget is approved.\n")
    message.add_attachment("Line items: travel 50,000 EUR.", filename="items.txt")
    path = tmp_path / "budget.eml"
    path.write_bytes(message.as_bytes())
    parsed = parse_file(path)
    assert parsed.title == "Budget approved"
    assert parsed.metadata["from"] == ["cfo@acme.example"]
    texts = " ".join(e.text for e in parsed.elements)
    assert "budget is approved" in texts and "travel 50,000 EUR" in texts


def test_pdf_text_layer_with_pages(sample_corpus: Path) -> None:
    pdf = next(sample_corpus.rglob("*.pdf"))
    parsed = parse_file(pdf)
    assert parsed.kind == "pdf"
    assert parsed.pages and parsed.pages >= 2
    assert all(e.page for e in parsed.elements)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("broken.pdf", b"this is not a pdf", "not a valid pdf"),
        ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "encrypted"),
        ("bad.json", b"{oops", "not valid JSON"),
        ("image.png", b"\x89PNG....", "not a readable png image (its bytes are not a png image)"),
        ("drawing.svg", b"<svg/>", "unsupported file type"),
        ("truncated.docx", b"PK\x03\x04garbage", "cannot parse this docx"),
    ],
)
def test_bad_files_raise_one_line_reasons(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError) as error:
        parse_file(path)
    assert reason in str(error.value)
    assert "\n" not in str(error.value)


def test_real_world_csv_comment_lines_semicolons_and_chinese_encoding(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("# Data source: ERP export\nDate;Price\n2026-01-02;10.5\n", encoding="utf-8")
    (tmp_path / "员工.csv").write_bytes("姓名,办公室\n李伟,上海\n".encode("gb18030"))
    assert kinds(parse_file(tmp_path / "prices.csv")) == [("table", "Date: 2026-01-02 | Price: 10.5")]
    chinese = parse_file(tmp_path / "员工.csv")
    assert kinds(chinese) == [("table", "姓名: 李伟 | 办公室: 上海")] and chinese.language == "zh"


def test_plain_text_titles_and_narrative_told_apart_by_the_light_pipeline(tmp_path: Path, monkeypatch) -> None:
    """unstructured classifies text elements with spaCy's tagger and the sentence recogniser
    (not the slower dependency parser), and never runs its own language detection."""
    import unstructured.nlp.tokenize as tokenize
    import unstructured.partition.common.lang as lang

    def no_detection(text: str) -> list:
        raise AssertionError("unstructured's language detection ran")

    monkeypatch.setattr(lang, "detect_langs", no_detection)
    path = tmp_path / "review.txt"
    path.write_text("Quarterly Review\n\nThe committee approved the budget, e.g. for travel. It meets again in May.\n",
                    encoding="utf-8")
    parsed = parse_file(path)
    assert kinds(parsed) == [("title", "Quarterly Review"),
                             ("text", "The committee approved the budget, e.g. for travel. It meets again in May.")]
    assert parsed.elements[1].heading_path == ("Quarterly Review",)
    assert parsed.language == "en"
    pipes = tokenize._get_nlp().pipe_names
    assert "senter" in pipes and "parser" not in pipes
