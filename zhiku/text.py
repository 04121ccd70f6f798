"""Language and CJK handling, in one place for every stage.

One character class for Chinese (CJK ideographs: the unified block, extension A and the
compatibility block), one language detector and one sentence splitter. Every stage that asks
"is this Chinese?" or "where does this sentence end?" asks here, so a chunk is Chinese to the
parser, the extractor, the answerer and the summariser alike.
"""
from __future__ import annotations

import re

#: CJK ideographs, as the body of a character class (for patterns that combine it with more).
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: CJK punctuation and full-width forms (。，！ and friends): no space is needed next to them either.
CJK_PUNCTUATION = "\u3000-\u303f\uff00-\uffef"
CJK = re.compile(f"[{CJK_CHARS}]")
CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_LETTER = re.compile(r"[^\W\d_]")
_NO_SPACE = re.compile(f"[{CJK_CHARS}{CJK_PUNCTUATION}]")

#: Share of CJK characters among all letters from which a text is Chinese.
CHINESE_SHARE = 0.2


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None


def count_cjk(text: str) -> int:
    return len(CJK.findall(text))


def detect_language(text: str, hint: str = "en") -> str:
    """``zh`` when CJK characters make up a fifth of the letters, else ``en``; ``hint`` without letters.

    unstructured's language tags are unreliable for Chinese, so characters are counted here. A
    fifth, not a half: a Chinese sentence naming English products ("腾讯 (Tencent) 发布了 WeChat")
    is still Chinese, while an English line quoting a place name ("Hotel cap is 180 EUR, 上海
    office") stays English.
    """
    letters = len(_LETTER.findall(text))
    if not letters:
        return "zh" if hint.startswith("zh") else "en"
    return "zh" if count_cjk(text) / letters >= CHINESE_SHARE else "en"


def joiner(left: str, right: str) -> str:
    """The separator between two pieces of text: none next to Chinese, else a space."""
    return "" if left and right and (_NO_SPACE.match(left[-1]) or _NO_SPACE.match(right[0])) else " "


_SENTENCE_END = re.compile(rf"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9{CJK_CHARS}])|(?<=[。！？；])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|St|No|Nr|vs|etc|e\.g|i\.e|Inc|Ltd|Co|Corp|Jr|Sr|Fig|approx|Dept)|\b[A-Z])\.$", re.I
)


def split_sentences(text: str) -> list[str]:
    """The sentences of English or Chinese text, in order, nothing dropped.

    Line breaks are kept inside sentences (a chunk keeps its lines); callers that read lines as
    sentences (table rows, lists) split lines first.

    An English sentence ends at ``.!?`` followed by space and a capital, digit, quote or Chinese
    character; a Chinese one at 。！？；. A full stop after a title or an initial ("Dr. Anna Weber",
    "J. Smith") does not end a sentence.
    """
    merged: list[str] = []
    for part in (p.strip() for p in _SENTENCE_END.split(text)):
        if not part:
            continue
        if merged and _ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged
