"""The PII measurement (``eval.pii``): the labelled set's shape and the counting of each matching."""
from __future__ import annotations

from pathlib import Path

import pytest

from eval.pii import DEFAULT_DATA, Snippet, load_snippets, report_markdown, score
from zhiku.errors import DatasetError
from zhiku.pii import TYPES, Span


def test_the_bundled_set_has_over_a_hundred_english_and_chinese_snippets_of_every_type() -> None:
    snippets = load_snippets(DEFAULT_DATA)
    assert len(snippets) >= 100
    assert {s.lang for s in snippets} == {"en", "zh"}
    assert {span.type for s in snippets for span in s.spans} == set(TYPES)
    assert sum(1 for s in snippets if not s.spans) >= 10  # negatives, for precision
    assert len({s.id for s in snippets}) == len(snippets)


def test_a_span_that_does_not_cut_out_its_text_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "gold.jsonl"
    bad.write_text('{"id": "a", "text": "mail a@b.io", "spans": [{"type": "EMAIL", "start": 0, "end": 4, '
                   '"text": "a@b.io"}]}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="gold.jsonl:1"):
        load_snippets(bad)


def test_strict_and_overlap_matching_and_leaks_are_counted_per_type() -> None:
    text = "Dr. Ann Lee, 13812345678, order 42"
    snippet = Snippet("s", "en", text, (Span("PERSON", 4, 11, 1.0), Span("PHONE", 13, 24, 1.0)))
    found = [Span("PERSON", 0, 11, 0.85), Span("BANK_CARD", 32, 34, 0.9)]  # the name with its title; a false card
    scores = score([snippet], lambda texts: [found])
    assert (scores.strict["PERSON"].tp, scores.strict["PERSON"].fp, scores.strict["PERSON"].fn) == (0, 1, 1)
    assert (scores.overlap["PERSON"].tp, scores.overlap["PERSON"].fp) == (1, 0)
    assert scores.overlap["PHONE"].fn == 1 and scores.overlap["BANK_CARD"].fp == 1
    assert scores.leaked == {**{t: 0 for t in TYPES}, "PHONE": 1}
    report = report_markdown(scores, DEFAULT_DATA)
    assert "| PHONE | 1 | 1.000 | 0.000 |" in report and "s: missed PHONE '13812345678'" in report
