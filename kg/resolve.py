"""Entity resolution: one node per real entity, whatever surface forms the text used.

Two mentions name the same entity when their *canonical keys* are equal: the text normalised
(NFKC full/half width, case, whitespace, punctuation) with corporate suffixes removed ("Acme Corp."
and "Acme Corporation" are both ``acme``; "腾讯公司" and "腾讯" both ``腾讯``). On top of that,
aliases are merged when the text defines them (an extractor emits an ``also known as`` triple for
"Acme Robotics (AR)" or "华为技术有限公司（简称华为）") or when an acronym clearly matches the initials
of exactly one multi-word name seen in the corpus ("AR" -> "Acme Robotics").

The result keeps each entity's most frequent surface form as its name, every surface form as an
alias, and the most common type the extractors gave it.

Literal values are not entities: an object that is a number, an amount, a percentage or a date
("48", "EUR 21.4 million", "+31%", "31 Dec 2025", "人民币5,200万元"), or a description (a sentence
in a table's "Notes" column), makes its triple an *attribute* of the subject (``is_attribute``), so
"Munich" is not linked to every number a table lists beside it.
A surface form that spans lines (a heading glued to the sentence under it, "Kestrel Robotics\n
Kestrel Robotics founded ...") is keyed by its last line, the part the sentence is about; a trailing
parenthesis is a qualifier ("Munich (HQ)", "Li Wei (李伟)", "Kestrel Robotics (红隼机器人)") and is
left out of the key.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from zhiku.records import Triple
from zhiku.text import CJK as CJK_RE
from zhiku.text import CJK_CHARS

#: Relations an extractor emits to say "these two names are one entity"; they become merges, not edges.
ALIAS_RELATIONS = frozenset({"also known as", "简称", "alias"})

#: Legal-form suffixes that do not change which company is meant (normalised, longest first). "Group"
#: and "Holdings" are left out: in English they usually name a parent, a different company.
CORPORATE_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司", "集团",
    "incorporated", "corporation", "company", "limited",
    "gmbh", "corp", "inc", "ltd", "llc", "plc", "co", "ag", "sa",
)

#: Chinese trade words between a company's brand and its legal form (华为*技术*有限公司): people name
#: the company by the brand alone, so they are dropped too when a brand of two characters remains.
CHINESE_TRADE_WORDS = ("技术", "科技", "信息", "网络", "软件", "电子", "实业", "控股", "投资", "贸易", "咨询", "计算机系统")

_NON_WORD = re.compile(rf"[^\w{CJK_CHARS}]+")
_SPACES = re.compile(r"\s+")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9&]{1,5}$")
_LEADING_ARTICLE = re.compile(r"^(the|a|an) ")
#: A trailing parenthesis qualifies a name, it does not rename it: "Munich (HQ)", "Li Wei (李伟)".
_QUALIFIER = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")
_INITIAL_SKIP = frozenset({"of", "and", "the", "for", "&"})
_PLACE_TYPES = frozenset({"GPE", "LOC", "FAC", "NORP"})
_HONORIFIC = re.compile(r"^(dr|mr|mrs|ms|prof|sir) ")

#: Entity types extractors give literal values (spaCy's value labels, and what table and label rules use).
LITERAL_TYPES = frozenset({"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL", "VALUE"})
#: Words a literal may hold beside its digits, capitalised or not: months, weekdays, currencies,
#: units, and the words of ranges and bounds ("Up to 2,000 EUR", "Over 10 hours").
_LITERAL_WORDS = frozenset("""jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june
july august september october november december monday tuesday wednesday thursday friday saturday sunday
mon tue wed thu fri sat sun eur usd cny rmb gbp jpy chf us v ah kwh wh w kw c cet cest cst ct utc gmt pst est
gb tb mb k m bn million billion thousand up to over under above below about approx approximately from until by
end per more less than at least most version each""".split())
#: Chinese characters of units, currencies and dates (万元, 人民币, 年月日, 件, 套): what a Chinese literal may hold.
_LITERAL_CJK = frozenset("年月日号时分秒万亿千百十元角人民币美欧英镑日圆个件套名人台天周小时钟次倍托约共计每第季度")
_LITERAL_TOKEN = re.compile(r"[+\-−~≈<>≤≥±]?(?:[€$£¥])?\d[\d.,:/\-–x×]*(?:%|[a-z]{1,4})?$|[qh][1-4]|fy\d{2,4}", re.I)


def normalize(text: str) -> str:
    """Case, width, whitespace and punctuation folded away: the form used to compare names."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    text = _SPACES.sub(" ", text).strip()
    # Chinese has no spaces between words; a space inside Chinese text is an artefact.
    text = re.sub(rf"(?<=[{CJK_CHARS}]) (?=[{CJK_CHARS}])", "", text)
    return _LEADING_ARTICLE.sub("", text)


def is_literal(text: str, type_: str = "") -> bool:
    """Whether ``text`` is a value rather than a name: a number, amount, percentage or date.

    The extractor's type decides when it is a literal type; otherwise the text must hold a digit
    (or a quarter, Q3) and nothing name-like: capitalised words other than months, weekdays,
    currencies and units make it a name ("40 K2 Courier robots", "ISO 3691-4", "Suite 1500"), and
    Chinese characters other than units and dates do too (人民币5,200万元 is a value, 5G网络 is not).
    """
    if type_.upper() in LITERAL_TYPES:
        return True
    text = unicodedata.normalize("NFKC", text).strip()
    if not text or len(text) > 60 or not re.search(r"\d", text):
        return False
    if any(c not in _LITERAL_CJK for c in "".join(CJK_RE.findall(text))):
        return False
    words = re.findall(rf"[^\s{CJK_CHARS}()（）,，;；]+", text)
    if len(words) > 8:
        return False
    for word in words:
        bare = word.strip(".:'\"")
        if not bare or _LITERAL_TOKEN.match(bare) or bare.lower() in _LITERAL_WORDS or bare[:1].islower() \
                or not any(ch.isalnum() for ch in bare):
            continue
        return False
    return True


def is_description(text: str) -> bool:
    """Whether ``text`` describes rather than names: a sentence or a clause list (more than eight
    words, or a sentence mark inside), as a table's "Notes" or "Focus" column holds."""
    return len(text.split()) > 8 or bool(re.search(r"[;；]\s*\S|[.!?]\s+(\S+\s+){2}\S|[。！？]\s*\S", text.strip()))


def is_attribute(triple: Triple) -> bool:
    """Whether ``triple`` states a value of its subject (a literal or a description), not a relation."""
    return triple.relation not in ALIAS_RELATIONS and (
        is_literal(triple.object, triple.object_type) or is_description(triple.object))


def canonical_key(text: str) -> str:
    """The resolution key: the normalised name without a trailing qualifier or corporate suffix.

    Chinese names also lose trailing trade words (华为技术有限公司 -> 华为). A name that is nothing
    but a suffix (or too short once stripped) keeps its normalised form.
    """
    text = _last_line(text)
    unqualified = _QUALIFIER.sub("", text)
    norm = _strip_suffix(normalize(unqualified if len(unqualified.strip()) >= 2 else text))
    title = _HONORIFIC.match(norm)  # "Dr. Anna Weber" is Anna Weber
    if title and len(norm) - title.end() >= 2:
        norm = norm[title.end():]
    while not norm.isascii():
        word = next((w for w in CHINESE_TRADE_WORDS if norm.endswith(w) and len(norm) - len(w) >= 2), None)
        if word is None:
            break
        norm = norm[: -len(word)]
    return norm


def _last_line(text: str) -> str:
    """The last non-empty line of ``text``: a name never spans lines, a glued heading comes first."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if len(lines) > 1 else text


def _strip_suffix(norm: str) -> str:
    """``norm`` without its legal-form suffix, unless less than two characters would remain."""
    for suffix in CORPORATE_SUFFIXES:
        cjk = not suffix.isascii()
        if cjk and norm.endswith(suffix):
            stem = norm[: -len(suffix)].strip()
        elif not cjk and norm.endswith(" " + suffix):
            stem = norm[: -len(suffix) - 1].strip()
        else:
            continue
        return stem if len(stem) >= 2 else norm
    return norm


def initials(text: str) -> str:
    """Upper-case initials of a multi-word name, skipping function words and legal suffixes."""
    return _initials_of_key(canonical_key(text))


def _initials_of_key(key: str) -> str:
    words = [w for w in key.split() if w not in _INITIAL_SKIP]
    return "".join(w[0] for w in words).upper() if len(words) >= 2 else ""


@dataclass
class Entity:
    """One resolved entity: a graph node."""

    key: str
    name: str
    type: str = ""
    aliases: set[str] = field(default_factory=set)
    mentions: int = 0
    doc_ids: set[int] = field(default_factory=set)


@dataclass
class Resolution:
    """Which entity each surface form names, and the entities themselves."""

    key_of: dict[str, str]
    entities: dict[str, Entity]
    #: Surface form -> its canonical key (before alias merges).
    canonical: dict[str, str] = field(default_factory=dict)
    #: One flag per resolved triple, in order: it states a value of its subject (``is_attribute``).
    attribute: list[bool] = field(default_factory=list)

    def key(self, surface: str) -> str | None:
        """The entity key a surface form resolves to (exact surface, then canonical form)."""
        found = self.key_of.get(surface)
        if found is not None:
            return found
        return self.key_of.get(_CANON_PREFIX + canonical_key(surface))


_CANON_PREFIX = "\0"  # key_of entries by canonical key, apart from exact surface forms


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def resolve(triples: Iterable[Triple]) -> Resolution:
    """Resolve every subject and object of ``triples`` into entities (literal objects are not entities).

    Mentions are counted per triple end; ``doc_ids`` records the documents that mention the entity,
    so an entity whose documents are all removed disappears on the next rebuild.
    """
    surfaces: Counter[str] = Counter()
    types: dict[str, Counter[str]] = defaultdict(Counter)
    docs: dict[str, set[int]] = defaultdict(set)
    aliases: list[tuple[str, str]] = []
    attribute: list[bool] = []
    decided: dict[tuple[str, str, str], bool] = {}  # objects repeat: each is judged once
    for t in triples:
        ask = (t.relation, t.object, t.object_type)
        value = decided[ask] if ask in decided else decided.setdefault(ask, is_attribute(t))
        attribute.append(value)
        ends = ((t.subject, t.subject_type),) if value else ((t.subject, t.subject_type), (t.object, t.object_type))
        for surface, type_ in ends:
            surfaces[surface] += 1
            if type_:
                types[surface][type_] += 1
            if t.doc_id is not None:
                docs[surface].add(t.doc_id)
        if t.relation in ALIAS_RELATIONS:
            aliases.append((t.subject, t.object))
    canon = {surface: canonical_key(surface) for surface in surfaces}
    uf = _UnionFind()
    for key in canon.values():
        uf.find(key)
    for a, b in aliases:
        uf.union(canon[a], canon[b])
    _merge_acronyms(canon, uf)
    _merge_short_names(canon, types, uf)

    groups: dict[str, list[str]] = defaultdict(list)
    for surface, key in canon.items():
        groups[uf.find(key)].append(surface)
    key_of: dict[str, str] = {}
    entities: dict[str, Entity] = {}
    for members in groups.values():
        # Prefer one line over several, no qualifier over one ("United States" over "United States
        # (standard)"), a spelled-out name over an acronym, then the most frequent, the longest.
        name = max(members, key=lambda s: ("\n" not in s, not _QUALIFIER.search(s), not _ACRONYM.match(s),
                                           surfaces[s], len(s), s))
        key = canon[name]
        type_counts: Counter[str] = Counter()
        for s in members:
            type_counts.update(types.get(s, {}))
        entities[key] = Entity(
            key=key,
            name=_last_line(name).strip(),
            type=type_counts.most_common(1)[0][0] if type_counts else "",
            aliases=set(members),
            mentions=sum(surfaces[s] for s in members),
            doc_ids=set().union(*(docs.get(s, ()) for s in members)),
        )
        for s in members:
            key_of[s] = key
            key_of[_CANON_PREFIX + canon[s]] = key
    return Resolution(key_of, entities, canon, attribute)


def _merge_short_names(canon: dict[str, str], types: dict[str, Counter[str]], uf: _UnionFind) -> None:
    """Merge a one-word name into the one organisation whose name it starts: a contract's defined
    term ("Kestrel Robotics GmbH ... ("Kestrel")"), a brand said alone ("Nordhafen").

    Places are never merged ("Munich" is not "Munich Re"), nor is a word that starts the names of
    two organisations.
    """
    key_types: dict[str, Counter[str]] = defaultdict(Counter)
    for surface, key in canon.items():
        key_types[key].update(types.get(surface, {}))
    organisations: dict[str, set[str]] = defaultdict(set)
    for key, counts in key_types.items():
        words = key.split()
        if len(words) > 1 and counts and counts.most_common(1)[0][0] == "ORG":
            organisations[words[0]].add(uf.find(key))
    for key, counts in key_types.items():
        kind = counts.most_common(1)[0][0] if counts else ""
        if " " in key or len(key) < 3 or not key.isalpha() or kind in _PLACE_TYPES:
            continue
        candidates = organisations.get(key, set())
        if len(candidates) == 1:
            uf.union(next(iter(candidates)), key)


def _merge_acronyms(canon: dict[str, str], uf: _UnionFind) -> None:
    """Merge "AR" into "Acme Robotics" when exactly one multi-word name has those initials."""
    by_initials: dict[str, set[str]] = defaultdict(set)
    for key in set(canon.values()):
        letters = _initials_of_key(key)
        if letters:
            by_initials[letters].add(uf.find(key))
    for surface, key in canon.items():
        stripped = unicodedata.normalize("NFKC", surface).strip().rstrip(".")
        if not _ACRONYM.match(stripped):
            continue
        candidates = by_initials.get(stripped.replace("&", ""), set())
        if len(candidates) == 1:
            uf.union(next(iter(candidates)), key)
