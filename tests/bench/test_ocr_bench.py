"""The OCR benchmark's yardstick and test set: CER as documented, scans deterministic, twins exact."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.ocr import cer
from tests.ingest.scanned_files import scans


def test_cer_ignores_layout_whitespace_and_cell_bars_but_counts_lost_word_gaps() -> None:
    assert cer("Item | Quantity\n  Total   due", "Item | Quantity\nTotal due", "en") == 0.0
    assert cer("totals4,820EUR", "totals 4,820 EUR", "en") == 2 / len("totals 4,820 EUR")
    assert cer("发票 总额", "发票总额", "zh") == 0.0
    assert cer("发栗总额", "发票总额", "zh") == 0.25


@pytest.mark.slow
def test_every_scan_is_written_the_same_bytes_twice_with_its_text_as_twin(tmp_path: Path) -> None:
    def digests(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in scans.build(folder)}

    first = digests(tmp_path / "a")
    assert list(first) == list(scans.SCANS) and first == digests(tmp_path / "b")
    twin = scans.build_twins(tmp_path / "a")[0].read_text(encoding="utf-8")
    assert "1,870 EUR per month" in twin and "\f" in twin


def test_a_baseline_revision_is_measured_as_its_own_reader_beside_the_products() -> None:
    from bench.ocr import readers
    from ingest import ocr

    measured = readers("HEAD")
    assert measured["zhiku (RapidOCR + word gaps)"] is ocr
    baseline = measured["zhiku at HEAD"]
    assert baseline is not ocr and baseline.__file__ != ocr.__file__ and callable(baseline.read_page)
