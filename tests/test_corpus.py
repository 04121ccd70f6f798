"""The bundled sample corpus: every promised format is generated, opens with its own library, carries
the content the evaluation facts point at, and comes out the same bytes on every run."""
from __future__ import annotations

import csv
import email
import importlib.util
import json
import re
import tomllib
from email.policy import default
from pathlib import Path

import pytest

from zhiku.text import has_cjk

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {".md", ".txt", ".html", ".csv", ".json", ".eml", ".docx", ".pptx", ".xlsx", ".pdf"}


@pytest.fixture(scope="module")
def make_corpus():
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "examples" / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def documents(sample_corpus: Path) -> list[Path]:
    return sorted(p for p in sample_corpus.rglob("*") if p.is_file() and p.name != "zhiku-acl.toml")


def test_every_listed_document_is_written_in_every_format(make_corpus, sample_corpus, documents):
    assert [p.relative_to(sample_corpus).as_posix() for p in documents] == sorted(make_corpus.DOCUMENTS)
    assert 24 <= len(documents) <= 30
    assert {p.suffix for p in documents} == FORMATS
    assert all(p.stat().st_size > 300 for p in documents)


def test_restricted_folders_and_chinese_documents_exist(sample_corpus, documents):
    folders = {p.relative_to(sample_corpus).parts[0] for p in documents}
    assert {"hr", "finance", "engineering", "sales", "zh"} <= folders
    chinese = [p for p in documents if p.suffix in {".md", ".txt", ".html"} and has_cjk(p.read_text("utf-8"))]
    chinese += [p for p in documents if p.suffix == ".docx" and "zh" in p.parts]
    assert len(chinese) >= 6


def test_acl_file_restricts_exactly_the_department_folders(sample_corpus, documents):
    from ingest.acl import Acl

    table = tomllib.loads((sample_corpus / "zhiku-acl.toml").read_text("utf-8"))
    assert table["hr/**"] == ["hr"] and table["finance/**"] == ["finance", "executives"]
    acl = Acl.load(sample_corpus)
    for path in documents:
        relative = path.relative_to(sample_corpus).as_posix()
        restricted = relative.split("/")[0] in {"hr", "finance", "sales", "engineering"}
        assert (acl.groups_for(relative) != acl.fallback) == restricted, relative


def test_docx_has_headings_and_a_table(sample_corpus):
    from docx import Document

    contract = Document(sample_corpus / "sales/nordhafen_master_supply_agreement.docx")
    headings = [p.text for p in contract.paragraphs if p.style.name.startswith("Heading")]
    assert "5. Service levels" in headings
    assert contract.tables[0].rows[-1].cells[-1].text == "1,360,560"
    report = Document(sample_corpus / "zh/q3_2026_shanghai_rd_report.docx")
    assert "上海研发中心" in report.paragraphs[0].text


def test_pptx_is_a_deck_of_several_slides_with_a_table(sample_corpus):
    from pptx import Presentation

    deck = Presentation(sample_corpus / "finance/q3_2026_business_review.pptx")
    titles = [slide.shapes.title.text for slide in deck.slides]
    assert len(titles) >= 5 and titles[0] == "Q3 2026 Business Review"
    assert any(shape.has_table for slide in deck.slides for shape in slide.shapes)


def test_xlsx_has_two_sheets_with_header_rows(sample_corpus):
    from openpyxl import load_workbook

    book = load_workbook(sample_corpus / "finance/fy2026_budget.xlsx")
    assert book.sheetnames == ["Budget by department", "Headcount"]
    budget = list(book["Budget by department"].values)
    assert budget[0][0] == "Department" and budget[-1] == ("Total", "Marcus Hale", 13150, 13750, 14150, 14950, 56000)
    assert list(book["Headcount"].values)[0][0] == "Office"


def test_pdf_has_a_text_layer_on_two_pages(sample_corpus):
    from pypdf import PdfReader

    pages = [page.extract_text() for page in PdfReader(sample_corpus / "products/k5_lift_datasheet.pdf").pages]
    assert len(pages) >= 2
    assert "Rated payload: 1,000 kg" in pages[0]
    assert "EUR 64,000" in pages[1]


def test_email_has_headers_body_and_text_attachment(sample_corpus):
    raw = (sample_corpus / "mail/2026-10-20_ledgerly_rollout.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=default)
    assert message["From"].addresses[0].display_name == "Marcus Hale"
    assert "Ledgerly" in message["Subject"]
    assert "Wang Fang" in message.get_body(("plain",)).get_content()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["ledgerly_quickstart.txt"]
    assert "5,000 EUR" in attachments[0].get_content()


def test_csv_json_and_html_are_well_formed(sample_corpus):
    rows = list(csv.DictReader((sample_corpus / "company/office_directory.csv").open(encoding="utf-8")))
    managers = {row["Name"].split(" (")[0] for row in rows}
    assert all(row["Reports to"] in managers | {""} for row in rows)
    catalogue = json.loads((sample_corpus / "products/product_catalogue.json").read_text("utf-8"))
    assert {p["name"] for p in catalogue["products"]} == {"K2 Courier", "K5 Lift", "Talon T7", "Nest"}
    from lxml import html

    page = html.parse(str(sample_corpus / "zh/new_employee_faq.html")).getroot()
    assert page.findtext(".//h1").startswith("上海办公室")


def test_every_fact_cites_generated_files(make_corpus):
    facts = (ROOT / "examples" / "corpus_facts.md").read_text("utf-8")
    rows = [line for line in facts.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 60
    two_document = 0
    for row in rows:
        sources = [s.strip() for s in row.rstrip(" |").rsplit("|", 1)[1].split(";")]
        assert all(s in make_corpus.DOCUMENTS for s in sources), row
        two_document += len(sources) == 2
    assert two_document >= 10


def test_output_is_byte_for_byte_deterministic(make_corpus, sample_corpus, tmp_path):
    again = make_corpus.build(tmp_path)
    for path in again:
        first = sample_corpus / path.relative_to(tmp_path)
        assert path.read_bytes() == first.read_bytes(), path
        assert path.stat().st_mtime == first.stat().st_mtime, path
