"""``retrieval.stem`` is NLTK's Snowball English stemmer without NLTK: it must agree word for word,
since saved BM25 indexes hold NLTK's stems (a different Snowball would differ on ~0.1 % of words)."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from nltk.stem.snowball import EnglishStemmer

from retrieval.keyword import Tokenizer, _stopwords
from retrieval.stem import stem

#: Endings every step of the algorithm strips or rewrites, and prefixes with special regions.
SUFFIXES = ("", "s", "es", "ies", "ied", "sses", "'s", "’s", "ed", "eed", "eedly", "ing", "ingly", "edly", "y", "ly",
            "ization", "ational", "tional", "fulness", "ousness", "iveness", "biliti", "lessli", "entli", "ation",
            "alism", "aliti", "ousli", "iviti", "fulli", "enci", "anci", "abli", "izer", "ator", "alli", "bli",
            "logi", "li", "alize", "icate", "iciti", "ative", "ical", "ness", "ful", "ement", "ance", "ence",
            "able", "ible", "ment", "ant", "ent", "ism", "ate", "iti", "ous", "ive", "ize", "ion", "sion", "tion",
            "al", "er", "ic", "e", "ll", "ologist", "ologists", "izations")
BASES = ("run", "hop", "fil", "gener", "commun", "arsen", "nation", "ration", "sens", "cat", "bl", "at", "quiz",
         "play", "say", "cry", "sky", "ski", "die", "y", "yell", "ee", "agree", "proceed", "news", "bias", "lie",
         "ab", "ok", "tax", "snow", "bow", "fix", "real", "hope", "organ", "form", "polici", "employ", "上海", "é")


def test_agrees_with_nltk_on_every_ending_and_on_the_sample_corpus(sample_corpus: Path) -> None:
    nltk = EnglishStemmer()
    words = {base + suffix for base, suffix in itertools.product(BASES, SUFFIXES)}
    words |= set(SUFFIXES) | {"", "a", "is", "2026", "inv-2024-0042", "Running", "'quoted", "yyy", "aeiouy"}
    for path in sample_corpus.rglob("*"):
        if path.suffix in (".md", ".txt", ".html", ".csv", ".json", ".eml"):
            words |= set(re.findall(r"[^\W_]+", path.read_text(encoding="utf-8", errors="ignore").lower()))
    assert len(words) > 3000
    differ = {w: (nltk.stem(w), stem(w)) for w in words if nltk.stem(w) != stem(w)}
    assert not differ


def test_keyword_stop_words_are_bm25s_lists() -> None:
    from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN_PLUS

    assert _stopwords() == (frozenset(STOPWORDS_EN_PLUS), frozenset(STOPWORDS_CHINESE))
    assert Tokenizer()("The policies") == ["polici"]
