"""Text normalisation shared by the answer checks and the relevance judgements.

English follows SQuAD's answer normalisation (lower case, no punctuation, no articles, single
spaces) and splits into words; Chinese (and other CJK text) has no spaces, so every CJK character is
its own token, the usual character-level F1 for Chinese reading comprehension.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

from zhiku.text import CJK_CHARS, split_sentences

#: Characters scored one by one: Chinese ideographs, and Japanese kana and Korean syllables, which
#: are written without spaces too (answers in a gold set may quote them).
_CHARACTER_SCRIPTS = CJK_CHARS + "\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CHARACTER_SCRIPTS}]|[^\s{_CHARACTER_SCRIPTS}]+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"，", "。", "！", "？", "；", "：", "、", "“", "”", "‘", "’", "（", "）",
                                    "《", "》", "【", "】", "—", "…", "·", "「", "」"}


def normalize(text: str) -> str:
    """SQuAD normalisation, applied after NFKC (full-width to half-width) so both scripts compare."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Words of normalised text, with each CJK character a token of its own."""
    return _TOKEN.findall(normalize(text))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 (character-level for CJK); two empty strings agree."""
    pred, ref = tokens(prediction), tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def token_recall(needle: str, haystack: str) -> float:
    """Share of ``needle``'s tokens (with multiplicity) found in ``haystack``."""
    want = Counter(tokens(needle))
    if not want:
        return 0.0
    have = Counter(tokens(haystack))
    return sum((want & have).values()) / sum(want.values())


def contains(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` once both are normalised (spaces ignored, for Chinese)."""
    n = normalize(needle).replace(" ", "")
    return bool(n) and n in normalize(haystack).replace(" ", "")


#: Citation markers that open a piece: they belong to the sentence before ("It grew. [3] Then …").
_LEADING_CITATIONS = re.compile(r"^(?:[\[［]\d+(?:\s*[,，]\s*\d+)*[\]］]\s*)+")


def sentences(text: str) -> list[str]:
    """The sentences of each line, keeping citation markers with the sentence they follow."""
    found: list[str] = []
    for line in text.splitlines():
        for sentence in split_sentences(line):
            markers = _LEADING_CITATIONS.match(sentence)
            if markers and found:
                found[-1] = f"{found[-1]} {markers.group().strip()}"
                sentence = sentence[markers.end():].strip()
            if sentence:
                found.append(sentence)
    return found
