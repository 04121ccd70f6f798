"""Language and CJK handling: one detector and one sentence splitter, and every stage agrees on them."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ingest.parse import parse_file
from kg.extract import DefaultExtractor
from retrieval.followup import looks_like_followup
from retrieval.prompt import build_prompt
from retrieval.summary import document_language
from zhiku.records import Chunk, Document
from zhiku.text import detect_language, has_cjk, joiner, split_sentences


@pytest.mark.parametrize("text, hint, language", [
    ("张伟是华为技术有限公司的首席执行官。", "en", "zh"),
    ("Mary Chen is the CTO of Acme.", "zh", "en"),
    ("腾讯 (Tencent) 发布了 WeChat 新版本", "en", "zh"),
    ("差旅报销上限为每晚800元。", "en", "zh"),
    ("Hotel cap is 180 EUR, 上海 office", "zh", "en"),
    ("年假有多少天？", "en", "zh"),
    ("How many days?", "zh", "en"),
    ("2024 — 12.5%", "zh", "zh"),
    ("2024 — 12.5%", "en", "en"),
])
def test_a_text_is_chinese_when_a_fifth_of_its_letters_are_cjk_and_the_hint_decides_without_letters(
    text, hint, language
):
    assert detect_language(text, hint) == language


#: Mixed-language chunks near the boundary, where the three detectors of old disagreed.
MIXED = [
    "Hotel cap is 180 EUR, 上海 office",  # English: the old extractor's rule called this Chinese
    "请参考 README.md 和 CONTRIBUTING.md 文件",
    "The K5 pilot (冷链试点) starts in May with Sunrise Cold Chain.",
    "使用 Kubernetes 部署 Nest 服务。",
]


@pytest.mark.parametrize("text", MIXED)
def test_every_stage_tags_a_mixed_language_chunk_the_same_way(text, tmp_path: Path):
    expected = detect_language(text)
    path = tmp_path / "mixed.txt"
    path.write_text(text + "\n", encoding="utf-8")
    assert parse_file(path).language == expected  # ingest
    chunk = Chunk(text=text, position=0, n_tokens=0)
    assert document_language(Document(source="x", content_hash="h", language="en"), [chunk]) == expected  # summaries
    assert build_prompt(text, [], 4000, len).language == expected  # answers
    rules_used = []

    class Spy(DefaultExtractor):  # which rule set the extractor picks for the chunk
        def __init__(self) -> None:
            super().__init__(nlp=_NoNlp())
            self._chinese.triples = lambda t: rules_used.append("zh") or []  # type: ignore[method-assign]

        def _parse(self, chunks):
            rules_used.extend("en" for _ in chunks)
            return [[] for _ in chunks]

    Spy().extract([chunk], "en")
    assert rules_used == [expected]  # knowledge graph


class _NoNlp:
    """The extractor's spaCy slot, unused when its English parse is replaced."""


def test_follow_up_detection_reads_a_chinese_question_as_chinese():
    assert looks_like_followup("那么它呢？") and not looks_like_followup("上海办公室的年假政策是什么样的规定")


def test_sentences_end_at_english_and_chinese_marks_but_not_after_titles_and_initials():
    assert split_sentences("报销需在30天内提交。超过期限不予报销！是否清楚？是；好的") == [
        "报销需在30天内提交。", "超过期限不予报销！", "是否清楚？", "是；", "好的"]
    assert split_sentences("Dr. Li joined. He leads R&D!") == ["Dr. Li joined.", "He leads R&D!"]
    assert split_sentences("Founded by Dr. Anna Weber and J. Smith in 2017. It grew fast.") == [
        "Founded by Dr. Anna Weber and J. Smith in 2017.", "It grew fast."]
    assert split_sentences("员工每年享有十五天年假。年假可以顺延到次年三月！ It is fine. Really fine!") == [
        "员工每年享有十五天年假。", "年假可以顺延到次年三月！", "It is fine.", "Really fine!"]


def test_no_sentence_is_dropped_and_lines_stay_inside_sentences():
    assert split_sentences("Ok. Go.") == ["Ok.", "Go."]
    assert split_sentences("Owner: Li Na\nDue: Q3") == ["Owner: Li Na\nDue: Q3"]


def test_chinese_joins_without_a_space_and_everything_else_with_one():
    assert joiner("年假。", "员工") == "" and joiner("leave.", "员工") == "" and joiner("leave.", "It") == " "
    assert has_cjk("Shanghai 上海") and not has_cjk("Shanghai")


def test_no_module_but_zhiku_text_spells_out_a_cjk_range():
    """One character class: a range typed out anywhere else drifts from it (issue 17 found five)."""
    root = Path(__file__).resolve().parents[1]
    spelled = re.compile(r"\\u(?:3400|4dbf|4e00|9fff|f900|faff)", re.IGNORECASE)
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True, text=True, check=True)
    sources = [root / name for name in tracked.stdout.split()]  # the project's own files, never .venv
    offenders = [str(p.relative_to(root)) for p in sources
                 if p != root / "zhiku" / "text.py" and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
