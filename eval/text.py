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

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
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


def has_cjk(text: str) -> bool:
    return re.search(f"[{_CJK}]", text) is not None


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


#: A sentence: up to its end mark (decimal points are not ends), with the ``[n]`` markers after it.
_SENTENCE = re.compile(r"(?:\d\.\d|[^.!?。！？；])+(?:[.!?。！？；]+(?:\s*[\[［]\d+(?:\s*[,，]\s*\d+)*[\]］])*|$)")


def sentences(text: str) -> list[str]:
    """Split on line breaks and English and Chinese sentence ends, keeping citation markers with their sentence."""
    return [m.group().strip() for line in text.splitlines() for m in _SENTENCE.finditer(line) if m.group().strip()]
